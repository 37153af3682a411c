"""`lcp predict --monitor` draws its report in a worker process: it dies with its command.

SIGKILL of the command while the worker waits for its request leaves no worker, no scores and
no report; the command's own end (a scoring error) ends the worker too.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pandas as pd
import pytest

from tests.faults.conftest import Project, alive, descendants
from tests.support import wait_until

pytestmark = pytest.mark.long(seconds=20)

WORKER = b"lead_conversion_prediction.cli.report_worker"


def workers(pid: int) -> list[int]:
    """The report workers below ``pid``."""
    found = []
    for child in descendants(pid):
        try:
            if WORKER in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(child)
        except OSError:
            continue  # gone meanwhile
    return found


def big_batch(project: Project, folder: Path, copies: int = 40) -> Path:
    """The real leads, repeated: a batch that takes seconds to score."""
    leads = pd.read_csv(project.root / "data" / "raw" / "raw_data.csv", dtype="str")
    path = folder / "leads.csv"
    pd.concat([leads] * copies, ignore_index=True).to_csv(path, index=False)
    return path


def test_a_killed_command_leaves_no_worker_scores_or_report(
    project: Project, tmp_path: Path
) -> None:
    leads, scores = big_batch(project, tmp_path), tmp_path / "scores.csv"
    model = str(project.root / "models" / "lead_model.joblib")
    process = project.start(
        "predict", "--model", model, "-i", str(leads), "-o", str(scores), "--monitor"
    )
    try:
        wait_until(lambda: bool(workers(process.pid)), 120, "the report worker starts", process)
        (worker,) = workers(process.pid)
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=60) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    wait_until(lambda: not alive(worker), 60, "the worker ends with its command")
    assert not scores.exists() and not (tmp_path / "scores.monitoring").exists()


def test_a_scoring_error_ends_the_worker_with_the_command(
    project: Project, tmp_path: Path
) -> None:
    leads = tmp_path / "leads.csv"
    raw = pd.read_csv(project.root / "data" / "raw" / "raw_data.csv", dtype="str")
    raw.assign(n_visits="many").to_csv(leads, index=False)
    process = project.start(
        "predict", "--model", str(project.root / "models" / "lead_model.joblib"),
        "-i", str(leads), "-o", str(tmp_path / "scores.csv"), "--monitor",
    )  # fmt: skip
    seen: set[int] = set()

    def ended() -> bool:
        seen.update(workers(process.pid))
        return process.poll() is not None

    wait_until(ended, 120, "the command ends")
    assert process.returncode == 2
    assert seen, "the worker was started"
    wait_until(lambda: not any(alive(pid) for pid in seen), 60, "the worker ends too")
    assert not (tmp_path / "scores.monitoring").exists()
