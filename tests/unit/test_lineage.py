"""The commit a registered version records: git's, or the one a copy without .git is told."""

from __future__ import annotations

from pathlib import Path

import pytest

from lead_conversion_prediction.modeling.lineage import COMMIT_ENV_VAR, git_state


def test_a_copy_without_git_records_the_commit_it_is_told_else_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(COMMIT_ENV_VAR, raising=False)
    assert git_state(tmp_path) == ("unknown", "unknown")
    monkeypatch.setenv(COMMIT_ENV_VAR, "3f5a9c0d1e2b4a6c8d0e1f2a3b4c5d6e7f8a9b0c")
    assert git_state(tmp_path) == ("3f5a9c0d1e2b4a6c8d0e1f2a3b4c5d6e7f8a9b0c", "unknown")
