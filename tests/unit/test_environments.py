"""The locked environments: exact, consistent with the pins, never mixed.

``.venv`` is synced from uv.lock (runtime, the dev group, and the spark extra once added;
MLflow's UI among them) and ``dagger/.venv`` from the Dagger module's dagger/uv.lock (the
Dagger SDK). The SDK needs graphql-core>=3.3 and MLflow's UI server graphene 3
(graphql-core<3.3): mixed in one environment, pip quietly falls back to graphene 2.0 and the
UI cannot show a run.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml

from lead_conversion_prediction.config import PROJ_ROOT
from tests.dagger_sdk import imports_sdk

UV = Path(sys.executable).parent / "uv"
PROJECT_LOCK = PROJ_ROOT / "uv.lock"
DAGGER_LOCK = PROJ_ROOT / "dagger" / "uv.lock"
# name[extras]==version, nothing else: a direct requirement pinned exactly.
EXACT = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[A-Za-z0-9,._ -]+\])?==([0-9][^\s,;<>=!]*)")
# What `make lock` exports from uv.lock, each with the `uv export` arguments that write it.
EXPORTS = {
    "requirements.txt": ["--no-dev", "--no-emit-project"],
    "requirements-dev.txt": ["--no-emit-project"],
}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def toml(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def versions(lock: Path) -> dict[str, str]:
    return {package["name"]: package["version"] for package in toml(lock)["package"]}


def direct_pins(requirements: list[str]) -> dict[str, str]:
    pins: dict[str, str] = {}
    for requirement in requirements:
        match = EXACT.fullmatch(requirement)
        assert match, f"{requirement!r} is not pinned exactly"
        pins[canonical(match[1])] = match[2]
    return pins


def make_plan(*targets: str, variables: tuple[str, ...] = ()) -> str:
    """What make would run to bring the targets up to date, as if the prerequisites changed."""
    what_if = [argument for target in targets[:-1] for argument in ("--what-if", target)]
    return subprocess.run(
        ["make", "--dry-run", *what_if, *variables, targets[-1]],
        cwd=PROJ_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.replace("\\\n", " ")


def makefile_variable(name: str) -> str:
    return subprocess.run(
        ["make", "--no-print-directory", "--eval", f"print-it: ; @echo $({name})", "print-it"],
        cwd=PROJ_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_every_direct_requirement_is_pinned_exactly() -> None:
    project = toml(PROJ_ROOT / "pyproject.toml")
    module = toml(PROJ_ROOT / "dagger" / "pyproject.toml")
    for requirements in (
        project["project"]["dependencies"],
        *project["project"]["optional-dependencies"].values(),
        *project["dependency-groups"].values(),
        *module["dependency-groups"].values(),
    ):
        direct_pins(requirements)


def test_uv_lock_is_in_sync_with_pyproject() -> None:
    result = subprocess.run(
        [UV, "lock", "--check", "--offline"],
        cwd=PROJ_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"run `make lock`:\n{result.stderr}"


def test_the_dagger_modules_lock_is_in_sync_with_its_pyproject() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/lock_dagger.py", "--check", "--offline"],
        cwd=PROJ_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"run `make lock`:\n{result.stderr}"


@pytest.mark.parametrize("exported", list(EXPORTS))
def test_each_requirements_file_is_the_export_of_uv_lock(exported: str) -> None:
    export = subprocess.run(
        [UV, "export", "--frozen", "--no-header", *EXPORTS[exported]],
        cwd=PROJ_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = (PROJ_ROOT / exported).read_text(encoding="utf-8").splitlines(keepends=True)
    header = f"#    uv export --frozen {' '.join(EXPORTS[exported])} -o {exported}\n"
    assert lines[1] == header
    assert "".join(line for line in lines if not line.startswith("#")) == export, "run `make lock`"


def test_the_dagger_environments_tools_are_the_projects_releases() -> None:
    project = toml(PROJ_ROOT / "pyproject.toml")
    pinned = direct_pins(
        [*project["project"]["dependencies"], *project["dependency-groups"]["dev"]]
    )
    module = toml(PROJ_ROOT / "dagger" / "pyproject.toml")
    tools = direct_pins(module["dependency-groups"]["dev"])
    assert {name: pinned.get(name) for name in tools} == tools


def test_the_dagger_sdk_and_mlflows_ui_never_share_a_lock() -> None:
    project, module = versions(PROJECT_LOCK), versions(DAGGER_LOCK)
    assert "dagger-io" not in project
    assert project["graphene"].split(".")[0] == "3"
    assert tuple(map(int, project["graphql-core"].split(".")[:2])) < (3, 3)
    assert "mlflow" not in module and "graphene" not in module
    assert tuple(map(int, module["graphql-core"].split(".")[:2])) >= (3, 3)


def test_the_environment_running_the_tests_serves_mlflows_graphql_schema() -> None:
    installed = {canonical(dist.metadata["Name"]) for dist in metadata.distributions()}
    assert "dagger-io" not in installed, (
        "the Dagger SDK belongs in dagger/.venv, not beside MLflow"
    )
    from mlflow.server.graphql.graphql_schema_extensions import schema

    assert schema.graphql_schema.query_type is not None


def test_what_imports_the_sdk_is_type_checked_with_the_sdk_and_only_there() -> None:
    test_files = sorted(
        str(path.relative_to(PROJ_ROOT))
        for path in (PROJ_ROOT / "tests").rglob("test_*.py")
        if imports_sdk(path)
    )
    makefile = (PROJ_ROOT / "Makefile").read_text(encoding="utf-8")
    listed = re.search(r"^DAGGER_TYPED := ((?:.*\\\n)*.*)$", makefile, re.MULTILINE)
    assert listed, "the Makefile lists no DAGGER_TYPED"
    typed = listed[1].replace("\\\n", " ").split()
    assert typed[0] == "dagger/src" and sorted(typed[1:]) == test_files

    mypy = toml(PROJ_ROOT / "pyproject.toml")["tool"]["mypy"]
    excluded = sorted(pattern.strip("^$").replace("\\.", ".") for pattern in mypy["exclude"])
    assert excluded == test_files
    assert "dagger/src" not in mypy["files"]


@pytest.mark.parametrize(
    ("lock", "stamp", "sync"),
    [
        ("uv.lock", ".venv/.installed", r"uv sync .*--locked"),
        ("dagger/uv.lock", "dagger/.venv/.installed", r"uv sync .*--frozen --project dagger"),
    ],
)
def test_a_changed_lock_syncs_its_environment(lock: str, stamp: str, sync: str) -> None:
    planned = make_plan(lock, stamp)
    assert re.search(sync, planned), planned


def test_the_spark_extra_once_added_stays_through_a_new_sync(tmp_path: Path) -> None:
    stamp = tmp_path / "spark-installed"  # where the Makefile looks for `make spark`'s stamp
    variables = (f"SPARK_INSTALLED={stamp}",)
    added = make_plan(".venv/.installed", str(stamp), variables=variables)
    assert re.search(r"uv sync .*--locked --extra spark", added), added
    stamp.touch()
    planned = make_plan("uv.lock", ".venv/.installed", variables=variables)
    assert re.search(r"uv sync .*--locked\s+--extra spark", planned), planned


def test_uv_is_bootstrapped_at_the_version_uv_lock_pins() -> None:
    makefile = (PROJ_ROOT / "Makefile").read_text(encoding="utf-8")
    assert '"uv==$(UV_VERSION)"' in makefile
    dev = direct_pins(toml(PROJ_ROOT / "pyproject.toml")["dependency-groups"]["dev"])
    assert makefile_variable("UV_VERSION") == versions(PROJECT_LOCK)["uv"] == dev["uv"]


def test_the_build_backend_is_pinned() -> None:
    build = toml(PROJ_ROOT / "pyproject.toml")["build-system"]
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][^,;<>]*", pin) for pin in build["requires"])


def test_pre_commit_runs_the_locked_tools_that_make_lint_runs() -> None:
    config = yaml.safe_load((PROJ_ROOT / ".pre-commit-config.yaml").read_text("utf-8"))
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"]]
    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    assert {hook["language"] for hook in hooks} == {"system"}
    assert {hook["entry"].split()[0] for hook in hooks} == {
        f".venv/bin/{tool}" for tool in ("ruff", "mypy", "nbstripout")
    }
    assert {hook["id"] for hook in hooks} == {"ruff", "ruff-format", "mypy", "nbstripout"}
    assert "pre-commit run --all-files" in make_plan("lint")


def test_make_help_lists_every_documented_target_aligned_and_plain_in_a_pipe() -> None:
    shown = subprocess.run(
        ["make", "--no-print-directory", "-C", str(PROJ_ROOT), "help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "\x1b" not in shown, "no colour codes when the output is not a terminal"
    assert max(len(line) for line in shown.splitlines()) <= 80, "within 80 columns"
    targets = [line for line in shown.splitlines() if line[2:3] != " "]
    makefile = (PROJ_ROOT / "Makefile").read_text()
    documented = re.findall(r"^## .*\n([a-z-]+):", makefile, flags=re.MULTILINE)
    assert [line.split()[0] for line in targets] == documented
    starts = {len(line) - len(line[2:].split(" ", 1)[1].lstrip()) for line in targets}
    continued = {len(line) - len(line.lstrip()) for line in shown.splitlines()} - {2}
    assert len(starts) == 1 and continued <= starts, "descriptions start in one column"
    # A long description goes on below itself, word by word: no word is lost.
    docs = re.findall(r"^## (.*)\n[a-z-]+:", makefile, flags=re.MULTILINE)
    assert " ".join(shown.split()) == " ".join(
        word
        for target, doc in zip(documented, docs, strict=True)
        for word in [target, *doc.split()]
    )
