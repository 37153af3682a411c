"""MLflow tracking: one run per pipeline, with a nested run per candidate and its model.

MLflow is imported inside the functions: it costs over a second to import.
All logging happens in the calling process; the searches' workers never touch the store.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pandas as pd
from loguru import logger

from lead_conversion_prediction.modeling.artifacts import (
    CandidateAudit,
    CandidateResult,
    MetricsReport,
)
from lead_conversion_prediction.modeling.lineage import RunOwner
from lead_conversion_prediction.utils.storage import file_digest

# Libraries whose types our own trained models may hold. skops refuses to load any type it
# does not know is safe unless the model lists it; a logged model lists the types it holds,
# and only types from these libraries.
TRUSTED_LIBRARIES = ("lead_conversion_prediction.", "sklearn.", "xgboost.", "numpy.")
# What the registered model imports when it loads: the package's contract and scorer.
_RUNTIME_PACKAGES = (
    "loguru",
    "mlflow",
    "numpy",
    "pandas",
    "pandera",
    "pyarrow",
    "pydantic",
    "pyyaml",
    "scikit-learn",
    "scipy",
    "skops",
)


@dataclass(frozen=True)
class LoggedCandidate:
    """Where a candidate's run and model landed in the tracking store."""

    name: str
    run_id: str
    model_uri: str
    digest: str  # of the logged model's files


# What MLflow's own tools read to show an experiment as model training (its runs), not GenAI.
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")


def configure_tracking(tracking_uri: str, experiment: str) -> str:
    """Point MLflow at the store and experiment, creating them if needed; return its id.

    With a local SQLite store, a new experiment keeps its artifacts in
    ``mlruns/<experiment>/`` beside the database (an absolute location), whatever the
    working directory of the run.
    """
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    experiment_id = open_experiment(mlflow.MlflowClient(tracking_uri), tracking_uri, experiment)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def open_experiment(client: Any, tracking_uri: str, experiment: str) -> str:
    """The id of the experiment named ``experiment`` in the client's store, created if needed
    (with the artifact location of :func:`local_artifact_location`) and tagged as models'."""
    from mlflow.exceptions import MlflowException

    existing = client.get_experiment_by_name(experiment)
    if existing is None:
        try:
            return str(
                client.create_experiment(
                    experiment,
                    artifact_location=local_artifact_location(tracking_uri, experiment),
                    tags=dict([EXPERIMENT_KIND]),
                )
            )
        except MlflowException as error:
            # Another run on a shared store created it since we looked: use that one.
            existing = client.get_experiment_by_name(experiment)
            if error.error_code != "RESOURCE_ALREADY_EXISTS" or existing is None:
                raise
    elif existing.tags.get(EXPERIMENT_KIND[0]) != EXPERIMENT_KIND[1]:
        with suppress(MlflowException):  # a user who may not tag it still logs runs
            client.set_experiment_tag(existing.experiment_id, *EXPERIMENT_KIND)
    return str(existing.experiment_id)


def local_artifact_location(tracking_uri: str, experiment: str) -> str | None:
    """Return ``file://<folder of the database>/mlruns/<experiment>`` for SQLite, else None."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None
    database = Path(tracking_uri.removeprefix(prefix)).resolve()
    return (database.parent / "mlruns" / experiment).as_uri()


def pip_requirements(model: Any) -> list[str]:
    """Return the pinned packages needed to load ``model`` (xgboost only when it holds one)."""
    from lead_conversion_prediction.modeling.calibration import base_classifiers

    packages = list(_RUNTIME_PACKAGES)
    if any(type(c).__module__.startswith("xgboost") for c in base_classifiers(model[-1])):
        packages.append("xgboost-cpu")
    return [f"{package}=={version(package)}" for package in sorted(packages)]


def flatten(prefix: str, value: Any) -> dict[str, Any]:
    """Flatten nested parameters into ``{"train.metric": ...}`` pairs for MLflow."""
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(flatten(f"{prefix}.{key}" if prefix else str(key), item))
        return flat
    return {prefix: value}


def trusted_types(model: Any) -> list[str]:
    """The types of ``model`` that skops must be told to trust; all from trusted libraries."""
    import skops.io

    from lead_conversion_prediction.exceptions import ArtifactError

    types = sorted(skops.io.get_untrusted_types(data=skops.io.dumps(model)))
    foreign = [name for name in types if not name.startswith(TRUSTED_LIBRARIES)]
    if foreign:
        raise ArtifactError(f"the model holds types from untrusted libraries: {foreign}")
    return types


def log_candidate(
    name: str,
    model: Any,
    result: CandidateResult,
    input_example: pd.DataFrame,
    tags: dict[str, str],
    profile: Path | None = None,
    metric: str = "score",
) -> LoggedCandidate:
    """Log one candidate as a nested run: its params, its scores in ``metric`` on the
    selection folds (``cv.<metric>`` by fold, ``cv.<metric>.mean``, ``.std``) and its model
    (with the reference ``profile`` monitoring reads, for the chosen one); its holdout metrics
    follow from the evaluation (:func:`log_candidate_holdout`)."""
    import mlflow

    with mlflow.start_run(run_name=name, nested=True, tags={**tags, "candidate": name}) as run:
        mlflow.log_params(result.best_params)
        searched = (
            {"search_rows": result.budget.search_rows, "search_cv_folds": result.budget.cv_folds}
            if result.budget
            else {}
        )
        mlflow.log_params({"n_iter": len(result.settings), "cv_folds": len(result.cv), **searched})
        for fold, score in enumerate(result.cv):
            mlflow.log_metric(f"cv.{metric}", score, step=fold)
        mlflow.log_metrics(flatten("cv", {metric: {"mean": result.cv_mean, "std": result.cv_std}}))
        settings = [setting.model_dump(mode="json") for setting in result.settings]
        mlflow.log_dict({"settings": settings}, "search/settings.json")
        model_uri, digest = log_lead_model(model, input_example, profile)
    return LoggedCandidate(name, run.info.run_id, model_uri, digest)


def log_candidate_holdout(run_id: str, audit: CandidateAudit, metric: str) -> None:
    """Log a candidate's holdout metrics, as the evaluation measured them, to its run; its
    score in the selection ``metric`` is ``holdout.<metric>`` (a metric of both keeps the
    evaluation's value)."""
    import mlflow

    scored = {metric: audit.holdout_score, **audit.holdout}
    mlflow.log_metrics(flatten("holdout", scored), run_id=run_id)


def numbered_run_name(base: str) -> str:
    """``<base> #<n>``: the active experiment's n-th run of that name (MLflow allows twins)."""
    import mlflow

    quoted = base.replace("'", "")
    runs = mlflow.search_runs(filter_string=f"attributes.run_name LIKE '{quoted} #%'")
    return f"{quoted} #{len(runs) + 1}"


def log_lead_model(
    model: Any, input_example: pd.DataFrame, profile: Path | None = None
) -> tuple[str, str]:
    """Log the Pipeline as the registered pyfunc model (``scoring/pyfunc.py``) in the active
    run, with its reference ``profile`` among its artifacts (so the model's digest covers it);
    return its URI and the digest of its files, also tagged on the run for verified loading."""
    import tempfile

    import mlflow
    import skops.io

    from lead_conversion_prediction.modeling.model_code import stage_model_code
    from lead_conversion_prediction.scoring import pyfunc

    with tempfile.TemporaryDirectory() as folder:
        pipeline = Path(folder) / "pipeline.skops"
        skops.io.dump(model, pipeline)
        types = trusted_types(model)
        code = stage_model_code(types, Path(folder) / "code")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(Path(pyfunc.__file__).with_name("registered_model.py")),
            artifacts={
                pyfunc.PIPELINE_ARTIFACT: str(pipeline),
                **({pyfunc.PROFILE_ARTIFACT: str(profile)} if profile is not None else {}),
            },
            model_config={
                "pipeline_sha256": file_digest(pipeline),
                "trusted_types": types,
            },
            signature=lead_signature(),
            input_example=input_example,
            pip_requirements=pip_requirements(model),
            code_paths=[str(code)],
        )
        downloaded = Path(folder) / "logged"
        downloaded.mkdir()
        local = mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(downloaded))
        digest = pyfunc.model_digest(Path(local))
    mlflow.set_tag(pyfunc.MODEL_DIGEST_TAG, digest)
    return str(info.model_uri), digest


def log_datasets(train: pd.DataFrame, holdout: pd.DataFrame, paths: Any) -> None:
    """Log the training and evaluation rows as the run's MLflow datasets (with their digest)."""
    import warnings

    import mlflow
    from mlflow.data.pandas_dataset import from_pandas

    from lead_conversion_prediction.schema import TARGET

    for frame, name, context, path in (
        (train, "train", "training", paths.train_split),
        (holdout, "holdout", "evaluation", paths.test_split),
    ):
        with warnings.catch_warnings():
            # MLflow's notes on datasets that do not apply here: a local file is a source of
            # two (equal) kinds, and the schema it infers when the dataset is logged comes
            # with a hint that integer columns cannot hold missing values (model signatures).
            warnings.filterwarnings("ignore", "The specified dataset source", UserWarning)
            warnings.filterwarnings(
                "ignore", "Hint: Inferred schema contains integer", UserWarning
            )
            dataset = from_pandas(
                frame.assign(date_part=frame["date_part"].astype("str")),
                source=str(path),
                name=name,
                targets=TARGET,
            )
            try:
                mlflow.log_input(dataset, context=context)
            except mlflow.exceptions.MlflowException:
                # A run of another checkout logged the same rows at the same moment: the
                # store's look-up-then-insert of a dataset is not atomic, and the loser's
                # insert breaks its unique key. The dataset exists now, so a second try links
                # it; another error comes back again and is raised.
                mlflow.log_input(dataset, context=context)


def lead_signature() -> Any:
    """The served model's signature: raw lead columns in, of any type (the data contract
    checks them, so integer and decimal counts both work), and the labelled scores out."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, Schema, TensorSpec

    from lead_conversion_prediction.schema import ID_COLUMN, MODEL_INPUT_COLUMNS

    inputs: list[ColSpec | TensorSpec] = [ColSpec(AnyType(), ID_COLUMN, required=False)]
    inputs += [ColSpec(AnyType(), name) for name in MODEL_INPUT_COLUMNS]
    outputs: list[ColSpec | TensorSpec] = [
        ColSpec("long", ID_COLUMN, required=False),
        ColSpec("double", "conversion_probability"),
        ColSpec("string", "model"),
    ]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema(outputs))


def end_abandoned_runs(experiment_id: str, owner: RunOwner) -> None:
    """Mark as KILLED the runs of ``owner``'s checkout still RUNNING whose process is gone."""
    import os

    from mlflow import MlflowClient

    client: Any = MlflowClient()
    query = f"attributes.status = 'RUNNING' and tags.`lcp.root` = '{owner.root}'"
    for run in client.search_runs([experiment_id], filter_string=query):
        tags = run.data.tags
        if tags.get("lcp.host") != owner.host or not tags.get("lcp.pid", "").isdigit():
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


def log_report(metrics: MetricsReport, figures: list[Path], model_card: Path) -> None:
    """Log the evaluation report (metrics with intervals, figures, model card) to the open run."""
    import mlflow

    from lead_conversion_prediction.modeling.report import interval_tags, tracked_metrics

    mlflow.log_metrics(tracked_metrics(metrics))
    mlflow.set_tags(interval_tags(metrics))
    mlflow.log_dict(metrics.model_dump(mode="json"), "evaluation.json")
    for figure in figures:
        mlflow.log_artifact(str(figure), "figures")
    mlflow.log_artifact(str(model_card))


def log_monitoring_run(
    tracking_uri: str,
    experiment: str,
    kind: str,
    tags: dict[str, str],
    metrics: dict[str, float],
    artifacts: list[Path],
    ready: Callable[[], object] = lambda: None,
) -> str:
    """Log a monitoring report as a run of its own experiment; return the run's id. The run
    and its metrics are logged while ``ready`` waits for the ``artifacts`` to be written.

    Its statistics are metrics (MLflow charts them across runs), its tags name the model and
    the batch. Everything goes through a client of ``tracking_uri``: MLflow's global state
    (the active store, experiment and run) is left as it was.
    """
    import math
    import time

    from mlflow import MlflowClient
    from mlflow.entities import Metric, RunStatus

    client = MlflowClient(tracking_uri)
    experiment_id = open_experiment(client, tracking_uri, experiment)
    run = client.create_run(
        experiment_id,
        run_name=f"{kind} {tags.get('model', '')}",
        tags={"lcp.monitoring": kind, **tags},
    )
    run_id = str(run.info.run_id)
    try:
        now = int(time.time() * 1000)
        logged = [
            Metric(key, value, now, 0) for key, value in metrics.items() if math.isfinite(value)
        ]
        for start in range(0, len(logged), 1000):  # MLflow's batch limit
            client.log_batch(run_id, metrics=logged[start : start + 1000])
        ready()
        for artifact in artifacts:
            client.log_artifact(run_id, str(artifact))
    except BaseException:
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
        raise
    client.set_terminated(run_id)
    return run_id


def tag_run(run_id: str, tags: dict[str, Any]) -> None:
    """Set tags on a run, open or ended."""
    from mlflow import MlflowClient

    client: Any = MlflowClient()
    for key, value in tags.items():
        client.set_tag(run_id, key, value)


def registered_runs(version: Any) -> tuple[str, dict[str, str]]:
    """The pipeline run that logged a registered version, and its candidates' runs by name."""
    from mlflow import MlflowClient

    client: Any = MlflowClient()
    run = client.get_run(version.tags.get("run_id") or version.run_id)
    parent = run.data.tags.get("mlflow.parentRunId", run.info.run_id)
    query = f"tags.`mlflow.parentRunId` = '{parent}'"
    runs = client.search_runs([run.info.experiment_id], filter_string=query)
    return parent, {
        item.data.tags.get("candidate", item.info.run_name): item.info.run_id for item in runs
    }
