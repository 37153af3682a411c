"""SIGKILL of `lcp pipeline` at moments read from its own log, with new parameters.

After each kill: no child process survives, `lcp verify` passes, `lcp validate` passes or
refuses with one line (both run in the test's process: they check files), no temporary file
is left, and the models are wholly one set. The next run starts from what the kill left, and
the last one succeeds and leaves no run RUNNING.
"""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from lead_conversion_prediction.config import Paths
from lead_conversion_prediction.utils.atomic import TEMP_SUFFIX
from lead_conversion_prediction.utils.storage import COMMIT_NAME
from tests.faults.conftest import Project, alive, descendants, read_until, retrain_small
from tests.support import wait_until

pytestmark = pytest.mark.long(seconds=90)

# Moments of a run, as its log shows them; the kill lands just after the line appears. One
# moment for each state the files and the store can be left in: the stages before training
# committed and training under way (`train: start`; `features: done` comes a moment before it
# and leaves the same files), training committed and nothing registered yet (as at
# `register: start`), a registration under way with its run RUNNING, the version registered
# before the bundle is made (the bundle is then made anew, as after `package`), and everything
# written but the pipeline's own end.
MOMENTS = [
    "train: start",
    "train: done",
    "evaluate: done",
    "register: done",
    "validate: done",
]


def leftovers(root: Paths) -> list[str]:
    places = [root.root / "data", root.models_dir, root.reports_dir]
    return sorted(
        str(path)
        for place in places
        for path in place.rglob("*")
        if path.name.endswith(TEMP_SUFFIX) or path.name == COMMIT_NAME
    )


def running_runs(project: Project) -> int:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{project.store}")
    experiment = client.get_experiment_by_name("lead-conversion")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'")
    return len(runs)


def one_line_or_success(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr
    if result.returncode != 0:
        assert result.returncode == 2
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1


def kill_at(project: Project, moment: str) -> None:
    """Start ``lcp pipeline`` and SIGKILL it just after ``moment`` shows in its log; wait until
    no child of it is left."""
    process = project.start("pipeline")
    try:
        read_until(process, moment)
        children = descendants(process.pid)
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=60) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    wait_until(lambda: not [pid for pid in children if alive(pid)], 60, "the children exit")


def test_a_killed_pipeline_leaves_a_whole_set_no_child_and_reruns(project: Project) -> None:
    """One run killed at each moment in turn, each run starting from what the kill before it
    left (a run is the rerun of the kill before it), and then one run to its end."""
    retrain_small(project)
    paths = Paths(project.root)
    old_manifest = (paths.models_dir / "SHA256SUMS").read_text()
    for moment in MOMENTS:
        kill_at(project, moment)
        verified = project.here("verify")
        assert verified.returncode == 0, (moment, verified.stderr)
        one_line_or_success(project.here("validate", "--model", str(paths.validator_model)))
        assert leftovers(paths) == [], moment
        manifest = (paths.models_dir / "SHA256SUMS").read_text()
        assert manifest == old_manifest or moment in MOMENTS[1:], "only train switches the set"

    rerun = project.lcp("pipeline")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert project.here("verify").returncode == 0
    assert (paths.models_dir / "SHA256SUMS").read_text() != old_manifest, "the new set"
    assert leftovers(paths) == []
    assert running_runs(project) == 0
