"""Stage ``register``: log every candidate to MLflow, register the chosen model, promote it if
better, and attach the evaluation report to the run.

Reads the candidates, the holdout rows, the data summary and the report; writes the MLflow
store and ``reports/registry.json``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from loguru import logger

from lead_conversion_prediction.config import Params, Paths
from lead_conversion_prediction.modeling.artifacts import (
    DataSummary,
    MetricsReport,
    RegistryRecord,
    TrainingSummary,
)
from lead_conversion_prediction.stages._io import load_candidate_models, read_holdout
from lead_conversion_prediction.utils.logging import log_stage


def run_register(paths: Paths, params: Params, tracking_uri: str) -> RegistryRecord:
    """Log the candidates, register and maybe promote the chosen model, attach the report."""
    with registering(paths, params, tracking_uri) as record:
        pass
    return record


@contextmanager
def registering(paths: Paths, params: Params, tracking_uri: str) -> Iterator[RegistryRecord]:
    """Log and register the candidates, then, when the block ends, attach the report.

    The block runs with the pipeline's MLflow run still open: ``lcp pipeline`` uses it to wait
    for the report that another process draws meanwhile.
    """
    import mlflow

    from lead_conversion_prediction.modeling.evaluate import holdout_score
    from lead_conversion_prediction.modeling.registry import register_and_promote
    from lead_conversion_prediction.modeling.tracking import (
        configure_tracking,
        flatten,
        log_candidate,
    )
    from lead_conversion_prediction.scoring.pyfunc import MODEL_DIGEST_TAG

    with log_stage("register") as facts:
        summary = TrainingSummary.read(paths.candidates_summary)
        data = DataSummary.read(paths.data_summary)
        X_test, y_test = read_holdout(paths)
        models = load_candidate_models(paths, summary)
        metric, chosen = summary.metric, summary.selected
        tags = {"raw_md5": data.raw_md5, "selected": chosen, **run_owner(paths)}

        experiment_id = configure_tracking(tracking_uri, params.registry.experiment)
        end_abandoned_runs(experiment_id, paths)
        with mlflow.start_run(run_name="pipeline", tags=tags) as parent:
            mlflow.log_params(flatten("", params.model_dump(mode="json")))
            logged = {
                name: log_candidate(name, model, summary.candidates[name], X_test.head(5), tags)
                for name, model in models.items()
            }
            decision = register_and_promote(
                logged[chosen].model_uri,
                params.registry.model_name,
                metric,
                summary.chosen.holdout_score,
                lambda champion: holdout_score(champion, X_test, y_test, metric),
                tags={
                    "raw_md5": data.raw_md5,
                    "run_id": logged[chosen].run_id,
                    MODEL_DIGEST_TAG: logged[chosen].digest,
                },
            )
            mlflow.set_tags(
                {"registered_version": decision.version, "promoted": decision.promoted}
            )
            record = RegistryRecord(
                **decision.model_dump(exclude={"champion"}),
                tracking_uri=tracking_uri,
                experiment=params.registry.experiment,
                parent_run_id=parent.info.run_id,
                runs={name: item.run_id for name, item in logged.items()},
            )
            record.write(paths.registry_record)  # true to the registry from now on
            yield record
            attach_report(paths)
        record.write(paths.registry_record)
        facts.update(version=record.version, champion=record.champion, promoted=record.promoted)


OWNER_TAGS = ("lcp.host", "lcp.pid", "lcp.root")


def run_owner(paths: Paths) -> dict[str, str]:
    """Tags naming the process that logs a run: host, pid and checkout."""
    import os
    import socket

    values = (socket.gethostname(), str(os.getpid()), str(paths.root))
    return dict(zip(OWNER_TAGS, values, strict=True))


def end_abandoned_runs(experiment_id: str, paths: Paths) -> None:
    """Mark as KILLED this checkout's runs still RUNNING whose process is gone."""
    import os

    from mlflow import MlflowClient

    host, _, root = run_owner(paths).values()
    client = MlflowClient()
    query = f"attributes.status = 'RUNNING' and tags.`lcp.root` = '{root}'"
    for run in client.search_runs([experiment_id], filter_string=query):
        tags = run.data.tags
        if tags.get("lcp.host") != host or not tags.get("lcp.pid", "").isdigit():
            continue
        try:
            os.kill(int(tags["lcp.pid"]), 0)
            continue  # that process still runs
        except ProcessLookupError:
            pass
        except PermissionError:
            continue  # a process of another user: alive
        client.set_terminated(run.info.run_id, status="KILLED")
        logger.warning("register: run {} of a killed process marked KILLED", run.info.run_id)


def attach_report(paths: Paths) -> None:
    """Log the evaluation report (metrics with intervals, figures, model card) to the open run."""
    import mlflow

    from lead_conversion_prediction.modeling.report import FIGURES

    metrics = MetricsReport.read(paths.metrics)
    mlflow.log_metrics(
        {
            **{f"holdout_{key}": value for key, value in metrics.holdout.items()},
            **{
                f"holdout_{key}_ci_{end}": getattr(interval, end)
                for key, interval in metrics.holdout_ci.items()
                for end in ("low", "high")
            },
        }
    )
    mlflow.log_dict(metrics.model_dump(mode="json"), "metrics.json")
    for name in FIGURES:  # the report's figures by name: never a stray file of the folder
        mlflow.log_artifact(str(paths.figures_dir / name), "figures")
    mlflow.log_artifact(str(paths.model_card))
