"""What the suite selects by itself: the workflow's replay is left out inside that workflow."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from tests.conftest import TESTS_DIR, WORKFLOW_REPLAY, inside_the_workflow


def test_the_workflow_replay_is_deselected_only_under_github_actions() -> None:
    replay = SimpleNamespace(nodeid=WORKFLOW_REPLAY)
    other = SimpleNamespace(nodeid="tests/integration/test_workflow_run.py::test_a_probe")
    items: list[Any] = [other, replay]
    assert inside_the_workflow(items, {"GITHUB_ACTIONS": "true"}) == [replay]
    assert inside_the_workflow(items, {}) == []
    assert inside_the_workflow(items, {"GITHUB_ACTIONS": "false"}) == []
    path, _, name = WORKFLOW_REPLAY.partition("::")
    assert f"def {name}(" in (TESTS_DIR.parent / path).read_text(encoding="utf-8")
