"""What `dagger call pipeline` would run, replayed on a copy of the project without an engine.

The commands are read from the query the module builds (see tests/test_dagger_module.py) and
run in the order the engine would run them, with the container's workdir mapped to a copy of
the checkout and the mounted DVC remote mapped to the shared mirror.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from dagger import dag

from lead_conversion_prediction.config import PROJ_ROOT
from lead_pipeline.main import DVC_REMOTE_MOUNT, SOURCE_IGNORE, WORKDIR, LeadPipeline
from tests.support import SHARED_DIR
from tests.test_dagger_module import Exec, execs, git_paths, ignored, is_installation, selections

pytestmark = pytest.mark.integration


def copy_source(root: Path) -> Path:
    """Copy the checkout as `--source .` reaches the container: its files less SOURCE_IGNORE."""
    for name in git_paths("--cached", "--others", "--exclude-standard"):
        path = PROJ_ROOT / name
        if path.is_file() and not ignored(name, SOURCE_IGNORE):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, root / name)
    return root


def mapped(value: str, mounts: dict[str, Path]) -> str:
    """A container path as the matching path on this machine; anything else unchanged."""
    for inside, outside in mounts.items():
        if value == inside or value.startswith(f"{inside}/"):
            return str(outside) + value.removeprefix(inside)
    return value


def run(step: Exec, mounts: dict[str, Path], env: dict[str, str]) -> None:
    args = [mapped(arg, mounts) for arg in step.args]
    variables = {name: mapped(value, mounts) for name, value in step.env.items()}
    result = subprocess.run(
        args,
        cwd=mapped(step.workdir, mounts),
        env={**env, **variables},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"{' '.join(step.args)}\n{result.stderr[-3000:]}"


def test_the_pipeline_functions_commands_produce_the_model_bundle(tmp_path: Path) -> None:
    mirror = SHARED_DIR / "dvc-remote"
    if not mirror.is_dir():
        pytest.fail(f"{mirror} is missing: the replay pulls the raw data from that mirror")
    root = copy_source(tmp_path / "app")
    bundle = LeadPipeline().pipeline(
        dag.host().directory(str(PROJ_ROOT)), dvc_remote=dag.host().directory(str(mirror))
    )
    mounts = {WORKDIR: root, DVC_REMOTE_MOUNT: mirror}
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        # lcp is installed editable from the checkout: point its data and store at the copy.
        "LCP_ROOT": str(root),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
    }
    env.pop("DVC_ROOT", None)

    steps = execs(bundle)
    # pip and apt only build the image; the environment running this test already has the
    # pinned requirements and the project installed (editable), which is what they produce.
    for step in steps:
        if not is_installation(step.args):
            run(step, mounts, env)

    assert [step.args for step in steps if step.args[0] == "lcp"][-1] == ("lcp", "validate")
    output = Path(mapped(selections(bundle)[-1].args["path"], mounts))
    assert output == root / "models" / "models.tar"
    with tarfile.open(output) as archive:
        assert {"model.pkl", "lead_model.joblib", "columns_list.json"} <= set(archive.getnames())
