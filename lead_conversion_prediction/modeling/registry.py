"""The model registry (MLflow): register a version, and make it champion only if it is better.

Every registered version of ``lead_model`` gets the alias ``challenger``. It takes the alias
``champion`` only when its holdout score beats the current champion's score on the same
holdout rows (the champion is loaded and scored again, so older versions are judged on today's
holdout); a tie keeps the champion.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lead_conversion_prediction.modeling.artifacts import RegistryDecision
from lead_conversion_prediction.modeling.selection import is_better
from lead_conversion_prediction.scoring.model import load_registered_model

CHAMPION = "champion"
CHALLENGER = "challenger"


def current_champion(client: Any, model_name: str) -> int | None:
    """Return the version holding the champion alias, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return int(client.get_model_version_by_alias(model_name, CHAMPION).version)
    except MlflowException:
        return None


def register_and_promote(
    model_uri: str,
    model_name: str,
    metric: str,
    score: float,
    score_model: Callable[[Any], float],
    tags: Mapping[str, str] | None = None,
) -> RegistryDecision:
    """Register ``model_uri`` as a new challenger version; promote it if it beats the champion.

    ``score_model`` scores a loaded model on the current holdout rows with ``metric``.
    """
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient()
    champion = current_champion(client, model_name)
    champion_score = None
    if champion is not None:
        loaded = load_registered_model(f"models:/{model_name}@{CHAMPION}")
        champion_score = score_model(loaded.model)

    registered = mlflow.register_model(model_uri, model_name, tags=dict(tags or {}))
    version = int(registered.version)
    client.set_model_version_tag(model_name, str(version), f"holdout_{metric}", f"{score:.6f}")
    client.set_registered_model_alias(model_name, CHALLENGER, str(version))
    promoted = is_better(score, champion_score)
    if promoted:
        client.set_registered_model_alias(model_name, CHAMPION, str(version))
    return RegistryDecision(
        model_name=model_name,
        metric=metric,
        version=version,
        score=score,
        previous_champion=champion,
        previous_champion_score=champion_score,
        promoted=promoted,
    )
