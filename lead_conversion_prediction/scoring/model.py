"""The model to score with: a registry URI or an artifact path, loaded only once verified."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lead_conversion_prediction.exceptions import RegistryError


@dataclass(frozen=True)
class LoadedModel:
    """A lead model ready to score, and its provenance: where the scores say it came from."""

    model: Any
    provenance: str


def load_scoring_model(spec: str | None, default: Path) -> LoadedModel:
    """Load the model to score with: a registry URI, an artifact path, or ``default``.

    ``models:/lead_model@champion`` and ``runs:/...`` URIs load from MLflow (the tracking
    store must be configured); a path loads a joblib artifact after checking its SHA-256.
    """
    from lead_conversion_prediction.utils.storage import file_digest, load_artifact

    if spec and ":/" in spec:
        import mlflow

        try:
            model = mlflow.sklearn.load_model(spec)
        except Exception as error:
            raise RegistryError(f"{spec}: cannot load the model ({error})") from None
        loaded = LoadedModel(model, registry_provenance(spec))
    else:
        path = Path(spec) if spec else default
        model = load_artifact(path)
        loaded = LoadedModel(model, f"{path.name}@sha256:{file_digest(path)[:12]}")
    if "n_jobs" in loaded.model[-1].get_params():
        loaded.model[-1].set_params(n_jobs=os.cpu_count() or 1)  # scoring may use every core
    return loaded


def registry_provenance(uri: str) -> str:
    """``models:/name@alias`` becomes ``models:/name/<version>``; other URIs stay as given."""
    if not uri.startswith("models:/") or "@" not in uri:
        return uri
    from mlflow import MlflowClient

    name, alias = uri.removeprefix("models:/").split("@", 1)
    version = MlflowClient().get_model_version_by_alias(name, alias).version
    return f"models:/{name}/{version}"
