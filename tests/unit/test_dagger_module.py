"""The Dagger module, read from the queries its functions build: no engine is needed for that.

Building ``dag.container().from_(...).with_exec([...])`` only records each step in the object's
query context (``obj._ctx.selections``); nothing runs until a result is awaited. A function that
awaits one (``monitor`` reads a file's name and an exit code) gets its answers from a stand-in
for the engine (``Answers``).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol
from unittest.mock import patch

import dagger
import pytest
import yaml
from dagger import dag
from dagger.client._core import Field
from dagger.client.base import Type
from dagger.mod import default_module
from dagger.mod._converter import to_typedef

from lead_conversion_prediction.config import PROJ_ROOT
from lead_pipeline.arguments import SOURCE_IGNORE
from lead_pipeline.environments import (
    CACHES,
    DEVELOPMENT,
    LOCK_FILES,
    PYTHON_IMAGE,
    RUNTIME,
    WORKDIR,
    dependencies,
    project,
)
from lead_pipeline.main import (
    BATCH_MOUNT,
    DVC_REMOTE_MOUNT,
    LINT,
    SHARED_MOUNT,
    LeadPipeline,
    MonitoringError,
)

FUNCTIONS = ("pipeline", "release", "prepare_data", "train", "predict", "monitor", "test", "lint")
# The functions that register a model: the engine runs them on every call.
UNCACHED = ("pipeline", "release")
# The arguments every function shares belong to the module (its constructor).
MODULE_ARGUMENTS = (
    "source",
    "dvc_remote",
    "remote_url",
    "remote_secret",
    "remote_secret_variable",
)
PINNED_IMAGE = re.compile(r"python:3\.11\.\d+-slim-[a-z]+@sha256:[0-9a-f]{64}")
RAW_DATA_FETCH = ("lcp", "fetch")
REMOTE_ADD = ("dvc", "remote", "add", "--quiet", "--local", "--force", "--default", "mirror")
STAGES = ("data", "features", "train", "evaluate", "register", "package", "validate")
# `make monitor`'s variables for the options of `lcp monitor`: INPUT is required, the others are
# passed when set (`$(if $(MODEL),--model "$(MODEL)")`).
MONITOR_VARIABLES = {"--input": "INPUT", "--model": "MODEL", "--output": "OUTPUT"}
MONITOR_OPTIONS = ("--model", "models/lead_model.joblib", "--output", "reports/monitoring")
BATCH = "leads.csv"

Node = dagger.Container | dagger.Directory | dagger.File


@dataclass(frozen=True)
class Exec:
    """One ``withExec`` of a container chain, with the environment and workdir it runs in."""

    args: tuple[str, ...]
    workdir: str
    env: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, dagger.Secret] = field(default_factory=dict)
    # The exit codes it may end with (``with_exec(..., expect=...)``), and the step itself.
    expect: str = dagger.ReturnType.SUCCESS.value
    step: Field | None = field(default=None, compare=False, repr=False)


def selections(node: Any) -> list[Field]:
    """The steps of a lazily built query, from its root to the node itself."""
    return list(node._ctx.selections)


def nested(step: Field) -> Iterator[Any]:
    """The Dagger objects (directories, files, containers...) a step takes as arguments."""
    for value in step.args.values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, Type):
                yield item


def execs(node: Any) -> list[Exec]:
    """Every command the node's query would run, its inputs' commands first, each once.

    Objects derived from one container share its steps, so a step seen before (the same
    object) is the same operation, which the engine also runs only once.
    """
    seen: set[int] = set()
    found: list[Exec] = []

    def visit(current: Any) -> None:
        env: dict[str, str] = {}
        secrets: dict[str, dagger.Secret] = {}
        workdir = "/"
        for step in selections(current):
            for item in nested(step):
                if id(item) not in seen and not isinstance(item, dagger.Secret):
                    seen.add(id(item))
                    visit(item)
            if step.name == "withEnvVariable":
                env[step.args["name"]] = step.args["value"]
            elif step.name == "withoutEnvVariable":
                env.pop(step.args["name"], None)
            elif step.name == "withSecretVariable":
                secrets[step.args["name"]] = step.args["secret"]
            elif step.name == "withoutSecretVariable":
                secrets.pop(step.args["name"], None)
            elif step.name == "withWorkdir":
                workdir = step.args["path"]
            elif step.name == "withExec" and id(step) not in seen:
                seen.add(id(step))
                expect = step.args.get("expect", dagger.ReturnType.SUCCESS.value)
                args = tuple(step.args["args"])
                found.append(Exec(args, workdir, dict(env), dict(secrets), expect, step))

    visit(node)
    return found


def builds_image(args: tuple[str, ...]) -> bool:
    """Whether a command installs into the image itself (apt, or pip bootstrapping uv)."""
    return args[0] == "apt-get" or args[:3] == ("python", "-m", "pip")


def is_installation(args: tuple[str, ...]) -> bool:
    """Whether a command installs packages (apt, pip or uv) rather than running the project."""
    return builds_image(args) or args[0] == "uv"


def project_commands(node: Any) -> list[tuple[str, ...]]:
    """The project's own commands: neither installations nor DVC's no-git setting."""
    return [
        step.args
        for step in execs(node)
        if not is_installation(step.args) and step.args[:2] != ("dvc", "config")
    ]


def chains(node: Any) -> Iterator[list[Field]]:
    """The node's own chain of steps and those of every object it takes as input."""
    seen: set[int] = set()

    def visit(current: Any) -> Iterator[list[Field]]:
        steps = selections(current)
        yield steps
        for step in steps:
            for item in nested(step):
                if id(item) not in seen:
                    seen.add(id(item))
                    yield from visit(item)

    yield from visit(node)


def steps(node: Any) -> list[Field]:
    """Every distinct step of the node's chains: the engine runs a shared step once."""
    unique: dict[int, Field] = {}
    for chain in chains(node):
        unique.update((id(step), step) for step in chain)
    return list(unique.values())


def ignored(path: str, patterns: Iterable[str]) -> bool:
    """Whether Dagger's ``Ignore`` (.dockerignore rules, last match wins) leaves ``path`` out."""
    verdict = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = _pattern_regex(pattern.removeprefix("!").strip("/"))
        parts = path.strip("/").split("/")
        # A pattern that matches a folder also matches everything inside it.
        if any(regex.fullmatch("/".join(parts[:end])) for end in range(1, len(parts) + 1)):
            verdict = not negated
    return verdict


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    translated = ""
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            translated, index = translated + "(?:.*/)?", index + 3
        elif pattern.startswith("**", index):
            translated, index = translated + ".*", index + 2
        else:
            char = pattern[index]
            translated += {"*": "[^/]*", "?": "[^/]"}.get(char, re.escape(char))
            index += 1
    return re.compile(translated)


def git_paths(*options: str) -> list[str]:
    """Paths that ``git ls-files`` lists in the checkout with the given options."""
    listed = subprocess.run(
        ["git", "ls-files", *options],
        cwd=PROJ_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return listed.splitlines()


def makefile_commands() -> set[str]:
    """Every command in the Makefile's recipes, split at shell separators, less pytest-xdist's
    options (a container runs its tests in one process), and the pre-commit hooks' (`make lint`
    runs them: `pre-commit run --all-files`) without their .venv/bin/."""
    lines = (PROJ_ROOT / "Makefile").read_text(encoding="utf-8").splitlines()
    recipes = [
        line.strip().removeprefix("@").removesuffix(" $(XDIST)")
        for line in lines
        if line.startswith("\t")
    ]
    config = yaml.safe_load((PROJ_ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    hooks = [hook["entry"] for repo in config["repos"] for hook in repo["hooks"]]
    return {
        part.strip()
        for recipe in recipes
        for part in re.split(r";|&&|\|\||\bthen\b|\bfi\b", recipe)
        if part.strip()
    } | {entry.removeprefix(".venv/bin/") for entry in hooks}


def as_makefile_line(args: tuple[str, ...]) -> str:
    """A container command as the Makefile writes it: the remote is its DVC_REMOTE variable,
    `lcp monitor`'s options are `make monitor`'s variables."""
    if args[: len(REMOTE_ADD)] == REMOTE_ADD:
        return " ".join(REMOTE_ADD) + ' "$(DVC_REMOTE)"'
    given = set(args[2::2])
    if args[:2] == ("lcp", "monitor") and given <= set(MONITOR_VARIABLES):
        options = [
            f'{option} "$({variable})"'
            if option == "--input"
            else f'$(if $({variable}),{option} "$({variable})")'
            for option, variable in MONITOR_VARIABLES.items()
            if option in given
        ]
        return " ".join(["lcp monitor", *options])
    return shlex.join(args)


def make_module(**arguments: Any) -> LeadPipeline:
    """The module as the engine builds it from `dagger call`'s flags before the function.

    ``@object_type`` makes the class a dataclass of its annotated attributes, which mypy does
    not see through the SDK's module-level alias of the decorator.
    """
    constructor: Any = LeadPipeline
    module: LeadPipeline = constructor(**arguments)
    return module


def stage(name: str) -> tuple[str, ...]:
    """The command of a stage as the Makefile runs it (`make monitor` with INPUT the batch in the
    container, MODEL the trained model's file and OUTPUT the report folder)."""
    if name == "validate":
        return ("lcp", "validate", "--model", "models/model.pkl")
    if name == "monitor":
        return ("lcp", "monitor", "--input", f"{BATCH_MOUNT}/{BATCH}", *MONITOR_OPTIONS)
    return ("lcp", name)


class Engine(Protocol):
    """What an engine answers a function that awaits a result."""

    def file_name(self, file: dagger.File) -> str:
        """``await file.name()``."""

    def exit_code(self, container: dagger.Container) -> int:
        """``await container.exit_code()``: the exit code of its last command."""

    def stderr(self, container: dagger.Container) -> str:
        """``await container.stderr()``: the stderr of its last command."""


def answered(returned: Any, engine: Engine) -> Any:
    """A function's result: an async function's coroutine is run, ``engine`` answering its awaits
    (nothing else of the SDK is awaited without an engine)."""
    if not inspect.iscoroutine(returned):
        return returned

    async def file_name(file: dagger.File) -> str:
        return engine.file_name(file)

    async def exit_code(container: dagger.Container) -> int:
        return engine.exit_code(container)

    async def stderr(container: dagger.Container) -> str:
        return engine.stderr(container)

    with (
        patch.object(dagger.File, "name", file_name),
        patch.object(dagger.Container, "exit_code", exit_code),
        patch.object(dagger.Container, "stderr", stderr),
    ):
        return asyncio.run(returned)


@dataclass
class Answers:
    """An engine's answers fixed in advance: every file is called ``name``, every command ends
    with ``code`` and ``error`` on its stderr. ``asked`` keeps the containers whose exit code was
    read."""

    name: str = BATCH
    code: int = 0
    error: str = ""
    asked: list[dagger.Container] = field(default_factory=list)

    def file_name(self, file: dagger.File) -> str:
        return self.name

    def exit_code(self, container: dagger.Container) -> int:
        self.asked.append(container)
        return self.code

    def stderr(self, container: dagger.Container) -> str:
        return self.error


def called(
    module: LeadPipeline, name: str, engine: Engine | None = None, **arguments: Any
) -> Node:
    """A function's result as `dagger call NAME` gives it; monitor's batch is ``BATCH`` unless
    given, and what it awaits is answered as for a batch without an alert unless told."""
    if name == "monitor":
        arguments.setdefault("batch", dag.host().file(BATCH))
    result: Node = answered(getattr(module, name)(**arguments), engine or Answers())
    return result


@pytest.fixture(scope="module")
def source() -> dagger.Directory:
    return dag.host().directory(str(PROJ_ROOT))


@pytest.fixture(scope="module")
def module(source: dagger.Directory) -> LeadPipeline:
    """The module as `dagger call --source . FUNCTION` (or `dagger call FUNCTION`) makes it."""
    return make_module(source=source)


@pytest.fixture(scope="module")
def mirror() -> dagger.Directory:
    return dag.host().directory(str(PROJ_ROOT.parent / "shared" / "dvc-remote"))


def results(module: LeadPipeline, source: dagger.Directory) -> dict[str, Node]:
    """Each function's result, called as `dagger call FUNCTION` would."""
    shared = dag.host().directory("../shared")
    return {
        "pipeline": module.pipeline(),
        "release": module.release(),
        "prepare_data": module.prepare_data(),
        "train": module.train(),
        "predict": module.predict(),
        "monitor": called(module, "monitor"),
        "test": module.test(shared, source),
        "lint": module.lint(),
    }


def test_the_module_is_configured_for_the_pinned_engine_and_the_python_sdk() -> None:
    config = json.loads((PROJ_ROOT / "dagger.json").read_text(encoding="utf-8"))
    assert config["sdk"] == {"source": "python"} and config["source"] == "dagger"
    assert config["engineVersion"] == f"v{importlib.metadata.version('dagger-io')}"
    assert "".join(word.title() for word in config["name"].split("-")) == LeadPipeline.__name__

    project = tomllib.loads((PROJ_ROOT / "dagger" / "pyproject.toml").read_text("utf-8"))
    assert project["project"]["requires-python"] == ">=3.11"
    assert project["project"]["dependencies"] == ["dagger-io"]
    assert project["tool"]["dagger"]["base-image"] == PYTHON_IMAGE
    assert LeadPipeline.__module__ == f"{project['project']['name'].replace('-', '_')}.main"

    lock = tomllib.loads((PROJ_ROOT / "dagger" / "uv.lock").read_text(encoding="utf-8"))
    locked = {package["name"]: package for package in lock["package"]}
    assert locked["dagger-io"]["source"] == {"editable": "sdk"}
    assert locked[project["project"]["name"]]["source"] == {"editable": "."}


def test_the_module_type_checks_strictly_against_the_sdk() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "dagger/src"],
        cwd=PROJ_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_shared_arguments_belong_to_the_module_and_are_documented() -> None:
    sdk = default_module()
    constructor = sdk.get_object(LeadPipeline.__name__).get_constructor(sdk._converter)
    parameters = constructor.parameters
    assert tuple(parameters) == MODULE_ARGUMENTS
    for parameter in parameters.values():
        to_typedef(parameter.resolved_type, f"constructor({parameter.name})")
        assert parameter.doc and "\n" not in parameter.doc, parameter.name
    # `dagger call pipeline` alone reads the repository root, less what git ignores.
    assert parameters["source"].default_path == "/" and parameters["source"].default_value is None
    assert parameters["source"].ignore == SOURCE_IGNORE
    # Everything else is optional: the raw data then comes from its upstream URL.
    assert all(parameters[name].default_value is not None for name in MODULE_ARGUMENTS[1:])


def test_the_sdk_registers_each_function_with_documented_arguments() -> None:
    functions = default_module().get_object(LeadPipeline.__name__).functions
    # The constructor is registered too, under the empty name.
    registered = {name: function for name, function in functions.items() if name}
    assert sorted(registered) == sorted(FUNCTIONS)
    for name, function in registered.items():
        assert function.doc and "\n" not in function.doc, name
        for parameter in function.parameters.values():
            to_typedef(parameter.resolved_type, f"{name}({parameter.name})")
            assert parameter.doc, f"{name}({parameter.name})"
        # The remote's arguments are the module's only: no function repeats them.
        assert not set(function.parameters) & set(MODULE_ARGUMENTS[1:]), name
        source = function.parameters["source"]
        if name == "test":
            # The tests compare the checkout with git, so only their source keeps .git.
            assert source.default_path == "/" and source.default_value is None
            assert source.ignore == [pattern for pattern in SOURCE_IGNORE if pattern != ".git"]
        else:
            # `dagger call FUNCTION --source .` overrides the module's source, filtered alike.
            assert source.default_path is None and source.is_nullable, name
            assert source.ignore == SOURCE_IGNORE, name


def test_a_functions_own_source_wins_over_the_modules(
    module: LeadPipeline, source: dagger.Directory
) -> None:
    other = dag.host().directory("elsewhere")
    for function in ("pipeline", "release", "prepare_data", "train", "predict", "monitor", "lint"):
        added = [
            step.args["source"]
            for step in steps(called(module, function, source=other))
            if step.name == "withDirectory" and step.args.get("include") is None
        ]
        assert other in added and source not in added, function


def test_the_source_leaves_out_what_git_ignores_and_keeps_every_tracked_file() -> None:
    leaking = [
        path
        for path in git_paths("--others", "--ignored", "--exclude-standard", "--directory")
        if not ignored(path, SOURCE_IGNORE)
    ]
    assert leaking == [], "add these to SOURCE_IGNORE"
    dropped = [path for path in git_paths("--cached") if ignored(path, SOURCE_IGNORE)]
    assert dropped == []


# Paths a checkout may hold below its root; git's verdict on each comes first.
NESTED = {
    "sub/.venv/bin/python": True,
    "dagger/.venv/lib/site.py": True,
    "nested/mlruns/0/meta.yaml": True,
    "notebooks/mlruns/1/meta.yaml": True,
    "a/b/__pycache__/m.cpython-311.pyc": True,
    "dagger/src/lead_pipeline/__pycache__/main.cpython-311.pyc": True,
    "sub/mlflow.db": True,
    "tools/lead.egg-info/PKG-INFO": True,
    "sub/.pytest_cache/v/cache/lastfailed": True,
    "sub/.mypy_cache/3.11/x.json": True,
    "sub/.ruff_cache/CACHEDIR.TAG": True,
    "sub/.hypothesis/examples/x": True,
    "reports/dvc_plots/index.html": True,
    "data/.lcp.lock": True,
    "models/model.pkl.lcp-tmp": True,
    "sub/.lcp-commit/manifest.json": True,
    "dagger/sdk/pyproject.toml": True,
    # Anchored lines of .gitignore files: only at their own place.
    "sub/models.tar": False,
    "sub/data/raw/raw_data.csv": False,
    "sub/sdk/readme.md": False,
    "lead_conversion_prediction/new_module.py": False,
    "notes/venv.md": False,
}


def git_ignored(root: Path, paths: Iterable[str]) -> set[str]:
    """The paths git ignores in a new repository at ``root`` with the project's .gitignore files.

    Each path is created as a file first: a .gitignore line ending in `/` matches folders only.
    """
    for name in git_paths("--cached", "--", "*.gitignore"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJ_ROOT / name, root / name)
    for name in paths:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x", encoding="utf-8")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    checked = subprocess.run(
        ["git", "check-ignore", "--stdin"],
        cwd=root,
        input="\n".join(paths),
        capture_output=True,
        text=True,
        check=False,
    )
    return set(checked.stdout.splitlines())


def gitignore_examples() -> list[str]:
    """For each line of the project's .gitignore files, a path it ignores at its own place, and
    one a folder deeper (what git ignores there too when the line has no inner slash)."""
    examples = []
    for name in git_paths("--cached", "--", "*.gitignore"):
        folder = PurePosixPath(name).parent
        for line in (PROJ_ROOT / name).read_text(encoding="utf-8").splitlines():
            pattern = line.strip()
            if not pattern or pattern.startswith(("#", "!")):
                continue
            concrete = re.sub(r"\*+|\?", "x", pattern.strip("/"))
            inside = "/x" if pattern.endswith("/") else ""
            for place in (folder, folder / "deeper"):
                examples.append(str(place / concrete).removeprefix("./") + inside)
    return examples


def test_the_ignore_rules_leave_out_what_each_gitignore_line_does_where_git_does(
    tmp_path: Path,
) -> None:
    examples = gitignore_examples()
    assert len(examples) > 20
    leaking = [
        path for path in git_ignored(tmp_path, examples) if not ignored(path, SOURCE_IGNORE)
    ]
    assert leaking == [], "add these to SOURCE_IGNORE (with **/ where git matches at any depth)"


def test_the_ignore_rules_match_at_any_depth_as_gitignore_does(tmp_path: Path) -> None:
    git_ignores = git_ignored(tmp_path, NESTED)
    assert {name: name in git_ignores for name in NESTED} == NESTED
    assert {name: ignored(name, SOURCE_IGNORE) for name in NESTED} == NESTED


@pytest.mark.parametrize(
    ("path", "left_out"),
    [
        (".venv/bin/python", True),
        ("lead_conversion_prediction/__pycache__/cli.cpython-311.pyc", True),
        ("data/raw/raw_data.csv", True),
        ("data/raw/raw_data.csv.dvc", False),
        ("data/interim/leads.csv", True),
        ("data/interim/.gitignore", False),
        ("models/candidates/summary.json", True),
        ("models/.gitignore", False),
        ("reports/metrics.json", False),
        ("dagger/sdk/pyproject.toml", True),
        ("dagger/src/lead_pipeline/main.py", False),
    ],
)
def test_the_ignore_rules_read_as_dagger_reads_them(path: str, left_out: bool) -> None:
    assert ignored(path, SOURCE_IGNORE) is left_out


def test_every_container_starts_from_the_pinned_python_image(
    module: LeadPipeline, source: dagger.Directory
) -> None:
    assert PINNED_IMAGE.fullmatch(PYTHON_IMAGE)
    for name, result in results(module, source).items():
        addresses = [step.args["address"] for step in steps(result) if step.name == "from"]
        assert addresses and set(addresses) == {PYTHON_IMAGE}, name


def test_the_locked_environment_is_installed_before_the_source_is_added(
    module: LeadPipeline, source: dagger.Directory
) -> None:
    """uv and its cache volume first, then the locked dependencies from pyproject.toml and
    uv.lock alone, then the source and the project: a change to the code reuses the layer."""
    for name, result in results(module, source).items():
        options = DEVELOPMENT if name in ("lint", "test") else RUNTIME
        for chain in chains(result):
            adds = [
                index
                for index, step in enumerate(chain)
                if step.name == "withDirectory" and step.args["source"] is source
            ]
            if not adds:
                continue
            locked, whole = adds
            assert chain[locked].args["include"] == LOCK_FILES, name
            assert chain[whole].args.get("include") is None, name
            mounted = {
                step.args["path"]: step.args["cache"]
                for step in chain
                if step.name == "withMountedCache"
            }
            assert set(mounted) == set(CACHES), name
            runs = [
                (index, tuple(step.args["args"]))
                for index, step in enumerate(chain)
                if step.name == "withExec"
            ]
            at = {args: index for index, args in runs}
            caches = [index for index, step in enumerate(chain) if step.name == "withMountedCache"]
            assert max(caches) < locked < at[dependencies(options)] < whole, name
            assert whole < at[project(options)], name
            assert [args for index, args in runs if index < locked][-1][:3] == (
                "python",
                "-m",
                "pip",
            )


def test_each_function_runs_the_makefiles_commands_in_order(
    module: LeadPipeline, source: dagger.Directory
) -> None:
    everything = (RAW_DATA_FETCH, *(stage(name) for name in STAGES))
    expected = {
        "pipeline": list(everything),
        "release": list(everything),
        "prepare_data": [RAW_DATA_FETCH, stage("data"), stage("features")],
        "train": [RAW_DATA_FETCH, stage("data"), stage("features"), stage("train")],
        "predict": [RAW_DATA_FETCH, *map(stage, ("data", "features", "train", "validate"))],
        "monitor": [RAW_DATA_FETCH, *map(stage, ("data", "features", "train", "monitor"))],
        "test": [(*REMOTE_ADD, DVC_REMOTE_MOUNT), RAW_DATA_FETCH, ("pytest", "-m", "unit")],
        "lint": list(LINT),
    }
    recipes = makefile_commands()
    for name, result in results(module, source).items():
        commands = project_commands(result)
        assert commands == expected[name], name
        for command in commands:
            assert as_makefile_line(command) in recipes, command


def test_with_no_remote_the_raw_data_is_fetched_and_no_remote_is_configured(
    module: LeadPipeline,
) -> None:
    result = module.pipeline()
    commands = [step.args for step in execs(result)]
    assert RAW_DATA_FETCH in commands
    assert not [command for command in commands if command[:3] == REMOTE_ADD[:3]]
    assert not [step for step in steps(result) if step.name == "withMountedDirectory"]


def test_a_local_remote_is_mounted_read_only_and_made_the_default(
    source: dagger.Directory, mirror: dagger.Directory
) -> None:
    result = make_module(source=source, dvc_remote=mirror).pipeline()
    commands = project_commands(result)
    assert commands[:2] == [(*REMOTE_ADD, DVC_REMOTE_MOUNT), RAW_DATA_FETCH]
    assert as_makefile_line(commands[0]) in makefile_commands()
    mounts = [step.args for step in steps(result) if step.name == "withMountedDirectory"]
    assert mounts == [{"path": DVC_REMOTE_MOUNT, "source": mirror, "readOnly": True}]


def test_a_remote_url_is_made_the_default_and_its_secret_reaches_only_the_fetch(
    source: dagger.Directory,
) -> None:
    secret = dag.set_secret("remote-token", "not-a-real-token")
    module = make_module(
        source=source,
        remote_url="azure://lead-data/dvc",
        remote_secret=secret,
        remote_secret_variable="AZURE_STORAGE_CONNECTION_STRING",
    )
    data = module.prepare_data()
    chain = next(chain for chain in chains(data) if any(s.name == "withExec" for s in chain))
    names = [step.name for step in chain]
    fetch = next(i for i, s in enumerate(chain) if s.args.get("args") == list(RAW_DATA_FETCH))
    given = names.index("withSecretVariable")
    assert chain[given].args == {"name": "AZURE_STORAGE_CONNECTION_STRING", "secret": secret}
    assert given < fetch < names.index("withoutSecretVariable") < len(chain) - 1
    assert (*REMOTE_ADD, "azure://lead-data/dvc") in project_commands(data)
    with_secret = [step.args for step in execs(data) if step.secrets]
    assert with_secret == [RAW_DATA_FETCH]
    assert "not-a-real-token" not in repr([step.args for step in chain])


def test_a_tracking_server_reaches_the_register_step_alone_its_password_as_a_secret(
    module: LeadPipeline,
) -> None:
    password = dag.set_secret("tracking-password", "not-a-real-password")
    server: dict[str, Any] = {
        "tracking_uri": "https://mlflow.example.internal",
        "tracking_username": "ci",
        "tracking_password": password,
    }
    for result in (module.pipeline(**server), module.release(**server)):
        runs = execs(result)
        told = [step for step in runs if "MLFLOW_TRACKING_URI" in step.env or step.secrets]
        assert [step.args for step in told] == [stage("register")]
        (register,) = told
        assert register.env["MLFLOW_TRACKING_URI"] == "https://mlflow.example.internal"
        assert register.env["MLFLOW_TRACKING_USERNAME"] == "ci"
        assert register.secrets == {"MLFLOW_TRACKING_PASSWORD": password}
        assert [step.args for step in runs] == [step.args for step in execs(module.pipeline())]
        built = [step.args for step in steps(result) if step.name != "setSecret"]
        assert "not-a-real-password" not in repr(built)
    # Without a server, no step is told of one: each run has a store of its own.
    assert not [step for step in execs(module.pipeline()) if "MLFLOW_TRACKING_URI" in step.env]
    with pytest.raises(ValueError, match="need a server"):
        module.pipeline(tracking_password=password)


def test_a_secret_without_its_variable_name_is_refused(source: dagger.Directory) -> None:
    module = make_module(source=source, remote_secret=dag.set_secret("token", "x"))
    with pytest.raises(ValueError, match="remote-secret-variable"):
        module.prepare_data()


def test_the_steps_chain_through_the_directories_each_function_returns(
    module: LeadPipeline,
) -> None:
    data = module.prepare_data()
    written = [step.args["path"] for step in selections(data) if step.name == "withDirectory"]
    assert written == ["data/interim", "data/processed"]

    models = module.train(data=data)
    assert project_commands(models) == [
        RAW_DATA_FETCH,
        stage("data"),
        stage("features"),
        stage("train"),
    ]
    assert selections(models)[-1].args == {"path": f"{WORKDIR}/models"}
    assert any(step.args.get("source") is data for step in selections(models))

    report = module.predict(data=data, models=models)
    assert sum(step.args.get("source") is models for step in selections(report)) == 1
    assert project_commands(report)[-2:] == [stage("train"), stage("validate")]
    assert selections(report)[-1].args == {"path": f"{WORKDIR}/reports/validation.json"}

    monitored = called(module, "monitor", data=data, models=models)
    assert sum(step.args.get("source") is models for step in selections(monitored)) == 1
    assert project_commands(monitored)[-2:] == [stage("train"), stage("monitor")]


def test_the_pipeline_returns_the_bundle_and_release_the_bundle_and_reports_of_one_run(
    module: LeadPipeline,
) -> None:
    bundle = module.pipeline()
    assert isinstance(bundle, dagger.File)
    assert selections(bundle)[-1].name == "file"
    assert selections(bundle)[-1].args == {"path": f"{WORKDIR}/models/models.tar"}

    released = module.release()
    assert isinstance(released, dagger.Directory)
    first, model, reports = selections(released)
    assert (first.name, model.name, reports.name) == ("directory", "withFile", "withDirectory")
    assert model.args["path"] == "models.tar" and reports.args["path"] == "reports"
    assert selections(model.args["source"])[-1].args == {"path": f"{WORKDIR}/models/models.tar"}
    assert selections(reports.args["source"])[-1].args == {"path": f"{WORKDIR}/reports"}
    # Both are read from one finished container: one run, one registration, one model.
    (finished,) = {id(selections(step.args["source"])[-2]) for step in (model, reports)}
    assert finished
    assert [step.args for step in execs(released)] == [step.args for step in execs(bundle)]
    assert [args[:2] for args in project_commands(released)].count(("lcp", "register")) == 1


def test_the_functions_that_register_are_never_cached_and_the_others_are() -> None:
    functions = default_module().get_object(LeadPipeline.__name__).functions
    policies = {name: function.cache_policy for name, function in functions.items() if name}
    assert {name for name, policy in policies.items() if policy == "never"} == set(UNCACHED)
    assert {policies[name] for name in FUNCTIONS if name not in UNCACHED} == {None}


def test_the_tests_read_the_shared_folder_mounted_read_only(
    module: LeadPipeline, source: dagger.Directory
) -> None:
    shared = dag.host().directory("../shared")
    (run,) = [
        step
        for step in execs(module.test(shared, source))
        if step.args == ("pytest", "-m", "unit")
    ]
    assert run.env["LCP_SHARED_DIR"] == SHARED_MOUNT
    assert run.workdir == WORKDIR
    mounts = [
        s.args for s in selections(module.test(shared, source)) if s.name.startswith("withM")
    ]
    assert {"path": SHARED_MOUNT, "source": shared, "readOnly": True} in mounts


def test_monitor_mounts_the_batch_read_only_under_its_own_name_once_the_models_are_in(
    module: LeadPipeline,
) -> None:
    batch = dag.host().file("incoming/leads-2026-05.csv.gz")
    report = called(module, "monitor", Answers(name="leads-2026-05.csv.gz"), batch=batch)
    chain = selections(report)
    assert [step.name for step in chain[-3:]] == ["withMountedDirectory", "withExec", "directory"]
    mount = chain[-3]
    assert mount.args["path"] == BATCH_MOUNT and mount.args["readOnly"] is True
    # A folder holding the batch alone, under its own name: its suffix tells the format.
    folder = [(step.name, step.args) for step in selections(mount.args["source"])]
    assert folder == [
        ("directory", {}),
        ("withFile", {"path": "leads-2026-05.csv.gz", "source": batch}),
    ]
    run = execs(report)[-1]
    assert run.args[:4] == ("lcp", "monitor", "--input", f"{BATCH_MOUNT}/leads-2026-05.csv.gz")
    assert run.workdir == WORKDIR
    # The batch comes after the models: a new batch reuses the prepared data and the training.
    models = [
        index
        for index, step in enumerate(chain)
        if step.name == "withDirectory" and step.args["path"] == f"{WORKDIR}/models"
    ]
    assert models and models[-1] < len(chain) - 3
    # Nothing else gets it: the training's containers are the same for any batch.
    mounted = [step for step in steps(report) if step.name == "withMountedDirectory"]
    assert len(mounted) == 1 and mounted[0] is mount


@pytest.mark.parametrize("code", [0, 3])
def test_monitor_returns_the_report_folder_with_or_without_an_alert(
    module: LeadPipeline, code: int
) -> None:
    answers = Answers(code=code)
    report = called(module, "monitor", answers)
    assert isinstance(report, dagger.Directory)
    assert selections(report)[-1].name == "directory"
    assert selections(report)[-1].args == {"path": f"{WORKDIR}/reports/monitoring"}
    # The exit code read is `lcp monitor`'s, in the container the folder is taken from; that
    # command alone may end with any code (3 is an alert), every other must succeed.
    (asked,) = answers.asked
    assert [id(step) for step in selections(asked)] == [
        id(step) for step in selections(report)[:-1]
    ]
    *others, run = execs(report)
    assert run.args == stage("monitor") and run.expect == dagger.ReturnType.ANY.value
    assert {command.expect for command in others} == {dagger.ReturnType.SUCCESS.value}


@pytest.mark.parametrize("code", [1, 2])
def test_monitor_fails_on_an_error_with_lcp_monitors_message(
    module: LeadPipeline, code: int
) -> None:
    stderr = (
        "12:00:00.000 | INFO    | monitor: start\n"
        "error: /batch/leads.csv: file has a header but no data rows\n"
        "2026/01/01 12:00:01 INFO mlflow.store.db.utils: Updating database tables\n"
    )
    with pytest.raises(MonitoringError) as failure:
        called(module, "monitor", Answers(code=code, error=stderr))
    assert str(failure.value) == (
        f"`lcp monitor` exited with {code}: "
        "error: /batch/leads.csv: file has a header but no data rows"
    )
    # Without an error line (a traceback), the last line is the message.
    with pytest.raises(MonitoringError, match=r"exited with 1: KeyError: 'n_visits'$"):
        called(module, "monitor", Answers(code=1, error="Traceback ...\nKeyError: 'n_visits'\n"))
