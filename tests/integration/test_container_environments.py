"""Each container's environment, built here by the Dagger module's own install commands.

The module's installation commands (lead_pipeline/environments.py, as the query of a function
that uses the environment gives them) are replayed into a copy of the source, as
tests/integration/test_dagger_replay.py replays a call: the runtime of the pipeline's
containers (prepare-data), and the test container's (test), whose dev group and Spark extra the
lint container shares. Each environment is built once per run, here; the replays of calls build
their own with the same commands. What they installed is compared with uv.lock, and the
containers' own commands run in them, with nothing of this machine's environment.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from dagger import dag
from packaging.markers import Marker
from packaging.utils import canonicalize_name

from lead_conversion_prediction.config import PROJ_ROOT
from lead_pipeline.environments import (
    DAGGER_SDK_VERSION,
    DAGGER_VENV,
    DEVELOPMENT,
    ENV,
    RUNTIME,
    WORKDIR,
    dependencies,
    project,
)
from tests.integration.test_dagger_replay import (
    IMAGE_BIN,
    DaggerCall,
    Replay,
    build,
    container_env,
    mapped,
)
from tests.support import SHARED_DIR
from tests.unit.test_dagger_module import execs, make_module

pytestmark = pytest.mark.long(seconds=20)

# Each environment: the call whose containers use it, and its `uv sync` options.
CALLS = {
    "runtime": (["prepare-data"], RUNTIME),
    "development": (["test", "--shared", str(SHARED_DIR)], DEVELOPMENT),
}
Versions = dict[str, str]


def built_environment(name: str, base: Path) -> tuple[Replay, Path]:
    """The environment of ``name``'s call, installed by replaying its installation commands."""
    words, _ = CALLS[name]
    call = DaggerCall.parse([*words, "export", "--path", str(base / "unused")])
    run = Replay(call, PROJ_ROOT, base, container_env(), base / "install.log")
    node, run.hosts = build(call, PROJ_ROOT, run.env)
    return run, run.install(node)


@pytest.fixture(scope="module")
def environments(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Replay, Path]]:
    return {name: built_environment(name, tmp_path_factory.mktemp(name)) for name in CALLS}


def container(run: Replay, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A container's environment (environments.py's ENV) as the replay maps it, nothing else of
    this machine's but what container_env() keeps (no PYTHONPATH, no venv)."""
    variables = {name: mapped(value, run.mounts) for name, value in ENV.items()}
    variables["PATH"] = os.pathsep.join(
        mapped(entry, run.mounts) for entry in ENV["PATH"].split(":")
    )
    return {**run.env, **variables, **(extra or {})}


def uv(*args: str, cwd: Path = PROJ_ROOT) -> str:
    """uv (the image's stand-in: the one on PATH, uv.lock's) with these arguments; its stdout."""
    command = [str(Path(sys.executable).with_name("uv")), *args]
    if not Path(command[0]).is_file():
        command[0] = "uv"
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=True).stdout


def installed(python: Path) -> Versions:
    """What an environment holds, by canonical name (the editable project left out)."""
    frozen = uv("pip", "freeze", "--exclude-editable", "--python", str(python))
    return pins(frozen)


def locked(*options: str, project_dir: str = ".") -> Versions:
    """What uv.lock selects with those options, on this platform (markers evaluated)."""
    exported = uv(
        "export", "--frozen", "--no-hashes", "--no-header", "--no-annotate", "--no-emit-project",
        "--project", project_dir, *options,
    )  # fmt: skip
    kept = []
    for line in exported.splitlines():
        requirement, _, marker = line.partition(";")
        if not requirement.strip() or requirement.startswith(("-e", "#")):
            continue
        if not marker.strip() or Marker(marker.strip()).evaluate():
            kept.append(requirement)
    return pins("\n".join(kept))


def pins(text: str) -> Versions:
    found: Versions = {}
    for line in text.splitlines():
        name, sep, version = line.strip().partition("==")
        if sep:
            found[canonicalize_name(re.sub(r"\[.*\]", "", name))] = version.strip()
    return found


def difference(have: Versions, want: Versions) -> dict[str, tuple[str | None, str | None]]:
    return {
        name: (have.get(name), want.get(name))
        for name in sorted(set(have) | set(want))
        if have.get(name) != want.get(name)
    }


@pytest.mark.parametrize("name", list(CALLS))
def test_each_environment_installs_exactly_the_locked_versions(
    environments: dict[str, tuple[Replay, Path]], name: str
) -> None:
    run, root = environments[name]
    _, options = CALLS[name]
    syncs = [command.args for command in run.commands if command.args[:2] == ("uv", "sync")]
    assert syncs[:2] == [dependencies(options), project(options)]
    have, want = installed(root / ".venv" / "bin" / "python"), locked(*options)
    print(f"{name}: {len(have)} packages installed, {len(want)} locked")
    assert difference(have, want) == {}
    assert len(want) > 100


def test_the_test_containers_dagger_environment_is_the_modules_lock_and_the_sdk(
    environments: dict[str, tuple[Replay, Path]],
) -> None:
    run, _ = environments["development"]
    python = Path(mapped(DAGGER_VENV, run.mounts)) / "bin" / "python"
    want = locked(project_dir="dagger")
    want["dagger-io"] = DAGGER_SDK_VERSION
    have = installed(python)
    print(f"dagger: {len(have)} packages installed, {len(want)} locked")
    assert difference(have, want) == {}


def test_lint_installs_the_environment_of_the_test_container() -> None:
    module = make_module(source=dag.host().directory(str(PROJ_ROOT)))
    uv_commands = [step.args for step in execs(module.lint()) if step.args[0] == "uv"]
    assert uv_commands == [dependencies(DEVELOPMENT), project(DEVELOPMENT)]


def test_the_runtime_runs_lcp_from_the_source_copy_alone(
    environments: dict[str, tuple[Replay, Path]],
) -> None:
    run, root = environments["runtime"]
    env = container(run)
    assert "PYTHONPATH" not in env
    where = subprocess.run(
        ["python", "-c", "import lead_conversion_prediction as p, shutil; print(p.__file__)"],
        cwd=root, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert Path(where.stdout.strip()).is_relative_to(root)
    assert Path(mapped(WORKDIR, run.mounts)) == root
    helped = subprocess.run(
        ["lcp", "--help"], cwd=root, env=env, capture_output=True, text=True, check=False
    )
    assert helped.returncode == 0 and "pipeline" in helped.stdout, helped.stderr
    assert Path(run.mounts[IMAGE_BIN]).name == "image-bin"


def test_the_test_container_runs_pytest_and_imports_the_sdk_from_its_environments(
    environments: dict[str, tuple[Replay, Path]],
) -> None:
    """`pytest -m LANE` as the test container runs it (on one small module here), and the
    Dagger SDK the suite's SDK tests need, from the copy's dagger/.venv."""
    run, root = environments["development"]
    env = container(run)
    tested = subprocess.run(
        ["pytest", "-m", "unit", "-p", "no:cacheprovider", "-q", "tests/unit/test_lineage.py"],
        cwd=root, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-3000:]
    assert "1 passed" in tested.stdout
    python = Path(mapped(DAGGER_VENV, run.mounts)) / "bin" / "python"
    imported = subprocess.run(
        [str(python), "-c", "import dagger; print(dagger.__file__)"],
        cwd=root, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert Path(imported.stdout.strip()).is_relative_to(python.parent.parent)
