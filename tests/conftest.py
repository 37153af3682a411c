"""Shared fixtures: tiny lead frames built here, and the real data read from ``../shared``."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # as the lcp command line does
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

from tests.support import RAW_MD5, make_project, make_raw_leads, md5_of, shared_file


@pytest.fixture(scope="session")
def real_raw_data() -> Path:
    """The real raw lead file, read-only."""
    path = shared_file("data", "raw_data.csv")
    assert md5_of(path) == RAW_MD5, f"{path} is not the pinned raw data"
    return path


@pytest.fixture(scope="session")
def validator_pair() -> tuple[Path, Path]:
    """The course validator's own X_test.csv and y_test.csv."""
    return shared_file("validator", "X_test.csv"), shared_file("validator", "y_test.csv")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty project root in a temporary folder, with LCP_ROOT and MLflow pointing there."""
    root = make_project(tmp_path / "project")
    monkeypatch.setenv("LCP_ROOT", str(root))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    yield root


@pytest.fixture
def make_leads() -> Callable[..., pd.DataFrame]:
    """Build a small raw lead frame: ``make_leads(n=60, seed=0)``."""
    return make_raw_leads
