"""The model registry (MLflow): versions, the champion and challenger aliases, their history.

Every registered version gets the alias ``challenger``; the alias ``champion`` moves only
through :func:`move_champion`, which also appends the move to the registered model's history
(one tag per move: ``champion.history.<n>``), so that a rollback knows where to go back to:
the champions' line (:func:`champion_line`) is the history with each rollback's steps undone.
The callers that read the champion, compare and move it hold the registry lock
(``registry_lock.py``), so that read-compare-set is atomic across processes and machines.

A version is registered in two steps: created with its lineage tags and the tag
``lcp.registration`` = ``in progress``, then, once its report and metrics are attached, marked
``complete`` and given the challenger alias. A registration that fails is deleted (or, when
even that fails, marked ``failed``); only complete versions are ever promoted.

The readers (:func:`alias_version`, :func:`get_version`, :func:`history`) find nothing in a
SQLite store whose file does not exist yet, and leave it uncreated.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from loguru import logger

from lead_conversion_prediction.exceptions import NoChampionError, RegistryError

if TYPE_CHECKING:
    from lead_conversion_prediction.modeling.artifacts import MetricsReport
    from lead_conversion_prediction.modeling.lineage import Lineage

CHAMPION = "champion"
CHALLENGER = "challenger"
HISTORY_PREFIX = "champion.history."
REGISTRATION_TAG = "lcp.registration"
IN_PROGRESS, COMPLETE, FAILED = "in progress", "complete", "failed"
# The SHA-256 of the lead_model.joblib a version was registered from: the same model gives
# the same bytes, so it identifies the model, and tells whether the workspace is the champion.
WORKSPACE_TAG = "lead_model_sha256"


@dataclass(frozen=True)
class ChampionMove:
    """One move of the champion alias: to which version, from which, when, why, by whom."""

    number: int
    version: int
    previous: int | None
    at: str
    reason: str
    by: str
    rollback: bool = False  # a step back along the champions' line, not a promotion

    @property
    def is_rollback(self) -> bool:
        """Whether the move went back along the line (older records say so in the reason)."""
        return self.rollback or self.reason.startswith(ROLLBACK_REASON)


ROLLBACK_REASON = "rollback from version"


def champion_line(moves: list[ChampionMove]) -> list[int]:
    """The champions' line, oldest first, the current champion last: each promotion adds its
    version; each rollback returns to an earlier one, and what followed it leaves the line."""
    line: list[int] = []
    for move in moves:
        if move.is_rollback and move.version in line:
            del line[len(line) - line[::-1].index(move.version) :]
        else:
            line.append(move.version)
    return line


def client() -> Any:
    """An MLflow client of the configured tracking store."""
    from mlflow import MlflowClient

    return MlflowClient()


def champion_uri(name: str) -> str:
    """The URI of the version holding the champion alias: what the commands score with."""
    return f"models:/{name}@{CHAMPION}"


def store_is_new(uri: str | None = None) -> bool:
    """Whether the tracking store (``uri``, by default MLflow's) is a SQLite file not created
    yet: it holds nothing, and reading it must not create it (MLflow's client does)."""
    from lead_conversion_prediction.modeling.tracking_check import store_exists

    if uri is None:
        import mlflow

        uri = mlflow.get_tracking_uri()
    return not store_exists(uri)


def require_store(model_uri: str, uri: str | None = None) -> None:
    """Refuse a model URI of a store not created yet on one line, without creating it: the
    champion alias with ``lcp champion``'s own line."""
    if not model_uri.startswith(("models:/", "runs:/")) or not store_is_new(uri):
        return
    name, _, alias = model_uri.removeprefix("models:/").partition("@")
    if alias == CHAMPION:
        raise NoChampionError(name)
    raise RegistryError(f"{model_uri}: the tracking store is empty; run 'make pipeline' first")


def champion_version(name: str) -> Any | None:
    """The version holding the champion alias, or None."""
    return alias_version(name, CHAMPION)


def challenger_version(name: str) -> Any | None:
    """The version holding the challenger alias, or None."""
    return alias_version(name, CHALLENGER)


def alias_version(name: str, alias: str) -> Any | None:
    """The version of ``name`` holding ``alias``, or None."""
    from mlflow.exceptions import MlflowException

    if store_is_new():
        return None
    try:
        return client().get_model_version_by_alias(name, alias)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def get_version(name: str, version: int) -> Any:
    """A registered version; a missing one is a one-line error."""
    from mlflow.exceptions import MlflowException

    if store_is_new():
        raise RegistryError(f"models:/{name}/{version}: no such version")
    try:
        return client().get_model_version(name, str(version))
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise RegistryError(f"models:/{name}/{version}: no such version") from None
        raise


def registration_state(version: Any) -> str:
    """``complete``, ``in progress`` or ``failed`` (versions from before the tag: complete)."""
    return str(version.tags.get(REGISTRATION_TAG, COMPLETE))


def find_version(name: str, tag: str, value: str) -> Any | None:
    """The first version of ``name`` whose tag ``tag`` is ``value``, or None; failed ones
    (and those of a process of this host that died while registering) do not count."""
    from mlflow.exceptions import MlflowException

    try:
        found = client().search_model_versions(f"name = '{name}' and tag.`{tag}` = '{value}'")
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    alive = [version for version in found if not _failed(version)]
    return min(alive, key=lambda version: int(version.version)) if alive else None


def _failed(version: Any) -> bool:
    """Whether a version's registration failed, marking it so when its process died here."""
    state = registration_state(version)
    if state == FAILED:
        return True
    if state == IN_PROGRESS and _owner_is_dead_here(version.tags):
        client().set_model_version_tag(version.name, version.version, REGISTRATION_TAG, FAILED)
        return True
    return False


def _owner_is_dead_here(tags: Mapping[str, str]) -> bool:
    import os
    import socket

    pid = tags.get("lcp.pid", "")
    if tags.get("lcp.host") != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def register_version(model_uri: str, name: str, tags: Mapping[str, str], description: str) -> Any:
    """Register ``model_uri`` as a new version of ``name``, its registration in progress."""
    import mlflow

    from lead_conversion_prediction.utils.logging import printed_as_debug

    with printed_as_debug("mlflow"):  # "Created version ...": the stage's line says so
        version = mlflow.register_model(
            model_uri, name, tags={**tags, REGISTRATION_TAG: IN_PROGRESS}
        )
    client().update_model_version(name, version.version, description=description)
    return version


def complete_version(name: str, version: int) -> None:
    """Mark a version's registration complete and make it the challenger."""
    registry = client()
    registry.set_model_version_tag(name, str(version), REGISTRATION_TAG, COMPLETE)
    registry.set_registered_model_alias(name, CHALLENGER, str(version))


def abandon_version(name: str, version: int) -> None:
    """Delete a version whose registration failed; mark it failed when even that fails."""
    from mlflow.exceptions import MlflowException

    registry = client()
    try:
        registry.delete_model_version(name, str(version))
        logger.warning("register: version {} deleted: its registration failed", version)
        return
    except MlflowException:
        pass
    try:
        registry.set_model_version_tag(name, str(version), REGISTRATION_TAG, FAILED)
        logger.warning("register: version {} marked failed", version)
    except MlflowException:
        logger.warning("register: version {} is left 'in progress': it is never promoted", version)


def history(name: str) -> list[ChampionMove]:
    """Every move of the champion alias, oldest first."""
    from mlflow.exceptions import MlflowException

    if store_is_new():
        return []
    try:
        tags = client().get_registered_model(name).tags
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return []
        raise
    moves = [
        ChampionMove(**json.loads(value))
        for key, value in tags.items()
        if key.startswith(HISTORY_PREFIX)
    ]
    return sorted(moves, key=lambda move: move.number)


def move_champion(name: str, version: int, reason: str, rollback: bool = False) -> ChampionMove:
    """Give ``version`` the champion alias and record the move (a promotion, or a
    ``rollback``) in the history.

    The caller holds the registry lock (``registry_lock.registry_lock``) across its reading of
    the champion, its comparison and this move.
    """
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
        rollback=rollback,
    )
    registry.set_registered_model_alias(name, CHAMPION, str(version))
    registry.set_registered_model_tag(
        name, f"{HISTORY_PREFIX}{move.number:05d}", json.dumps(asdict(move))
    )
    registry.set_model_version_tag(name, str(version), "promoted_at", move.at)
    return move


def registered_model(name: str, workspace_digest: str) -> Any | None:
    """The version registered from the model file of this digest, or None."""
    return find_version(name, WORKSPACE_TAG, workspace_digest)


def register_chosen(
    name: str, model_uri: str, tags: Mapping[str, str], description: str
) -> tuple[int, bool]:
    """Register the chosen model, with its tags and description, unless an identical one is
    registered already.

    The look-up and the registration hold the registry lock: two runs of one model at the same
    moment register it once.
    """
    from lead_conversion_prediction.modeling.registry_lock import registry_lock

    with registry_lock(name, "lcp register"):
        existing = registered_model(name, tags[WORKSPACE_TAG])
        if existing is not None:
            logger.info(
                "register: the same model is version {} already; not registered again",
                existing.version,
            )
            return int(existing.version), False
        version = register_version(model_uri, name, tags, description)
    return int(version.version), True


@contextmanager
def completing(name: str, version: int, new: bool) -> Iterator[None]:
    """Mark a new version complete (and challenger) when the block ends; when it fails, delete
    the version, or mark it failed: nothing stays half-registered."""
    try:
        yield
    except BaseException:
        if new:
            abandon_version(name, version)
        raise
    if new:
        complete_version(name, version)


def champion_number(name: str) -> int | None:
    """The number of the version holding the champion alias, or None."""
    champion = champion_version(name)
    return int(champion.version) if champion is not None else None


def evaluation_tags(metrics: MetricsReport) -> dict[str, str]:
    """A version's tags of every holdout metric and interval."""
    from lead_conversion_prediction.modeling.report import interval_tags

    tags = {f"holdout.{key}": f"{value:.6f}" for key, value in metrics.holdout.items()}
    return {**tags, **interval_tags(metrics)}


def evaluation_summary(candidate: str, metrics: MetricsReport, lineage: Lineage) -> str:
    """A version's one-line description: its candidate, promotion metric and lineage."""
    metric = lineage.promotion_metric
    ci = metrics.holdout_ci.get(metric)
    spread = f" ({ci.low:.3f} to {ci.high:.3f})" if ci else ""
    score = metrics.holdout.get(metric, float("nan"))
    return f"{candidate}: holdout {metric} {score:.3f}{spread} {lineage.summary()}"
