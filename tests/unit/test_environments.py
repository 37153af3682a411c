"""The locked environments: exact, complete, consistent with the requirements, never mixed.

``.venv`` is installed from requirements-dev.lock (runtime and dev tools, MLflow's UI among
them) and ``dagger/.venv`` from requirements-dagger.lock (the Dagger SDK). The SDK needs
graphql-core>=3.3 and MLflow's UI server graphene 3 (graphql-core<3.3): mixed in one
environment, pip quietly falls back to graphene 2.0 and the UI cannot show a run.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest

from lead_conversion_prediction.config import PROJ_ROOT
from tests.dagger_sdk import imports_sdk

RUNTIME = PROJ_ROOT / "requirements.txt"
DEV = PROJ_ROOT / "requirements-dev.txt"
DAGGER = PROJ_ROOT / "requirements-dagger.txt"
SPARK = PROJ_ROOT / "requirements-spark.txt"
RUNTIME_LOCK = PROJ_ROOT / "requirements.lock"
DEV_LOCK = PROJ_ROOT / "requirements-dev.lock"
DAGGER_LOCK = PROJ_ROOT / "requirements-dagger.lock"
SPARK_LOCK = PROJ_ROOT / "requirements-spark.lock"
LOCKS = {RUNTIME: RUNTIME_LOCK, DEV: DEV_LOCK, DAGGER: DAGGER_LOCK}
# name[extras]==version: an extra adds packages the lock lists under their own names.
PIN = re.compile(
    r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[A-Za-z0-9,._ -]+\])?==(\S+?)(?:\s*;.*?)?(?:\s*\\)?$"
)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Locked:
    version: str
    hashes: int = 0
    via: tuple[str, ...] = ()


def read_lock(path: Path) -> dict[str, Locked]:
    """Each package of a lock written by `uv pip compile`: version, hashes, what requires it."""
    packages: dict[str, Locked] = {}
    current: Locked | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := PIN.match(line):
            current = packages.setdefault(canonical(match[1]), Locked(match[2]))
        elif current is not None and line.strip().startswith("--hash=sha256:"):
            current.hashes += 1
        elif current is not None and line.strip().startswith("# via"):
            # "# via X" on one line, or "# via" followed by "#   X" lines.
            current.via += tuple(line.strip().removeprefix("# via").split())
        elif current is not None and line.startswith("    #   "):
            current.via += (line.strip().removeprefix("#").strip(),)
    return packages


def read_pins(path: Path) -> dict[str, str]:
    """The ``name==version`` lines of a human-edited requirements file (``-r`` not followed)."""
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-r "):
            continue
        match = PIN.match(line)
        assert match, f"{path.name}: {line!r} is not pinned exactly"
        pins[canonical(match[1])] = match[2]
    return pins


@pytest.mark.parametrize("requirements", list(LOCKS), ids=lambda path: path.name)
def test_each_lock_has_every_pin_of_its_requirements_at_that_version(requirements: Path) -> None:
    lock = read_lock(LOCKS[requirements])
    wanted = read_pins(requirements)
    if requirements == DEV:
        wanted |= read_pins(RUNTIME)
    stale = {
        name: pin for name, pin in wanted.items() if lock.get(name, Locked("")).version != pin
    }
    assert stale == {}, f"run `make lock`: {LOCKS[requirements].name} lacks {stale}"


@pytest.mark.parametrize("requirements", list(LOCKS), ids=lambda path: path.name)
def test_each_lock_lists_no_direct_requirement_that_was_dropped(requirements: Path) -> None:
    wanted = read_pins(requirements)
    direct = {f"-r {requirements.name}"}
    if requirements == DEV:
        wanted |= read_pins(RUNTIME)
        direct.add(f"-r {RUNTIME.name}")
    lock = read_lock(LOCKS[requirements])
    only_direct = [
        name
        for name, locked in lock.items()
        if locked.via and all(via in direct or via.startswith("-c ") for via in locked.via)
    ]
    assert sorted(set(only_direct) - set(wanted)) == [], "run `make lock`"


@pytest.mark.parametrize("lock_path", list(LOCKS.values()), ids=lambda path: path.name)
def test_every_locked_package_is_exact_and_hashed(lock_path: Path) -> None:
    text = lock_path.read_text(encoding="utf-8")
    assert text.splitlines()[1].strip() == "#    make lock"
    lock = read_lock(lock_path)
    assert len(lock) > 10
    assert [name for name, locked in lock.items() if locked.hashes == 0] == []
    for line in text.splitlines():
        if line and not line.startswith((" ", "#")):
            assert PIN.match(line), f"{lock_path.name}: {line!r} is not an exact pin"


def test_the_dev_lock_keeps_every_runtime_version() -> None:
    runtime, dev = read_lock(RUNTIME_LOCK), read_lock(DEV_LOCK)
    assert {name: dev[name].version for name in runtime} == {
        name: locked.version for name, locked in runtime.items()
    }


def test_the_dagger_sdk_and_mlflows_ui_never_share_an_environment() -> None:
    dev, dagger = read_lock(DEV_LOCK), read_lock(DAGGER_LOCK)
    assert "dagger-io" not in dev
    assert dev["graphene"].version.split(".")[0] == "3"
    assert tuple(map(int, dev["graphql-core"].version.split(".")[:2])) < (3, 3)
    assert "mlflow" not in dagger and "graphene" not in dagger
    assert tuple(map(int, dagger["graphql-core"].version.split(".")[:2])) >= (3, 3)


def test_the_dagger_lock_follows_the_modules_uv_lock_and_the_dev_lock() -> None:
    config = json.loads((PROJ_ROOT / "dagger.json").read_text(encoding="utf-8"))
    dagger = read_lock(DAGGER_LOCK)
    assert f"v{dagger['dagger-io'].version}" == config["engineVersion"]

    printed = subprocess.run(
        [sys.executable, "scripts/lock_constraints.py"],
        cwd=PROJ_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    constraints = dict(line.split("==") for line in printed.splitlines())
    module = tomllib.loads((PROJ_ROOT / "dagger" / "uv.lock").read_text(encoding="utf-8"))
    for package in module["package"]:
        if "registry" in package["source"]:
            assert constraints[canonical(package["name"])] == package["version"]
    differing = {
        name: (locked.version, constraints.get(name))
        for name, locked in dagger.items()
        if name != "dagger-io" and constraints.get(name) != locked.version
    }
    assert differing == {}, "run `make lock`"


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

    mypy = tomllib.loads((PROJ_ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["mypy"]
    excluded = sorted(pattern.strip("^$").replace("\\.", ".") for pattern in mypy["exclude"])
    assert excluded == test_files
    assert "dagger/src" not in mypy["files"]


@pytest.mark.parametrize(
    ("lock", "stamp"),
    [
        ("requirements-dev.lock", ".venv/.installed"),
        ("requirements-dagger.lock", "dagger/.venv/.installed"),
    ],
)
def test_a_changed_lock_reinstalls_its_environment(lock: str, stamp: str) -> None:
    planned = subprocess.run(
        ["make", "--dry-run", "--what-if", lock, stamp],
        cwd=PROJ_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert re.search(rf"uv pip sync .*--require-hashes .*{re.escape(lock)}", planned), planned


def test_uv_is_bootstrapped_at_the_version_the_dev_lock_pins() -> None:
    makefile = (PROJ_ROOT / "Makefile").read_text(encoding="utf-8")
    assert '"uv==$(UV_VERSION)"' in makefile
    version = subprocess.run(
        ["make", "--no-print-directory", "--eval", "print-uv: ; @echo $(UV_VERSION)", "print-uv"],
        cwd=PROJ_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert version == read_lock(DEV_LOCK)["uv"].version == read_pins(DEV)["uv"]


def test_the_build_backend_is_pinned() -> None:
    build = tomllib.loads((PROJ_ROOT / "pyproject.toml").read_text("utf-8"))["build-system"]
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][^,;<>]*", pin) for pin in build["requires"])


def test_the_spark_extra_is_locked_beside_the_dev_environment() -> None:
    pyproject = tomllib.loads((PROJ_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    extra = [PIN.match(pin) for pin in pyproject["project"]["optional-dependencies"]["spark"]]
    pins = {canonical(match[1]): match[2] for match in extra if match}
    assert len(pins) == len(extra) and pins == read_pins(SPARK)  # exact, and one set of pins
    spark, dev = read_lock(SPARK_LOCK), read_lock(DEV_LOCK)
    assert {name: spark[name].version for name in pins} == pins
    assert [name for name, locked in spark.items() if locked.hashes == 0] == []
    shared = {name for name in spark if name in dev}
    assert {name for name in shared if dev[name].version != spark[name].version} == set()
    planned = subprocess.run(
        ["make", "--dry-run", "--what-if", SPARK_LOCK.name, ".venv/.spark-installed"],
        cwd=PROJ_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert re.search(r"uv pip install .*--require-hashes .*requirements-spark\.lock", planned)
