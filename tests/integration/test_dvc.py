"""DVC around the pipeline, in a git copy of the project: lock, no-op repro, experiments."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lead_conversion_prediction.config import PROJ_ROOT
from lead_conversion_prediction.modeling.artifacts import RegistryRecord
from tests.support import GIT_IDENTITY, PIN, SHARED_DIR, lcp_here, project_files

pytestmark = pytest.mark.long(seconds=155)


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
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("lead-conversion")
    assert experiment is not None
    return len(client.search_runs([experiment.experiment_id]))


def champion(env: dict[str, str]) -> int:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    return int(client.get_model_version_by_alias("lead_model", "champion").version)


def newest_version(env: dict[str, str]) -> int:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    return max(int(v.version) for v in client.search_model_versions("name = 'lead_model'"))


def record(root: Path) -> RegistryRecord:
    return RegistryRecord.read(root / "reports" / "registry.json")


@pytest.fixture(scope="module")
def quick_start(repo: tuple[Path, dict[str, str]]) -> tuple[Path, dict[str, str]]:
    """What `make pipeline` runs in the copy: the pipeline in one process, which records
    dvc.lock."""
    root, env = repo
    run("lcp pipeline", root, {**env, "LCP_ROOT": str(root)})
    return root, env


def test_the_quick_start_leaves_git_status_clean(
    quick_start: tuple[Path, dict[str, str]],
) -> None:
    root, env = quick_start
    assert run("git status --porcelain", root, env) == "", "dvc.lock and reports as committed"


def test_after_a_full_run_dvc_repro_does_nothing(
    quick_start: tuple[Path, dict[str, str]],
) -> None:
    root, env = quick_start
    assert "Data and pipelines are up to date" in run("dvc status", root, env)
    runs = mlflow_runs(env)
    output = run("dvc repro", root, env)
    assert "Running stage" not in output, output
    assert mlflow_runs(env) == runs, "no new MLflow run"
    assert record(root).champion == champion(env)


def test_registering_a_registered_model_logs_no_run(
    quick_start: tuple[Path, dict[str, str]],
) -> None:
    root, env = quick_start
    runs, first = mlflow_runs(env), record(root)
    module = root / "lead_conversion_prediction" / "stages" / "register.py"
    original = module.read_text()
    module.write_text(original + "# a change only the register stage reads\n")
    try:
        output = run("dvc repro", root, env)
    finally:
        module.write_text(original)
    assert output.count("Running stage") == 1 and "Running stage 'register'" in output
    assert mlflow_runs(env) == runs, "the model was looked up before anything was logged"
    again = record(root)
    assert (again.version, again.new_version) == (first.version, False)
    assert (again.parent_run_id, again.runs) == (first.parent_run_id, first.runs)
    run("dvc repro", root, env)  # the code as committed again
    assert mlflow_runs(env) == runs
    assert "Running stage" not in run("dvc repro", root, env)


def test_a_new_store_gets_the_model_from_lcp_register(
    quick_start: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    root, env = quick_start
    other = {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    assert "Running stage" not in run("dvc repro", root, other), "DVC cannot see the store"
    here = {"LCP_ROOT": str(root)}  # DVC gives its commands DVC_ROOT; a user runs lcp in it

    def register(store: dict[str, str]) -> None:  # in this process: the store is the matter
        result = lcp_here(
            "register", env={**here, "MLFLOW_TRACKING_URI": store["MLFLOW_TRACKING_URI"]}
        )
        assert result.returncode == 0, result.stderr[-2000:]

    register(other)
    runs = mlflow_runs(other)
    assert runs == 1 + len(record(root).runs), "a pipeline run and one per candidate"
    assert newest_version(other) == champion(other) == 1
    register(other)
    assert mlflow_runs(other) == runs, "registered there already: nothing logged again"
    register(env)  # the record tells of the project's store again
    assert record(root).tracking_uri == env["MLFLOW_TRACKING_URI"]


def pin_data_and_url(pin: Path) -> tuple[object, str]:
    """What a DVC pin says of the data (its ``outs``) and where it comes from."""
    import yaml

    content = yaml.safe_load(pin.read_text())
    return content["outs"], content["deps"][0]["path"]


def test_an_experiment_registers_a_challenger_and_never_moves_the_champion(
    quick_start: tuple[Path, dict[str, str]],
) -> None:
    root, env = quick_start
    before = champion(env)
    runs_before = mlflow_runs(env)
    output = run("dvc exp run -S split.random_state=7", root, env)
    assert "Running stage 'features'" in output and "Running stage 'register'" in output
    # A pipeline run and one per candidate.
    assert mlflow_runs(env) == runs_before + 1 + len(record(root).runs)
    assert champion(env) == before
    assert newest_version(env) > before
    # -S rewrites params.yaml as DVC writes it: one line changes.
    diff = run("git diff --unified=0 params.yaml", root, env)
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in "+++---"]
    assert changed == ["-  random_state: 42", "+  random_state: 7"]
    # The pin's data does not change. Where the upstream URL answers (online, or a stand-in),
    # DVC records what the server says of it among the pin's deps: that alone may change.
    assert pin_data_and_url(root / PIN) == pin_data_and_url(PROJ_ROOT / PIN)
    assert run("git diff --cached --name-only", root, env) == "", "nothing is staged for us"

    metrics = run("dvc metrics diff --json", root, env)
    assert "holdout.roc_auc" in metrics and "cv.neg_log_loss.mean" in metrics
    table = run("dvc metrics diff", root, {**env, "COLUMNS": "120"})
    assert max(len(line) for line in table.splitlines()) <= 120
    show = run("dvc exp show --only-changed --no-pager", root, {**env, "COLUMNS": "120"})
    assert max(len(line) for line in show.splitlines()) <= 120, show


def test_after_reverting_params_the_registry_record_tells_the_truth(
    quick_start: tuple[Path, dict[str, str]],
) -> None:
    root, env = quick_start
    runs = mlflow_runs(env)
    run("git checkout -- params.yaml", root, env)
    run("dvc repro", root, env)  # outputs come back from the run-cache; register runs
    assert record(root).champion == champion(env)
    assert record(root).version == 1, "the first model again: the same version, not a new one"
    assert mlflow_runs(env) == runs, "registered already: no new run"


def test_a_change_to_a_search_leaves_data_and_features_up_to_date(
    quick_start: tuple[Path, dict[str, str]],
) -> None:
    root, env = quick_start
    candidates = root / "lead_conversion_prediction" / "modeling" / "candidates.py"
    params = root / "params.yaml"
    bound, narrower = '"min_child_weight": (1.0, 20.0)', '"min_child_weight": (1.0, 19.0)'
    assert bound in candidates.read_text() and "    n_iter: 15\n" in params.read_text()
    try:
        candidates.write_text(candidates.read_text().replace(bound, narrower))
        params.write_text(params.read_text().replace("    n_iter: 15\n", "    n_iter: 14\n"))
        status = run("dvc status", root, env)
    finally:
        run("git checkout -- params.yaml lead_conversion_prediction", root, env)
    changed = {line.rstrip(":") for line in status.splitlines() if line and line[0] != "\t"}
    assert "train" in changed and not changed & {"data", "features"}, status
