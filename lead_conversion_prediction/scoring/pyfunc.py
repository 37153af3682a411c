"""The registered model: the lead Pipeline behind MLflow's pyfunc interface, with the contract.

MLflow loads it as code ("models from code": ``registered_model.py``), so nothing is
unpickled: the Pipeline is a skops file whose SHA-256, recorded when it was logged, is
checked before it is read, and skops loads only the types it was told to trust. Every request
goes through the same data contract as ``lcp predict``: a row that breaks it is refused (HTTP
400 from the scoring server) with the field and the reason. The answer names each lead, its
probability, and the model it came from.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pandas as pd

from lead_conversion_prediction.exceptions import ArtifactError
from lead_conversion_prediction.schema import ID_COLUMN, MODEL_INPUT_COLUMNS

PIPELINE_ARTIFACT = "pipeline"
# The training rows' reference profile (monitoring/profile.py), logged with the chosen model.
PROFILE_ARTIFACT = "reference_profile"
# The SHA-256 of the logged model's files, on its run and on its registered version.
MODEL_DIGEST_TAG = "model_sha256"
# Set by `lcp serve` to the registry version it serves (models:/lead_model/3).
PROVENANCE_ENV = "LCP_MODEL_PROVENANCE"
# What MLflow adds to a registered model's files when it downloads them (name and version).
_ADDED_BY_THE_REGISTRY = ("registered_model_meta",)
# What Python adds when `mlflow.pyfunc.load_model` imports the model's code where it is
# stored (a local store's files): bytecode caches. The digest leaves them out, so lcp removes
# them from its own copy of the files before anything loads (`drop_unchecked`): a planted
# .pyc can never stand in for the checked source `lcp serve` imports.
_ADDED_BY_PYTHON = ("__pycache__",)


def model_digest(folder: Path) -> str:
    """The digest of a logged model's files, as recorded when it was logged."""
    from lead_conversion_prediction.utils.storage import directory_digest

    return directory_digest(folder, exclude=_ADDED_BY_THE_REGISTRY, skip_folders=_ADDED_BY_PYTHON)


def drop_unchecked(folder: Path) -> None:
    """Remove from a downloaded model's files what its digest does not cover and Python would
    load: the bytecode caches beside its code."""
    import shutil

    for name in _ADDED_BY_PYTHON:
        for found in sorted(folder.rglob(name), reverse=True):
            if found.is_dir() and not found.is_symlink():
                shutil.rmtree(found)
            else:
                found.unlink()


def read_pipeline(path: Path, sha256: str, trusted: list[str]) -> Any:
    """Read a skops Pipeline once its bytes have the recorded SHA-256."""
    import skops.io

    content = path.read_bytes()
    if hashlib.sha256(content).hexdigest() != sha256:
        raise ArtifactError(f"{path}: checksum differs from the one recorded when it was logged")
    return skops.io.loads(content, trusted=trusted)


def provenance_of(model_folder: Path, pipeline_sha256: str) -> str:
    """``models:/<name>/<version>`` when the registry gave the files, else the Pipeline's hash."""
    import yaml

    meta = model_folder / _ADDED_BY_THE_REGISTRY[0]
    if meta.is_file():
        facts = yaml.safe_load(meta.read_text(encoding="utf-8")) or {}
        if facts.get("model_name") and facts.get("model_version"):
            return f"models:/{facts['model_name']}/{facts['model_version']}"
    return f"pipeline.skops@sha256:{pipeline_sha256[:12]}"


def answer(model: Any, leads: pd.DataFrame, provenance: str) -> pd.DataFrame:
    """Check raw lead records against the contract and score them; raise on the first breach."""
    from lead_conversion_prediction.modeling.evaluate import positive_probability
    from lead_conversion_prediction.schema import check_leads

    typed, breaches = check_leads(leads, "request", MODEL_INPUT_COLUMNS)
    if breaches:
        breach = breaches[0]
        rows = ", ".join(str(int(row)) for row in breach.rows[:5])
        raise ValueError(f"{breach.reason} (record {rows}, counting from 0)")
    probability = positive_probability(
        model, typed.loc[:, list(MODEL_INPUT_COLUMNS)].astype(float)
    )
    scores = pd.DataFrame({"conversion_probability": probability, "model": provenance})
    if ID_COLUMN in typed:
        scores.insert(0, ID_COLUMN, typed[ID_COLUMN].astype("Int64"))
    return scores


class LeadScorer:
    """MLflow's PythonModel interface over the lead Pipeline (see the module's docstring)."""

    model: Any = None
    provenance = ""

    def load_context(self, context: Any) -> None:
        config = context.model_config
        pipeline = Path(context.artifacts[PIPELINE_ARTIFACT])
        self.model = read_pipeline(
            pipeline, config["pipeline_sha256"], list(config["trusted_types"])
        )
        self.provenance = os.environ.get(PROVENANCE_ENV) or provenance_of(
            pipeline.parents[1], config["pipeline_sha256"]
        )

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

        try:
            return answer(self.model, pd.DataFrame(model_input), self.provenance)
        except ValueError as error:
            raise MlflowException(str(error), error_code=INVALID_PARAMETER_VALUE) from None


def python_model() -> Any:
    """A :class:`LeadScorer` that is an ``mlflow.pyfunc.PythonModel``, for MLflow to load."""
    from mlflow.pyfunc.model import PythonModel

    class RegisteredLeadScorer(LeadScorer, PythonModel):  # type: ignore[misc]
        """The lead scorer as MLflow sees it."""

    return RegisteredLeadScorer()
