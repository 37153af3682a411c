"""Fixtures that run the real commands on the real data, once per test session."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import support
from tests.support import make_project


@dataclass(frozen=True)
class PipelineRun:
    """A project root where ``lcp pipeline`` ran, with its tracking store and output."""

    root: Path
    tracking_uri: str
    log: str

    @property
    def home(self) -> Path:
        """The home folder the commands ran with: what they leave there shows."""
        return self.root.parent / "home"

    def lcp(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run another ``lcp`` command against this root and store."""
        return run_lcp(self.root, self.tracking_uri, *args)


def run_lcp(root: Path, tracking_uri: str, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {
        "LCP_ROOT": str(root),
        "MLFLOW_TRACKING_URI": tracking_uri,
        "HOME": str(root.parent / "home"),
    }
    # As users run it: the command line itself turns MLflow's telemetry off.
    return support.run_lcp(*args, env=environment, unset=("MLFLOW_DISABLE_TELEMETRY",))


def run_pipeline(base: Path, raw: Path) -> PipelineRun:
    root = make_project(base / "project", raw)
    (base / "home").mkdir()
    uri = f"sqlite:///{base / 'mlflow.db'}"
    result = run_lcp(root, uri, "pipeline")
    assert result.returncode == 0, result.stderr[-3000:]
    return PipelineRun(root=root, tracking_uri=uri, log=result.stderr)


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory: pytest.TempPathFactory, real_raw_data: Path) -> PipelineRun:
    """The whole pipeline, run once on the real data."""
    return run_pipeline(tmp_path_factory.mktemp("first"), real_raw_data)


@pytest.fixture(scope="session")
def second_run(tmp_path_factory: pytest.TempPathFactory, real_raw_data: Path) -> PipelineRun:
    """The same pipeline run again from scratch, in another folder and store."""
    return run_pipeline(tmp_path_factory.mktemp("second"), real_raw_data)
