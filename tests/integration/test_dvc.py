"""DVC around the pipeline, in a git copy of the project: lock, no-op repro, experiments."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lead_conversion_prediction.config import PROJ_ROOT
from tests.support import GIT_IDENTITY, SHARED_DIR, project_files


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    base = tmp_path_factory.mktemp("dvc")
    root = base / "repo"
    for name in project_files():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJ_ROOT / name, root / name)
    env = {
        **os.environ,
        **GIT_IDENTITY,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{base / 'mlflow.db'}",
    }
    env.pop("LCP_ROOT", None)
    remote = SHARED_DIR / "dvc-remote"
    if not remote.is_dir():
        pytest.fail(f"{remote} is missing: the DVC tests pull the raw data from that mirror")
    for command in (
        "git init -q",
        "git add -A",
        "git commit -qm baseline",
        f"dvc remote add --local --default mirror {remote}",
        "dvc pull --quiet data/raw/raw_data.csv.dvc",
    ):
        run(command, root, env)
    return root, env


def run(command: str, cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        command, shell=True, cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def mlflow_runs(env: dict[str, str]) -> int:
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    experiment = MlflowClient().get_experiment_by_name("lead-conversion")
    assert experiment is not None
    return len(MlflowClient().search_runs([experiment.experiment_id]))


def test_after_a_full_run_dvc_has_nothing_to_reproduce(
    repo: tuple[Path, dict[str, str]],
) -> None:
    root, env = repo
    # What `make pipeline` runs: the pipeline in one process, which records dvc.lock.
    run("lcp pipeline", root, {**env, "LCP_ROOT": str(root)})
    assert "Data and pipelines are up to date" in run("dvc status", root, env)
    output = run("dvc repro", root, env)
    assert "Running stage" not in output
    assert "didn't change, skipping" in output


def test_an_experiment_with_another_parameter_runs_and_is_tracked(
    repo: tuple[Path, dict[str, str]],
) -> None:
    root, env = repo
    run("git add -A && git commit -qm 'pipeline results'", root, env)
    runs_before = mlflow_runs(env)
    output = run("dvc exp run -S split.random_state=7", root, env)
    assert "Running stage 'features'" in output and "Running stage 'register'" in output
    assert mlflow_runs(env) == runs_before + 4  # a pipeline run and one per candidate

    diff = run("dvc metrics diff --json", root, env)
    assert "reports/metrics.json" in diff and "holdout.accuracy" in diff
