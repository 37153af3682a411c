"""The "not the champion" warning of ``lcp predict`` on the workspace's model: told by the last
registration's record, without opening the tracking store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

from lead_conversion_prediction.config import Paths
from lead_conversion_prediction.stages.predict import warn_unless_champion
from tests.support import write_registry_record


@pytest.fixture
def warnings_logged() -> Iterator[list[str]]:
    lines: list[str] = []
    handler = logger.add(lambda message: lines.append(str(message)), level="WARNING")
    yield lines
    logger.remove(handler)


@pytest.fixture
def workspace(project: Path) -> Paths:
    """A project whose model file is version 2 of the store it points at."""
    paths = Paths(project)
    paths.lead_model.parent.mkdir(parents=True)
    paths.lead_model.write_bytes(b"a model")
    write_registry_record(paths, version=2, champion=2)
    return paths


def test_the_champions_own_model_gets_no_warning(
    workspace: Paths, warnings_logged: list[str]
) -> None:
    warn_unless_champion(workspace)
    assert warnings_logged == []


def test_a_registered_model_that_is_not_the_champion_is_named(
    workspace: Paths, warnings_logged: list[str]
) -> None:
    write_registry_record(workspace, version=2, champion=1)
    warn_unless_champion(workspace)
    assert (
        len(warnings_logged) == 1
        and "is not the champion (champion: version 1)" in (warnings_logged[0])
    )


def test_a_model_changed_since_its_registration_is_named(
    workspace: Paths, warnings_logged: list[str]
) -> None:
    workspace.lead_model.write_bytes(b"another model")
    warn_unless_champion(workspace)
    assert (
        len(warnings_logged) == 1
        and "is not the model registered last (version 2)" in (warnings_logged[0])
    )


@pytest.mark.parametrize("record", ["missing", "another-store", "without-digest"])
def test_nothing_is_said_where_the_workspace_cannot_tell(
    workspace: Paths, warnings_logged: list[str], record: str
) -> None:
    workspace.lead_model.write_bytes(b"another model")
    if record == "missing":
        workspace.registry_record.unlink()
    elif record == "another-store":
        write_registry_record(
            workspace, version=2, champion=2, tracking_uri="http://127.0.0.1:5000"
        )
    else:
        write_registry_record(workspace, version=2, champion=1, workspace_sha256=None)
    warn_unless_champion(workspace)
    assert warnings_logged == []
