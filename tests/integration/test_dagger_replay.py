"""What `dagger call` would run, replayed on a copy of the source without an engine.

`dagger call [MODULE FLAGS] FUNCTION [FLAGS] export --path PATH` is read as the CLI reads it:
the flags before the function are the module's (its constructor), the others the function's,
each typed as the SDK registers it (a directory is a host path, a secret `env:NAME`). The
commands are then read from the query the module builds (see tests/unit/test_dagger_module.py) and
run in the order the engine would run them:

- the container's workdir is a copy of the source directory less its ``Ignore`` patterns, as
  the engine uploads it; a mounted host directory (a DVC remote) is that directory;
- pip and apt only build the image: the interpreter running these tests has the pinned
  requirements, and ``PYTHONPATH`` makes its ``lcp`` run the copy's code, as the image's
  editable install of the source would;
- nothing else of the host reaches the commands: no ``LCP_ROOT``, no tracking URI (the copy's
  own ``mlflow.db`` is the container's throw-away store), no DVC remote unless one is given.

The result is exported as the CLI would: a container's file or folder, or a folder assembled
with ``with_directory``, copied to ``--path``.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import dagger
import pytest
from dagger import dag
from dagger.mod import default_module

from lead_conversion_prediction.config import PROJ_ROOT
from lead_pipeline.main import SOURCE_IGNORE, WORKDIR, LeadPipeline
from tests.support import SHARED_DIR
from tests.unit.test_dagger_module import (
    NESTED,
    Exec,
    execs,
    git_paths,
    ignored,
    is_installation,
    make_module,
    selections,
    steps,
)


class ReplayError(AssertionError):
    """A command of the replayed call failed, or the call is not one the CLI would accept."""


@dataclass(frozen=True)
class DaggerCall:
    """`dagger call` split as the CLI splits it: module flags, function, its flags, export."""

    module: dict[str, str]
    function: str
    arguments: dict[str, str]
    export: str

    @classmethod
    def parse(cls, words: Sequence[str]) -> DaggerCall:
        module, rest = _flags(list(words))
        if not rest:
            raise ReplayError(f"no function in `dagger call {shlex.join(words)}`")
        function, *rest = rest
        arguments, rest = _flags(rest)
        chained, export = _flags(rest[1:]) if rest else ({}, [])
        if rest[:1] != ["export"] or export or set(chained) != {"path"}:
            raise ReplayError(
                f"`dagger call {shlex.join(words)}`: the replay supports `export --path PATH` "
                "after the function only"
            )
        return cls(module, function, arguments, chained["path"])


def _flags(words: list[str]) -> tuple[dict[str, str], list[str]]:
    """The leading `--name value` / `--name=value` flags, and the words after them."""
    flags: dict[str, str] = {}
    while words and words[0].startswith("--"):
        name, given, value = words.pop(0)[2:].partition("=")
        if not given:
            if not words:
                raise ReplayError(f"--{name} has no value")
            value = words.pop(0)
        flags[name] = value
    return flags, words


@dataclass
class HostDirectories:
    """The host folders a call reads, by the Directory object the module received."""

    paths: dict[int, Path] = field(default_factory=dict)
    ignores: dict[int, list[str]] = field(default_factory=dict)

    def load(self, path: Path, ignore: list[str] | None) -> dagger.Directory:
        directory = dag.host().directory(str(path))
        self.paths[id(directory)] = path
        self.ignores[id(directory)] = ignore or []
        return directory


def _typed(
    value: str, parameter: Any, workdir: Path, hosts: HostDirectories, env: Mapping[str, str]
) -> Any:
    """A flag's value as the CLI passes it for the parameter's registered type."""
    kinds = set(get_args(parameter.resolved_type)) or {parameter.resolved_type}
    if dagger.Directory in kinds:
        return hosts.load((workdir / value).resolve(), parameter.ignore)
    if dagger.Secret in kinds:
        provider, _, name = value.partition(":")
        if provider != "env" or name not in env:
            raise ReplayError(
                f"--{parameter.name} {value}: give a secret as env:NAME of a set NAME"
            )
        return dag.set_secret(name, env[name])
    if str in kinds:
        return value
    raise ReplayError(f"--{parameter.name}: the replay cannot pass {parameter.resolved_type}")


def _bind(
    flags: Mapping[str, str],
    parameters: Mapping[str, Any],
    where: str,
    workdir: Path,
    hosts: HostDirectories,
    env: Mapping[str, str],
) -> dict[str, Any]:
    """Python arguments for the flags; a flag the SDK did not register is refused, as by CLI."""
    bound: dict[str, Any] = {}
    for flag, value in flags.items():
        name = flag.replace("-", "_")
        if name not in parameters:
            raise ReplayError(f"unknown flag --{flag} for {where}")
        bound[name] = _typed(value, parameters[name], workdir, hosts, env)
    for name, parameter in parameters.items():
        if name not in bound and parameter.default_path:
            # DefaultPath: the folder of dagger.json, where the CLI runs from here.
            bound[name] = hosts.load(
                workdir / parameter.default_path.lstrip("/"), parameter.ignore
            )
    return bound


def build(call: DaggerCall, workdir: Path, env: Mapping[str, str]) -> tuple[Any, HostDirectories]:
    """The object the call exports, built by the module as the engine would build it."""
    sdk = default_module()
    main = sdk.get_object(LeadPipeline.__name__)
    hosts = HostDirectories()
    constructor = main.get_constructor(sdk._converter).parameters
    module = make_module(**_bind(call.module, constructor, "the module", workdir, hosts, env))
    functions = {name.replace("_", "-"): function for name, function in main.functions.items()}
    if call.function not in functions or not call.function:
        raise ReplayError(f"unknown function {call.function!r} of the module")
    function = functions[call.function]
    arguments = _bind(call.arguments, function.parameters, call.function, workdir, hosts, env)
    return getattr(module, function.original_name)(**arguments), hosts


def copy_source(source: Path, ignore: Sequence[str], root: Path) -> Path:
    """Copy ``source`` as the engine uploads it: every file but those ``ignore`` leaves out."""
    negated = [pattern[1:].strip("/") for pattern in ignore if pattern.startswith("!")]
    for folder, folders, files in os.walk(source):
        relative = Path(folder).relative_to(source)
        # A left-out folder is not walked unless a `!` pattern takes something inside it back.
        folders[:] = [
            name
            for name in folders
            if not ignored(str(relative / name), ignore)
            or any(pattern.startswith(f"{relative / name}/") for pattern in negated)
        ]
        for name in files:
            path = (relative / name).as_posix()
            if not ignored(path, ignore):
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(Path(folder) / name, root / path)
    return root


def digest(root: Path) -> str:
    """A digest of a folder's file names and contents."""
    hashed = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            hashed.update(path.relative_to(root).as_posix().encode() + b"\0")
            hashed.update(path.read_bytes())
    return hashed.hexdigest()


def mapped(value: str, mounts: Mapping[str, Path]) -> str:
    """A container path as the matching path on this machine; anything else unchanged."""
    for inside, outside in mounts.items():
        if value == inside or value.startswith(f"{inside}/"):
            return str(outside) + value.removeprefix(inside)
    return value


def _host_inputs(node: Any, hosts: HostDirectories) -> Iterator[tuple[str, str, int]]:
    """(step name, container path, host directory id) for each host folder a container gets."""
    for step in steps(node):
        source = step.args.get("source")
        if step.name in ("withDirectory", "withMountedDirectory") and id(source) in hosts.paths:
            if step.name == "withDirectory" and step.args.get("include"):
                continue  # the requirement files only, copied again with the source
            yield step.name, step.args["path"], id(source)


def _plaintext(secret: dagger.Secret) -> str:
    (made,) = selections(secret)
    if made.name != "setSecret":
        raise ReplayError(f"the replay reads secrets made with set_secret, not {made.name}")
    return str(made.args["plaintext"])


@dataclass(frozen=True)
class Done:
    """A replayed call's commands and inputs, and the folders they ran in: the engine's cache."""

    key: tuple[Any, ...]
    mounts: dict[str, Path]


@dataclass
class Replay:
    """One call's commands run on this machine; ``log`` collects their output.

    ``secret_env`` is where `env:NAME` secrets are read (the caller's environment, ``env`` by
    default). Given a ``cache``, a call whose commands, source files and mounted folders equal
    an earlier one's reuses its results, as the engine's cache would.
    """

    call: DaggerCall
    workdir: Path
    scratch: Path
    env: Mapping[str, str]
    log: Path
    secret_env: Mapping[str, str] | None = None
    cache: list[Done] | None = None
    commands: list[Exec] = field(default_factory=list)
    reused: bool = False

    def run(self) -> Path:
        """Run every command, export the result and return where it was written."""
        self.log.touch()
        node, hosts = build(self.call, self.workdir, self.secret_env or self.env)
        mounts: dict[str, Path] = {}
        copied: set[int] = set()
        for name, inside, source in _host_inputs(node, hosts):
            if name == "withMountedDirectory":
                mounts[inside] = hosts.paths[source]
            elif inside != WORKDIR or copied - {source}:
                raise ReplayError(f"the replay copies one source to {WORKDIR}, not to {inside}")
            elif not copied:
                copied.add(source)
                mounts[inside] = copy_source(
                    hosts.paths[source], hosts.ignores[source], self.scratch / "app"
                )
        root = mounts.get(WORKDIR)
        env = {
            **self.env,
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), self.env["PATH"]]),
            "PYTHONPATH": str(root or ""),
        }
        self.commands = execs(node)
        key = (
            tuple((command.args, tuple(sorted(command.env.items()))) for command in self.commands),
            digest(root) if root else "",
            tuple(sorted((inside, str(path)) for inside, path in mounts.items() if path != root)),
        )
        earlier = [done for done in self.cache or [] if done.key == key]
        if earlier:
            self.reused = True
            with self.log.open("a", encoding="utf-8") as log:
                log.write("(the same commands on the same inputs ran before: reused)\n")
            return self._export(node, earlier[0].mounts)
        with self.log.open("a", encoding="utf-8") as log:
            for command in self.commands:
                if not is_installation(command.args):
                    self._exec(command, mounts, env, log)
        if self.cache is not None:
            self.cache.append(Done(key, mounts))
        return self._export(node, mounts)

    def _exec(
        self, command: Exec, mounts: Mapping[str, Path], env: Mapping[str, str], log: Any
    ) -> None:
        args = [mapped(arg, mounts) for arg in command.args]
        variables = {name: mapped(value, mounts) for name, value in command.env.items()}
        secrets = {name: _plaintext(secret) for name, secret in command.secrets.items()}
        log.write(f"$ {shlex.join(command.args)}\n")
        log.flush()
        result = subprocess.run(
            args,
            cwd=mapped(command.workdir, mounts),
            env={**env, **variables, **secrets},
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
        if result.returncode != 0:
            raise ReplayError(f"`{shlex.join(command.args)}` exited with {result.returncode}")

    def _export(self, node: Any, mounts: Mapping[str, Path]) -> Path:
        target = self.workdir / self.call.export
        produced = self._materialise(node, mounts, self.scratch / "export")
        target.parent.mkdir(parents=True, exist_ok=True)
        if produced.is_dir():
            shutil.copytree(produced, target, dirs_exist_ok=True)
        else:
            shutil.copy2(produced, target)
        return target

    def _materialise(self, node: Any, mounts: Mapping[str, Path], scratch: Path) -> Path:
        """The file or folder a File/Directory object stands for, on this machine."""
        chain = selections(node)
        last = chain[-1]
        if chain[0].name == "container" and last.name in ("file", "directory"):
            return Path(mapped(last.args["path"], mounts))
        if [step.name for step in chain[:1]] == ["directory"] and all(
            step.name == "withDirectory" for step in chain[1:]
        ):
            scratch.mkdir(parents=True, exist_ok=True)
            for index, step in enumerate(chain[1:]):
                part = self._materialise(step.args["source"], mounts, scratch / f"part{index}")
                shutil.copytree(part, scratch / step.args["path"], dirs_exist_ok=True)
            return scratch
        raise ReplayError(f"the replay cannot export {[step.name for step in chain]}")


def replay(
    words: Sequence[str], workdir: Path, scratch: Path, env: Mapping[str, str], log: Path
) -> Path:
    """Replay `dagger call WORDS` run from ``workdir``; return the exported path."""
    return Replay(DaggerCall.parse(words), workdir, scratch, env, log).run()


def container_env() -> dict[str, str]:
    """This machine's environment less what the project reads: a container sets none of it."""
    env = dict(os.environ)
    for name in ("LCP_ROOT", "DVC_ROOT", "MLFLOW_TRACKING_URI", "LCP_SHARED_DIR", "PYTHONPATH"):
        env.pop(name, None)
    return env


def test_the_call_is_read_as_the_cli_reads_it() -> None:
    words = "--source . --dvc-remote ../m pipeline --source=sub export --path ./models.tar"
    call = DaggerCall.parse(words.split())
    assert call == DaggerCall(
        {"source": ".", "dvc-remote": "../m"}, "pipeline", {"source": "sub"}, "./models.tar"
    )
    for refused in (
        "pipeline",
        "pipeline stdout",
        "pipeline export --path x --mode y",
        "--source",
    ):
        with pytest.raises(ReplayError):
            DaggerCall.parse(refused.split())


def test_the_source_copy_leaves_out_nested_environments_and_stores(tmp_path: Path) -> None:
    tree = tmp_path / "checkout"
    for name in [*NESTED, *git_paths("--cached")]:
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text("x", encoding="utf-8")
    copied = copy_source(tree, SOURCE_IGNORE, tmp_path / "app")
    kept = {path.relative_to(copied).as_posix() for path in copied.rglob("*") if path.is_file()}
    assert kept == {name for name, left_out in NESTED.items() if not left_out} | set(
        git_paths("--cached")
    )


def test_prepare_data_with_a_mirror_pulls_the_raw_data_from_it(tmp_path: Path) -> None:
    """The mirror mode (``--dvc-remote``): the whole pipeline is replayed in the workflow run
    (tests/integration/test_workflow_run.py), from the upstream URL; here the fetch from a
    mounted mirror and the data stages that follow it."""
    mirror = SHARED_DIR / "dvc-remote"
    if not mirror.is_dir():
        pytest.fail(f"{mirror} is missing: the replay pulls the raw data from that mirror")
    exported = tmp_path / "data"
    words = ["--dvc-remote", str(mirror), "prepare-data", "export", "--path", str(exported)]
    log = tmp_path / "replay.log"
    run = Replay(DaggerCall.parse(words), PROJ_ROOT, tmp_path, container_env(), log)
    try:
        assert run.run() == exported
    except ReplayError as error:
        raise AssertionError(f"{error}\n{log.read_text(encoding='utf-8')[-3000:]}") from None

    lcp = [command.args for command in run.commands if command.args[0] == "lcp"]
    assert [args[:2] for args in lcp] == [("lcp", "fetch"), ("lcp", "data"), ("lcp", "features")]
    assert "origin=DVC remote 'mirror'" in log.read_text(encoding="utf-8")
    kept = {path.relative_to(exported).as_posix() for path in exported.rglob("*.csv")}
    expected = {f"data/{name}.csv" for name in ("interim/leads", "processed/X_train")}
    assert expected <= kept, kept
