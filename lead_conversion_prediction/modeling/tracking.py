"""MLflow tracking: one run per pipeline, with a nested run per candidate and its model.

MLflow is imported inside the functions: it costs over a second to import.
All logging happens in the calling process; the searches' workers never touch the store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pandas as pd

from lead_conversion_prediction.modeling.artifacts import CandidateResult

PACKAGE_DIR = Path(__file__).resolve().parents[1]

# Libraries whose types our own trained models may hold. skops refuses to load any type it
# does not know is safe unless the model lists it; a logged model lists the types it holds,
# and only types from these libraries.
TRUSTED_LIBRARIES = ("lead_conversion_prediction.", "sklearn.", "xgboost.", "numpy.")
_RUNTIME_PACKAGES = ("numpy", "pandas", "pydantic", "pyyaml", "scikit-learn", "scipy")


@dataclass(frozen=True)
class LoggedCandidate:
    """Where a candidate's run and model landed in the tracking store."""

    name: str
    run_id: str
    model_uri: str


def configure_tracking(tracking_uri: str, experiment: str) -> str:
    """Point MLflow at the store and experiment, creating them if needed; return its id.

    With a local SQLite store, a new experiment keeps its artifacts in
    ``mlruns/<experiment>/`` beside the database (an absolute location), whatever the
    working directory of the run.
    """
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    existing = mlflow.get_experiment_by_name(experiment)
    if existing is None:
        experiment_id = mlflow.create_experiment(
            experiment, artifact_location=local_artifact_location(tracking_uri, experiment)
        )
    else:
        experiment_id = existing.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return str(experiment_id)


def local_artifact_location(tracking_uri: str, experiment: str) -> str | None:
    """Return ``file://<folder of the database>/mlruns/<experiment>`` for SQLite, else None."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None
    database = Path(tracking_uri.removeprefix(prefix)).resolve()
    return (database.parent / "mlruns" / experiment).as_uri()


def signature_example(X: pd.DataFrame) -> pd.DataFrame:
    """Return rows to infer the model signature from, integer codes as floats.

    Integer columns cannot hold missing values, which scoring must accept (they are imputed),
    so the signature declares the category codes as doubles.
    """
    integers = [name for name, dtype in X.dtypes.items() if pd.api.types.is_integer_dtype(dtype)]
    return X.astype(dict.fromkeys(integers, "float64"))


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
) -> LoggedCandidate:
    """Log one candidate as a nested run: its params, CV scores, holdout metrics and model."""
    import mlflow
    from mlflow.models import infer_signature

    with mlflow.start_run(run_name=name, nested=True, tags={**tags, "candidate": name}) as run:
        mlflow.log_params(result.best_params)
        mlflow.log_params({"n_iter": len(result.settings), "cv_folds": len(result.cv)})
        for fold, score in enumerate(result.cv):
            mlflow.log_metric("cv_score", score, step=fold)
        mlflow.log_metrics(
            {
                "cv_mean": result.cv_mean,
                "cv_std": result.cv_std,
                "holdout_score": result.holdout_score,
                **{f"holdout_{key}": value for key, value in result.holdout.items()},
            }
        )
        settings = [setting.model_dump(mode="json") for setting in result.settings]
        mlflow.log_dict({"settings": settings}, "search/settings.json")
        example = signature_example(input_example)
        signature = infer_signature(example, model.predict_proba(example))
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=signature,
            pyfunc_predict_fn="predict_proba",
            input_example=example,
            pip_requirements=pip_requirements(model),
            code_paths=[str(PACKAGE_DIR)],
            serialization_format="skops",
            skops_trusted_types=trusted_types(model),
        )
    return LoggedCandidate(name=name, run_id=run.info.run_id, model_uri=info.model_uri)
