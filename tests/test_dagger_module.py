"""The Dagger module, read from the queries its functions build: no engine is needed for that.

Building ``dag.container().from_(...).with_exec([...])`` only records each step in the object's
query context (``obj._ctx.selections``); nothing runs until a result is awaited, which these
tests never do.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import dagger
import pytest
from dagger import dag
from dagger.client._core import Field
from dagger.client.base import Type
from dagger.mod import default_module
from dagger.mod._converter import to_typedef

from lead_conversion_prediction.config import PROJ_ROOT
from lead_pipeline.main import (
    DVC_REMOTE_MOUNT,
    PYTHON_IMAGE,
    SHARED_MOUNT,
    SOURCE_IGNORE,
    WORKDIR,
    LeadPipeline,
)

FUNCTIONS = ("pipeline", "prepare_data", "train", "predict", "test", "lint")
PINNED_IMAGE = re.compile(r"python:3\.11\.\d+-slim-[a-z]+@sha256:[0-9a-f]{64}")
RAW_DATA_PULL = ("lcp", "fetch")
REMOTE_ADD = ("dvc", "remote", "add", "--local", "--force", "--default", "mirror")
STAGES = ("data", "features", "train", "evaluate", "register", "package", "validate")

Node = dagger.Container | dagger.Directory | dagger.File


@dataclass(frozen=True)
class Exec:
    """One ``withExec`` of a container chain, with the environment and workdir it runs in."""

    args: tuple[str, ...]
    workdir: str
    env: dict[str, str] = field(default_factory=dict)


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
        workdir = "/"
        for step in selections(current):
            for item in nested(step):
                if id(item) not in seen:
                    seen.add(id(item))
                    visit(item)
            if step.name == "withEnvVariable":
                env[step.args["name"]] = step.args["value"]
            elif step.name == "withWorkdir":
                workdir = step.args["path"]
            elif step.name == "withExec" and id(step) not in seen:
                seen.add(id(step))
                found.append(Exec(tuple(step.args["args"]), workdir, dict(env)))

    visit(node)
    return found


def is_installation(args: tuple[str, ...]) -> bool:
    """Whether a command installs packages (pip or apt) rather than running the project."""
    return args[0] == "apt-get" or args[:3] == ("python", "-m", "pip")


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
    """Every command in the Makefile's recipes, split at shell separators."""
    lines = (PROJ_ROOT / "Makefile").read_text(encoding="utf-8").splitlines()
    recipes = [line.strip().removeprefix("@") for line in lines if line.startswith("\t")]
    return {
        part.strip()
        for recipe in recipes
        for part in re.split(r";|&&|\bthen\b|\bfi\b", recipe)
        if part.strip()
    }


def as_makefile_line(args: tuple[str, ...]) -> str:
    """A container command as the Makefile writes it: the remote is its DVC_REMOTE variable."""
    if args[: len(REMOTE_ADD)] == REMOTE_ADD:
        return " ".join(REMOTE_ADD) + ' "$(DVC_REMOTE)"'
    return shlex.join(args)


def stage(name: str) -> tuple[str, ...]:
    return ("lcp", name)


@pytest.fixture(scope="module")
def module() -> LeadPipeline:
    return LeadPipeline()


@pytest.fixture(scope="module")
def source() -> dagger.Directory:
    return dag.host().directory(str(PROJ_ROOT))


@pytest.fixture(scope="module")
def mirror() -> dagger.Directory:
    return dag.host().directory(str(PROJ_ROOT.parent / "shared" / "dvc-remote"))


def results(module: LeadPipeline, source: dagger.Directory) -> dict[str, Node]:
    """Each function's result, called as `dagger call FUNCTION --source .` would."""
    shared = dag.host().directory("../shared")
    return {
        "pipeline": module.pipeline(source),
        "prepare_data": module.prepare_data(source),
        "train": module.train(source),
        "predict": module.predict(source),
        "test": module.test(source, shared),
        "lint": module.lint(source),
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


def test_the_sdk_registers_each_function_with_documented_arguments() -> None:
    registered = default_module().get_object(LeadPipeline.__name__).functions
    assert sorted(registered) == sorted(FUNCTIONS)
    for name, function in registered.items():
        assert function.doc and "\n" not in function.doc, name
        for parameter in function.parameters.values():
            to_typedef(parameter.resolved_type, f"{name}({parameter.name})")
            assert parameter.doc, f"{name}({parameter.name})"
        source = function.parameters["source"]
        assert source.default_path == "/" and source.default_value is None
        # The tests compare the checkout with git, so only their source keeps .git.
        kept = {".git"} if name == "test" else set()
        assert source.ignore == [pattern for pattern in SOURCE_IGNORE if pattern not in kept]


def test_the_source_leaves_out_what_git_ignores_and_keeps_every_tracked_file() -> None:
    leaking = [
        path
        for path in git_paths("--others", "--ignored", "--exclude-standard", "--directory")
        if not ignored(path, SOURCE_IGNORE)
    ]
    assert leaking == [], "add these to SOURCE_IGNORE"
    dropped = [path for path in git_paths("--cached") if ignored(path, SOURCE_IGNORE)]
    assert dropped == []


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


def test_requirements_are_installed_before_the_source_is_added(
    module: LeadPipeline, source: dagger.Directory
) -> None:
    for name, result in results(module, source).items():
        for chain in chains(result):
            names = [step.name for step in chain]
            adds = [
                index
                for index, step in enumerate(chain)
                if step.name == "withDirectory" and step.args["source"] is source
            ]
            if not adds:
                continue
            requirements, project = adds
            assert chain[requirements].args["include"][0] == "requirements.txt", name
            installs = [
                index
                for index, step in enumerate(chain)
                if step.name == "withExec" and is_installation(tuple(step.args["args"]))
            ]
            cache = names.index("withMountedCache")
            assert chain[cache].args["path"] == "/root/.cache/pip"
            assert cache < requirements < installs[-2] < project < installs[-1], name
            copied = chain[requirements].args["include"]
            assert chain[installs[-2]].args["args"][-2:] == ["-r", copied[-1]]
            assert chain[installs[-1]].args["args"][-3:] == ["--no-deps", "-e", "."]


def test_each_function_runs_the_makefiles_commands_in_order(
    module: LeadPipeline, source: dagger.Directory
) -> None:
    everything = (RAW_DATA_PULL, *(stage(name) for name in STAGES))
    expected = {
        "pipeline": list(everything),
        "prepare_data": [RAW_DATA_PULL, stage("data"), stage("features")],
        "train": [RAW_DATA_PULL, stage("data"), stage("features"), stage("train")],
        "predict": [RAW_DATA_PULL, *map(stage, ("data", "features", "train", "validate"))],
        "test": [("pytest",)],
        "lint": [("ruff", "check", "."), ("ruff", "format", "--check", "."), ("mypy",)],
    }
    recipes = makefile_commands()
    for name, result in results(module, source).items():
        commands = project_commands(result)
        assert commands == expected[name], name
        for command in commands:
            assert as_makefile_line(command) in recipes, command


def test_a_local_remote_is_mounted_read_only_and_made_the_default(
    module: LeadPipeline, source: dagger.Directory, mirror: dagger.Directory
) -> None:
    result = module.pipeline(source, dvc_remote=mirror)
    commands = project_commands(result)
    assert commands[:2] == [(*REMOTE_ADD, DVC_REMOTE_MOUNT), RAW_DATA_PULL]
    assert as_makefile_line(commands[0]) in makefile_commands()
    mounts = [step.args for step in steps(result) if step.name == "withMountedDirectory"]
    assert mounts == [{"path": DVC_REMOTE_MOUNT, "source": mirror, "readOnly": True}]


def test_a_remote_url_is_made_the_default_and_its_secret_reaches_only_the_pull(
    module: LeadPipeline, source: dagger.Directory
) -> None:
    secret = dag.set_secret("remote-token", "not-a-real-token")
    data = module.prepare_data(
        source,
        remote_url="azure://lead-data/dvc",
        remote_secret=secret,
        remote_secret_variable="AZURE_STORAGE_CONNECTION_STRING",
    )
    chain = next(chain for chain in chains(data) if any(s.name == "withExec" for s in chain))
    names = [step.name for step in chain]
    pull = next(i for i, s in enumerate(chain) if s.args.get("args") == list(RAW_DATA_PULL))
    given = names.index("withSecretVariable")
    assert chain[given].args == {"name": "AZURE_STORAGE_CONNECTION_STRING", "secret": secret}
    assert given < pull < names.index("withoutSecretVariable") < len(chain) - 1
    assert (*REMOTE_ADD, "azure://lead-data/dvc") in project_commands(data)
    assert "not-a-real-token" not in repr([step.args for step in chain])


def test_a_secret_without_its_variable_name_is_refused(
    module: LeadPipeline, source: dagger.Directory
) -> None:
    with pytest.raises(ValueError, match="remote-secret-variable"):
        module.prepare_data(source, remote_secret=dag.set_secret("token", "x"))


def test_the_steps_chain_through_the_directories_each_function_returns(
    module: LeadPipeline, source: dagger.Directory
) -> None:
    data = module.prepare_data(source)
    written = [step.args["path"] for step in selections(data) if step.name == "withDirectory"]
    assert written == ["data/interim", "data/processed"]

    models = module.train(source, data=data)
    assert project_commands(models) == [
        RAW_DATA_PULL,
        stage("data"),
        stage("features"),
        stage("train"),
    ]
    assert selections(models)[-1].args == {"path": f"{WORKDIR}/models"}
    assert any(step.args.get("source") is data for step in selections(models))

    report = module.predict(source, data=data, models=models)
    assert sum(step.args.get("source") is models for step in selections(report)) == 1
    assert project_commands(report)[-2:] == [stage("train"), stage("validate")]
    assert selections(report)[-1].args == {"path": f"{WORKDIR}/reports/validation.json"}


def test_the_pipeline_returns_the_model_bundle(
    module: LeadPipeline, source: dagger.Directory
) -> None:
    bundle = module.pipeline(source)
    assert isinstance(bundle, dagger.File)
    assert selections(bundle)[-1].name == "file"
    assert selections(bundle)[-1].args == {"path": f"{WORKDIR}/models/models.tar"}


def test_the_tests_read_the_shared_folder_mounted_read_only(
    module: LeadPipeline, source: dagger.Directory
) -> None:
    shared = dag.host().directory("../shared")
    (run,) = [step for step in execs(module.test(source, shared)) if step.args == ("pytest",)]
    assert run.env["LCP_SHARED_DIR"] == SHARED_MOUNT
    assert run.workdir == WORKDIR
    mounts = [
        s.args for s in selections(module.test(source, shared)) if s.name.startswith("withM")
    ]
    assert {"path": SHARED_MOUNT, "source": shared, "readOnly": True} in mounts
