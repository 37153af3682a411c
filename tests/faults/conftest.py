"""Fault injection on real runs: the project trained once per run on the real data, copied per
test."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.trained import PipelineRun

LCP = [sys.executable, "-m", "lead_conversion_prediction"]


@dataclass(frozen=True)
class Project:
    """A project root and its tracking store."""

    root: Path
    store: Path

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "LCP_ROOT": str(self.root),
            "MLFLOW_TRACKING_URI": f"sqlite:///{self.store}",
        }

    def lcp(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*LCP, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def here(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run an lcp command in this process (a check of the files, not of a process)."""
        from tests.support import lcp_here

        store = f"sqlite:///{self.store}"
        return lcp_here(*args, env={"LCP_ROOT": str(self.root), "MLFLOW_TRACKING_URI": store})

    def start(self, *args: str) -> subprocess.Popen[str]:
        """Start an lcp command in its own session, its log on stderr, line by line."""
        return subprocess.Popen(
            [*LCP, *args],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            start_new_session=True,
        )


@pytest.fixture(scope="session")
def trained(pipeline_run: PipelineRun) -> Project:
    """A project where the whole pipeline ran once on the real data (version 1 registered):
    this worker's copy of the run's one pipeline."""
    return Project(pipeline_run.root, pipeline_run.root.parent / "mlflow.db")


@pytest.fixture
def project(trained: Project, tmp_path: Path) -> Project:
    """A copy of the trained project and of its store (its artifacts stay shared, read-only)."""
    root = Path(shutil.copytree(trained.root, tmp_path / "project", symlinks=True))
    shutil.copy(trained.store, tmp_path / "mlflow.db")
    return Project(root, tmp_path / "mlflow.db")


@pytest.fixture
def own_artifacts(project: Project) -> Project:
    """The project's copy, its store pointing at a copy of its own of the artifacts: for a test
    that changes a logged model's files, which every worker's tests otherwise read at once."""
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(project.store)) as store, store:
        (location,) = store.execute(
            "SELECT artifact_location FROM experiments WHERE name = 'lead-conversion'"
        ).fetchone()
        shared = str(Path(str(location).removeprefix("file://")).parent)
        own = project.store.parent / "mlruns"
        shutil.copytree(shared, own, symlinks=True)
        tables = [
            row[0] for row in store.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        for table in tables:
            for column in store.execute(f"PRAGMA table_info({table})").fetchall():
                if any(kind in str(column[2]).upper() for kind in ("CHAR", "TEXT")):
                    store.execute(
                        f"UPDATE {table} SET {column[1]} = REPLACE({column[1]}, ?, ?) "
                        f"WHERE instr({column[1]}, ?) > 0",
                        (shared, str(own), shared),
                    )
    return project


def retrain_small(project: Project) -> None:
    """New parameters for the next run: another split, so that its artifacts differ from the
    trained ones, and a small search, since runs here are about artifacts and processes, not
    the model's quality."""
    import yaml

    params = yaml.safe_load((project.root / "params.yaml").read_text())
    params["split"]["random_state"] = 7
    params["train"]["candidates"] = ["logistic_regression"]
    params["train"]["logistic_regression"]["n_iter"] = 2
    (project.root / "params.yaml").write_text(yaml.safe_dump(params))


def read_until(process: subprocess.Popen[str], marker: str, seconds: float = 600) -> list[str]:
    """Read the process's log lines until one holds ``marker``; fail if it ends first."""
    assert process.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + seconds
    for line in process.stderr:
        lines.append(line)
        if marker in line:
            return lines
        if time.monotonic() > deadline:
            break
    pytest.fail(f"'{marker}' never came; the log ended with: {''.join(lines[-20:])}")


def descendants(pid: int) -> set[int]:
    """The processes below ``pid``, read from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def stopped() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts; any left running at its end are killed with their group."""
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)
