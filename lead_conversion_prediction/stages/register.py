"""Stage ``register``: log every candidate to MLflow with its lineage, register the chosen
model as the challenger, attach the evaluation report, and move the champion only by the rule.

The champion alias moves here only when the registry has none yet (the first validated
version), or on the release path (``--promote``) when the challenger's lead on the evaluation
set is real (``modeling/promotion.py``). An identical model is not registered twice.

Reads the candidates, the holdout rows, the data summary, the validation and the report;
writes the MLflow store and ``reports/registry.json`` (a record of that side effect, which DVC
neither caches nor tracks: the stage always runs).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from loguru import logger

from lead_conversion_prediction.config import Params, Paths
from lead_conversion_prediction.modeling.artifacts import (
    DataSummary,
    MetricsReport,
    RegistryRecord,
    TrainingSummary,
    ValidationReport,
)
from lead_conversion_prediction.stages._hints import hints_missing_inputs
from lead_conversion_prediction.stages._io import load_candidate_models, read_holdout
from lead_conversion_prediction.utils.logging import log_stage
from lead_conversion_prediction.utils.secrets import redact_uri

# The SHA-256 of the lead_model.joblib a version was registered from: the same model gives
# the same bytes, so it identifies the model, and tells whether the workspace is the champion.
WORKSPACE_TAG = "lead_model_sha256"


@hints_missing_inputs
def run_register(
    paths: Paths, params: Params, tracking_uri: str, promote: bool = False
) -> RegistryRecord:
    """Log the candidates, register the chosen model, attach the report, maybe promote."""
    with registering(paths, params, tracking_uri, promote):
        pass
    return RegistryRecord.read(paths.registry_record)


@contextmanager
def registering(
    paths: Paths, params: Params, tracking_uri: str, promote: bool = False
) -> Iterator[RegistryRecord]:
    """Log and register the candidates, then, when the block ends, attach the report and
    decide the champion; ``reports/registry.json`` then holds the final record (the one
    yielded is the registration's, before the decision).

    The block runs with the pipeline's MLflow run still open: ``lcp pipeline`` uses it to wait
    for the report that another process draws meanwhile.
    """
    import mlflow

    from lead_conversion_prediction.csv_io import read_raw_leads
    from lead_conversion_prediction.modeling.promotion import evaluation_set_md5
    from lead_conversion_prediction.modeling.tracking import (
        configure_tracking,
        flatten,
        log_candidate,
        log_datasets,
    )
    from lead_conversion_prediction.scoring.pyfunc import MODEL_DIGEST_TAG

    with log_stage("register") as facts:
        summary = TrainingSummary.read(paths.candidates_summary)
        data = DataSummary.read(paths.data_summary)
        validation = ValidationReport.read(paths.validation_report)
        holdout = read_raw_leads(paths.test_split)
        X_test, _ = read_holdout(paths)
        models = load_candidate_models(paths, summary)
        chosen = summary.selected
        name = params.registry.model_name
        lineage = {
            **git_lineage(paths),
            "raw_md5": data.raw_md5,
            "params_md5": params_md5(params),
            "evaluation_set_md5": evaluation_set_md5(holdout),
            "selection_metric": summary.metric,
            "promotion_metric": params.promotion.metric,
            **run_owner(paths),
        }
        experiment_name = dvc_experiment()
        if experiment_name:
            lineage["dvc_experiment"] = experiment_name

        experiment_id = configure_tracking(tracking_uri, params.registry.experiment)
        end_abandoned_runs(experiment_id, paths)
        run_name = experiment_name or f"{chosen}@{lineage['git_commit'][:7]}"
        with mlflow.start_run(run_name=run_name, tags={**lineage, "selected": chosen}) as parent:
            mlflow.log_params(flatten("", params.model_dump(mode="json")))
            log_datasets(read_raw_leads(paths.train_split), holdout, paths)
            logged = {
                candidate: log_candidate(
                    candidate, model, summary.candidates[candidate], X_test.head(5), lineage
                )
                for candidate, model in models.items()
            }
            version, new = register_chosen(
                name,
                logged[chosen].model_uri,
                {
                    **lineage,
                    "candidate": chosen,
                    "run_id": logged[chosen].run_id,
                    MODEL_DIGEST_TAG: logged[chosen].digest,
                    WORKSPACE_TAG: _workspace_digest(paths),
                    "validation_accuracy": f"{validation.accuracy:.6f}",
                },
            )
            with _completing(name, version, new):
                mlflow.set_tags({"registered_version": version, "new_version": new})
                record = RegistryRecord(
                    model_name=name,
                    version=version,
                    new_version=new,
                    champion=_champion_number(name),
                    promoted=False,
                    decision="pending: the report is not attached yet",
                    promotion_metric=params.promotion.metric,
                    evaluation_set_md5=lineage["evaluation_set_md5"],
                    tracking_uri=redact_uri(tracking_uri),
                    experiment=params.registry.experiment,
                    parent_run_id=parent.info.run_id,
                    runs={candidate: item.run_id for candidate, item in logged.items()},
                )
                record.write(paths.registry_record)  # true to the registry from now on
                yield record
                metrics = attach_report(paths)
                describe(name, version, chosen, metrics, lineage)
            promoted, decision = decide_champion(paths, params, version, promote)
            mlflow.set_tags({"promoted": promoted})
        record = record.model_copy(
            update={"champion": _champion_number(name), "promoted": promoted, "decision": decision}
        )
        record.write(paths.registry_record)
        facts.update(version=record.version, champion=record.champion, promoted=promoted)
    logger.info("register: {}", decision)


def register_chosen(name: str, model_uri: str, tags: dict[str, str]) -> tuple[int, bool]:
    """Register the chosen model, unless an identical one is registered already.

    The look-up and the registration hold the registry lock: two runs of one model at the same
    moment register it once.
    """
    from lead_conversion_prediction.modeling.registry import find_version, register_version
    from lead_conversion_prediction.modeling.registry_lock import registry_lock

    with registry_lock(name, "lcp register"):
        existing = find_version(name, WORKSPACE_TAG, tags[WORKSPACE_TAG])
        if existing is not None:
            logger.info(
                "register: the same model is version {} already; not registered again",
                existing.version,
            )
            return int(existing.version), False
        version = register_version(model_uri, name, tags, description=f"{tags['candidate']}")
    return int(version.version), True


@contextmanager
def _completing(name: str, version: int, new: bool) -> Iterator[None]:
    """Mark a new version complete (and challenger) when the block ends; when it fails, delete
    the version, or mark it failed: nothing stays half-registered."""
    from lead_conversion_prediction.modeling.registry import abandon_version, complete_version

    try:
        yield
    except BaseException:
        if new:
            abandon_version(name, version)
        raise
    if new:
        complete_version(name, version)


def describe(
    name: str, version: int, chosen: str, metrics: MetricsReport, lineage: dict[str, str]
) -> None:
    """Tag a version with every holdout metric and interval, and describe it in one line."""
    from lead_conversion_prediction.modeling.registry import describe_version, tag_version

    tags = {f"holdout.{key}": f"{value:.6f}" for key, value in metrics.holdout.items()}
    for key, interval in metrics.holdout_ci.items():
        tags[f"holdout.{key}.low"] = f"{interval.low:.6f}"
        tags[f"holdout.{key}.high"] = f"{interval.high:.6f}"
    tag_version(name, version, tags)
    metric = lineage["promotion_metric"]
    ci = metrics.holdout_ci.get(metric)
    spread = f" ({ci.low:.3f} to {ci.high:.3f})" if ci else ""
    describe_version(
        name,
        version,
        f"{chosen}: holdout {metric} {metrics.holdout.get(metric, float('nan')):.3f}{spread} "
        f"on evaluation set {lineage['evaluation_set_md5'][:8]}, data "
        f"{lineage['raw_md5'][:8]}, commit {lineage['git_commit'][:8]}"
        f"{' (dirty)' if lineage['git_dirty'] == 'true' else ''}",
    )


def decide_champion(paths: Paths, params: Params, version: int, promote: bool) -> tuple[bool, str]:
    """Make ``version`` champion when there is none, or on request when its lead is real."""
    from lead_conversion_prediction.modeling.registry import champion_version
    from lead_conversion_prediction.modeling.registry_lock import registry_lock

    name = params.registry.model_name
    champion = champion_version(name)
    if champion is not None and not promote:
        return _decide(paths, params, name, version, promote)  # the alias cannot move
    command = "lcp register --promote" if promote else "lcp register"
    with registry_lock(name, command):
        return _decide(paths, params, name, version, promote)


def _decide(
    paths: Paths, params: Params, name: str, version: int, promote: bool
) -> tuple[bool, str]:
    from lead_conversion_prediction.modeling.registry import (
        COMPLETE,
        champion_version,
        get_version,
        move_champion,
        registration_state,
    )
    from lead_conversion_prediction.stages.promote import promotion_decision

    champion = champion_version(name)
    state = registration_state(get_version(name, version))
    if state != COMPLETE:
        return False, f"version {version}'s registration is {state}: it cannot be champion"
    if champion is None:
        move_champion(name, version, "the first validated version")
        return True, f"version {version} is the first champion"
    if int(champion.version) == version:
        return False, f"version {version} is the champion already"
    if not promote:
        return False, (
            f"version {version} is the challenger; the champion stays version "
            f"{champion.version} (compare and promote with 'lcp promote')"
        )
    promoted, why = promotion_decision(paths, params, version, champion)
    if promoted:
        move_champion(name, version, why)
    return promoted, why


def attach_report(paths: Paths) -> MetricsReport:
    """Log the evaluation report (metrics with intervals, figures, model card) to the open run."""
    import mlflow

    from lead_conversion_prediction.modeling.report import FIGURES

    metrics = MetricsReport.read(paths.evaluation)
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
    mlflow.log_dict(metrics.model_dump(mode="json"), "evaluation.json")
    for name in FIGURES:  # the report's figures by name: never a stray file of the folder
        mlflow.log_artifact(str(paths.figures_dir / name), "figures")
    mlflow.log_artifact(str(paths.model_card))
    return metrics


def _champion_number(name: str) -> int | None:
    from lead_conversion_prediction.modeling.registry import champion_version

    champion = champion_version(name)
    return int(champion.version) if champion is not None else None


def _workspace_digest(paths: Paths) -> str:
    from lead_conversion_prediction.utils.storage import file_digest

    return file_digest(paths.lead_model)


def git_lineage(paths: Paths) -> dict[str, str]:
    """The checkout's commit and whether it has uncommitted changes ('unknown' without git)."""
    import subprocess

    def git(*args: str) -> str | None:
        try:
            result = subprocess.run(
                ["git", *args], cwd=paths.root, capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return result.stdout if result.returncode == 0 else None

    commit = (git("rev-parse", "HEAD") or "unknown").strip()
    status = git("status", "--porcelain", "--untracked-files=no")
    dirty = "unknown" if status is None else ("true" if status.strip() else "false")
    return {"git_commit": commit, "git_dirty": dirty}


def params_md5(params: Params) -> str:
    """The md5 of the parameters, as JSON with sorted keys."""
    import hashlib
    import json

    text = json.dumps(params.model_dump(mode="json"), sort_keys=True)
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def dvc_experiment() -> str | None:
    """The name of the DVC experiment this run belongs to, when there is one."""
    import os

    return os.environ.get("DVC_EXP_NAME") or None


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
    registry: Any = MlflowClient()
    query = f"attributes.status = 'RUNNING' and tags.`lcp.root` = '{root}'"
    for run in registry.search_runs([experiment_id], filter_string=query):
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
        registry.set_terminated(run.info.run_id, status="KILLED")
        logger.warning("register: run {} of a killed process marked KILLED", run.info.run_id)
