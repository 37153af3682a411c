"""Expensive set-ups made once per pytest run and copied for each user of them.

Under pytest-xdist every worker is a process of its own with its own session fixtures, so a
session fixture alone would run the whole pipeline once per worker. ``once_per_run`` makes a
set-up in the run's shared base folder under a file lock instead: the first worker to ask
builds it, the others wait for it and reuse it. Each worker then works on a copy of its own
(project and tracking store; the store's artifacts stay shared, read-only), so that no worker
sees what another's tests wrote.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import support
from tests.support import make_project

DONE = ".made"


def run_base(factory: pytest.TempPathFactory) -> Path:
    """The base folder every worker of this pytest run shares (the run's own without xdist)."""
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def once_per_run(
    factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]
) -> Path:
    """The folder ``name`` of the run's shared base, made by ``build`` once for the whole run.

    A build that fails leaves no mark, so the next worker that asks builds again and fails
    with its own message.
    """
    folder = run_base(factory) / name
    with (run_base(factory) / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / DONE).is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            (folder / DONE).touch()
    return folder


def copy_of(made: Path, target: Path, *names: str) -> Path:
    """Copy the named entries of a made folder into ``target`` (links kept as links)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        source = made / name
        if source.is_dir():
            shutil.copytree(source, target / name, symlinks=True)
        else:
            shutil.copy2(source, target / name)
    return target


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
    """Run ``lcp`` on ``root`` and its store, its home folder beside the root."""
    environment = {
        "LCP_ROOT": str(root),
        "MLFLOW_TRACKING_URI": tracking_uri,
        "HOME": str(root.parent / "home"),
    }
    # As users run it: the command line itself turns MLflow's telemetry off.
    return support.run_lcp(*args, env=environment, unset=("MLFLOW_DISABLE_TELEMETRY",))


def run_pipeline(base: Path, raw: Path) -> None:
    """Run the whole pipeline in ``base``: project/, home/, mlflow.db, mlruns/, pipeline.log."""
    root = make_project(base / "project", raw)
    (base / "home").mkdir()
    result = run_lcp(root, f"sqlite:///{base / 'mlflow.db'}", "pipeline")
    (base / "pipeline.log").write_text(result.stderr)
    assert result.returncode == 0, result.stderr[-3000:]


def pipeline_copy(factory: pytest.TempPathFactory, name: str, raw: Path) -> PipelineRun:
    """This worker's copy of the pipeline run ``name``, made once for the whole run."""
    made = once_per_run(factory, name, lambda base: run_pipeline(base, raw))
    base = copy_of(made, factory.mktemp(name), "project", "home", "mlflow.db")
    return PipelineRun(
        root=base / "project",
        tracking_uri=f"sqlite:///{base / 'mlflow.db'}",
        log=(made / "pipeline.log").read_text(),
    )
