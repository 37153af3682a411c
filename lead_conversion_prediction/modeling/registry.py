"""The model registry (MLflow): versions, the champion and challenger aliases, their history.

Every registered version gets the alias ``challenger``; the alias ``champion`` moves only
through :func:`move_champion`, which also appends the move to the registered model's history
(one tag per move: ``champion.history.<n>``), so that a rollback knows where to go back to.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from lead_conversion_prediction.exceptions import RegistryError

CHAMPION = "champion"
CHALLENGER = "challenger"
HISTORY_PREFIX = "champion.history."


@dataclass(frozen=True)
class ChampionMove:
    """One move of the champion alias: to which version, from which, when, why, by whom."""

    number: int
    version: int
    previous: int | None
    at: str
    reason: str
    by: str


def client() -> Any:
    """An MLflow client of the configured tracking store."""
    from mlflow import MlflowClient

    return MlflowClient()


def champion_version(name: str) -> Any | None:
    """The version holding the champion alias, or None."""
    return _alias(name, CHAMPION)


def challenger_version(name: str) -> Any | None:
    """The version holding the challenger alias, or None."""
    return _alias(name, CHALLENGER)


def _alias(name: str, alias: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        return client().get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def get_version(name: str, version: int) -> Any:
    """A registered version; a missing one is a one-line error."""
    from mlflow.exceptions import MlflowException

    try:
        return client().get_model_version(name, str(version))
    except MlflowException:
        raise RegistryError(f"models:/{name}/{version}: no such version") from None


def find_version(name: str, tag: str, value: str) -> Any | None:
    """The first version of ``name`` whose tag ``tag`` is ``value``, or None."""
    from mlflow.exceptions import MlflowException

    try:
        found = client().search_model_versions(f"name = '{name}' and tag.`{tag}` = '{value}'")
    except MlflowException:
        return None
    return min(found, key=lambda version: int(version.version)) if found else None


def register_version(model_uri: str, name: str, tags: Mapping[str, str], description: str) -> Any:
    """Register ``model_uri`` as a new version of ``name``, as the challenger."""
    import mlflow

    version = mlflow.register_model(model_uri, name, tags=dict(tags))
    registry = client()
    registry.update_model_version(name, version.version, description=description)
    registry.set_registered_model_alias(name, CHALLENGER, version.version)
    return version


def tag_version(name: str, version: int, tags: Mapping[str, str]) -> None:
    """Set tags on a version."""
    registry = client()
    for key, value in tags.items():
        registry.set_model_version_tag(name, str(version), key, value)


def describe_version(name: str, version: int, description: str) -> None:
    """Set a version's one-line description."""
    client().update_model_version(name, str(version), description=description)


def history(name: str) -> list[ChampionMove]:
    """Every move of the champion alias, oldest first."""
    from mlflow.exceptions import MlflowException

    try:
        tags = client().get_registered_model(name).tags
    except MlflowException:
        return []
    moves = [
        ChampionMove(**json.loads(value))
        for key, value in tags.items()
        if key.startswith(HISTORY_PREFIX)
    ]
    return sorted(moves, key=lambda move: move.number)


def move_champion(name: str, version: int, reason: str) -> ChampionMove:
    """Give ``version`` the champion alias and record the move in the history."""
    import getpass
    import socket

    registry = client()
    current = champion_version(name)
    moves = history(name)
    move = ChampionMove(
        number=(moves[-1].number + 1) if moves else 1,
        version=version,
        previous=int(current.version) if current is not None else None,
        at=datetime.now(UTC).isoformat(timespec="seconds"),
        reason=reason,
        by=f"{getpass.getuser()}@{socket.gethostname()}",
    )
    registry.set_registered_model_alias(name, CHAMPION, str(version))
    registry.set_registered_model_tag(
        name, f"{HISTORY_PREFIX}{move.number:05d}", json.dumps(asdict(move))
    )
    registry.set_model_version_tag(name, str(version), "promoted_at", move.at)
    return move
