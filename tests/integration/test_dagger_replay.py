"""What `dagger call` would run, replayed on a copy of the source without an engine.

`dagger call [MODULE FLAGS] FUNCTION [FLAGS] export --path PATH` is read as the CLI reads it:
the flags before the function are the module's (its constructor), the others the function's,
each typed as the SDK registers it (a directory or a file is a host path, a secret `env:NAME`).
The commands are then read from the query the module builds (see tests/unit/test_dagger_module.py)
and run in the order the engine would run them; a function that awaits a result (an exit code)
gets it from the commands it needs, run then:

- the container's workdir is a copy of the source directory less its ``Ignore`` patterns, as
  the engine uploads it; a mounted host directory (a DVC remote) is that directory; a mounted
  folder of host files (``dag.directory().with_file(...)``) is a copy of them, read-only when
  mounted so;
- a command fails the call when its exit code is not one its ``expect`` allows (by default,
  anything but 0), and so does an exception of the function, as the CLI reports it;
- the image is this machine's: apt and pip only build it (they are not run), and its
  ``/usr/local/bin`` is a folder of this machine's Python 3.11 and uv (the lock's version, which
  pip installs there in the image); every other command runs as the container runs it, with
  its environment, its ``PATH`` mapped entry by entry: the ``uv sync`` commands install the
  environment from uv.lock into the copy's ``.venv`` (hard links from this machine's uv cache),
  and ``lcp`` is that environment's, with the copy installed editable, as in the container;
- nothing else of the host reaches the commands: no ``LCP_ROOT``, no tracking URI (the copy's
  own ``mlflow.db`` is the container's throw-away store), no DVC remote unless one is given.

The result is exported as the CLI would: a container's file or folder, or a folder assembled
with ``with_directory``, copied to ``--path``.
"""

from __future__ import annotations

import csv
import hashlib
import inspect
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import dagger
import pytest
from dagger import dag
from dagger.client._core import Field
from dagger.mod import default_module

from lead_conversion_prediction.config import PROJ_ROOT
from lead_pipeline.arguments import SOURCE_IGNORE
from lead_pipeline.environments import UV_VERSION, WORKDIR
from lead_pipeline.main import LeadPipeline
from tests.support import SHARED_DIR, shared_file
from tests.unit.test_dagger_module import (
    NESTED,
    Exec,
    answered,
    builds_image,
    execs,
    git_paths,
    ignored,
    is_installation,
    make_module,
    selections,
    steps,
)

# Each replay of monitor trains a model first: 15 to 30 s each, with the data stages.
pytestmark = pytest.mark.long(seconds=60)


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
class HostInputs:
    """The host folders and files a call reads, by the object the module received."""

    paths: dict[int, Path] = field(default_factory=dict)
    ignores: dict[int, list[str]] = field(default_factory=dict)
    files: dict[int, Path] = field(default_factory=dict)

    def load(self, path: Path, ignore: list[str] | None) -> dagger.Directory:
        directory = dag.host().directory(str(path))
        self.paths[id(directory)] = path
        self.ignores[id(directory)] = ignore or []
        return directory

    def load_file(self, path: Path) -> dagger.File:
        if not path.is_file():
            raise ReplayError(f"{path} is not a file")
        file = dag.host().file(str(path))
        self.files[id(file)] = path
        return file

    def folder_of_files(self, directory: Any) -> dict[str, Path] | None:
        """The host files of a folder made of them alone (``dag.directory().with_file(NAME,
        FILE)``), by name; None for any other folder."""
        first, *added = selections(directory)
        if first.name != "directory" or not added:
            return None
        if any(s.name != "withFile" or id(s.args["source"]) not in self.files for s in added):
            return None
        return {step.args["path"]: self.files[id(step.args["source"])] for step in added}


def _typed(
    value: str, parameter: Any, workdir: Path, hosts: HostInputs, env: Mapping[str, str]
) -> Any:
    """A flag's value as the CLI passes it for the parameter's registered type."""
    kinds = set(get_args(parameter.resolved_type)) or {parameter.resolved_type}
    if dagger.Directory in kinds:
        return hosts.load((workdir / value).resolve(), parameter.ignore)
    if dagger.File in kinds:
        return hosts.load_file((workdir / value).resolve())
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
    hosts: HostInputs,
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


def build(call: DaggerCall, workdir: Path, env: Mapping[str, str]) -> tuple[Any, HostInputs]:
    """The object the call exports, built by the module as the engine would build it (for an
    async function, the coroutine that returns it)."""
    sdk = default_module()
    main = sdk.get_object(LeadPipeline.__name__)
    hosts = HostInputs()
    constructor = main.get_constructor(sdk._converter).parameters
    module = make_module(**_bind(call.module, constructor, "the module", workdir, hosts, env))
    functions = {name.replace("_", "-"): function for name, function in main.functions.items()}
    if call.function not in functions or not call.function:
        raise ReplayError(f"unknown function {call.function!r} of the module")
    function = functions[call.function]
    arguments = _bind(call.arguments, function.parameters, call.function, workdir, hosts, env)
    with _function_errors(call):
        return getattr(module, function.original_name)(**arguments), hosts


@contextmanager
def _function_errors(call: DaggerCall) -> Iterator[None]:
    """An exception of the module's function fails the call with its message, as by the CLI."""
    try:
        yield
    except ReplayError:
        raise
    except Exception as error:
        raise ReplayError(f"{call.function}: {error}") from error


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


# The image's folder of Python and uv, and what stands in for each of its commands here.
IMAGE_BIN = "/usr/local/bin"
IMAGE_PYTHONS = ("python", "python3", "python3.11")


def image_bin(folder: Path) -> Path:
    """A stand-in for the image's /usr/local/bin: this machine's base Python 3.11 and the uv on
    PATH (the project's .venv has it), which must be the version the image bootstraps."""
    if sys.version_info[:2] != (3, 11):
        raise ReplayError("the replay stands in for the image's Python 3.11 with its own")
    found = shutil.which("uv")
    if found is None:
        raise ReplayError("no uv on PATH: `make install` puts uv.lock's into .venv/bin")
    uv = Path(found)
    version = subprocess.run([str(uv), "--version"], capture_output=True, text=True, check=True)
    if version.stdout.split()[1] != UV_VERSION:
        raise ReplayError(f"{uv} is not uv {UV_VERSION}, the image's: {version.stdout.strip()}")
    folder.mkdir(parents=True, exist_ok=True)
    base = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
    for name, target in [*((name, base) for name in IMAGE_PYTHONS), ("uv", uv)]:
        (folder / name).unlink(missing_ok=True)
        (folder / name).symlink_to(target)
    return folder


def mapped(value: str, mounts: Mapping[str, Path]) -> str:
    """A container path as the matching path on this machine; anything else unchanged."""
    for inside, outside in mounts.items():
        if value == inside or value.startswith(f"{inside}/"):
            return str(outside) + value.removeprefix(inside)
    return value


def _host_inputs(node: Any, hosts: HostInputs) -> Iterator[Field]:
    """The steps that give a container a host folder or a folder of host files."""
    for step in steps(node):
        source = step.args.get("source")
        if step.type_name == "Container" and id(source) in hosts.files:
            raise ReplayError(f"the replay mounts host files in a folder, not with {step.name}")
        if step.name not in ("withDirectory", "withMountedDirectory"):
            continue
        if id(source) in hosts.paths:
            if step.name == "withDirectory" and step.args.get("include"):
                continue  # the requirement files only, copied again with the source
            yield step
        elif hosts.folder_of_files(source) is not None:
            yield step


def accepts(expect: str, code: int) -> bool:
    """Whether ``with_exec(..., expect=expect)`` lets a command end with ``code``: the engine's
    ANY is 0 to 127 and 192 to 255 (128 to 191 are signals), FAILURE the same less 0."""
    if expect == dagger.ReturnType.SUCCESS.value:
        return code == 0
    ended = not 128 <= code < 192
    return ended if expect == dagger.ReturnType.ANY.value else ended and code != 0


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


@dataclass(frozen=True)
class Ran:
    """A command that ran: the step, its exit code and its stderr."""

    step: Field
    exit_code: int
    stderr: str


@dataclass
class Replay:
    """One call's commands run on this machine; ``log`` collects their output.

    ``secret_env`` is where `env:NAME` secrets are read (the caller's environment, ``env`` by
    default). Given a ``cache``, a call whose commands, source files and mounted folders equal
    an earlier one's reuses its results, as the engine's cache would; a call of a function that
    awaits a result runs its commands as it awaits them, and is never reused.

    It answers what the function awaits (``test_dagger_module.Engine``): a host file's name,
    and the exit code and stderr of a container's last command, once its commands have run.
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
    hosts: HostInputs = field(default_factory=HostInputs)
    mounts: dict[str, Path] = field(default_factory=dict)
    # What ran, by step: a Ran keeps its step, so no other step takes that id.
    ran: dict[int, Ran] = field(default_factory=dict)
    copied: int | None = None
    read_only: list[Path] = field(default_factory=list)

    def run(self) -> Path:
        """Run every command, export the result and return where it was written."""
        self.log.touch()
        try:
            return self._run()
        finally:
            for folder in self.read_only:
                folder.chmod(0o755)  # so that the scratch folder can be removed

    def _run(self) -> Path:
        returned, self.hosts = build(self.call, self.workdir, self.secret_env or self.env)
        if inspect.iscoroutine(returned):
            with _function_errors(self.call):
                node = answered(returned, self)
            self._evaluate(node)
            return self._export(node, self.mounts)
        node = returned
        self._mount(node)
        root = self.mounts.get(WORKDIR)
        commands = execs(node)
        key = (
            tuple((command.args, tuple(sorted(command.env.items()))) for command in commands),
            digest(root) if root else "",
            tuple(
                sorted((inside, str(path)) for inside, path in self.mounts.items() if path != root)
            ),
        )
        earlier = [done for done in self.cache or [] if done.key == key]
        if earlier:
            self.reused = True
            self.commands = commands
            with self.log.open("a", encoding="utf-8") as log:
                log.write("(the same commands on the same inputs ran before: reused)\n")
            return self._export(node, earlier[0].mounts)
        self._evaluate(node)
        if self.cache is not None:
            self.cache.append(Done(key, dict(self.mounts)))
        return self._export(node, self.mounts)

    def file_name(self, file: dagger.File) -> str:
        if id(file) not in self.hosts.files:
            raise ReplayError("the replay knows the name of a host file only")
        return self.hosts.files[id(file)].name

    def exit_code(self, container: dagger.Container) -> int:
        return self._last_run(container).exit_code

    def stderr(self, container: dagger.Container) -> str:
        return self._last_run(container).stderr

    def _last_run(self, container: dagger.Container) -> Ran:
        """The container's last command, once every command it needs has run."""
        self._evaluate(container)
        run = [step for step in selections(container) if step.name == "withExec"]
        if not run:
            raise ReplayError("the container ran no command: it has no exit code")
        return self.ran[id(run[-1])]

    def _mount(self, node: Any) -> None:
        """Lay out the host inputs of the node's containers, each once: the source copied to the
        workdir, a mounted host folder as it is, a folder of host files copied."""
        for step in _host_inputs(node, self.hosts):
            inside, source = step.args["path"], step.args["source"]
            files = self.hosts.folder_of_files(source)
            if files is not None:
                if step.name != "withMountedDirectory":
                    raise ReplayError(f"the replay mounts a folder of host files, not {step.name}")
                if inside not in self.mounts:
                    self.mounts[inside] = self._copy_files(
                        files, inside, step.args.get("readOnly")
                    )
            elif step.name == "withMountedDirectory":
                self.mounts[inside] = self.hosts.paths[id(source)]
            elif inside != WORKDIR or self.copied not in (None, id(source)):
                raise ReplayError(f"the replay copies one source to {WORKDIR}, not to {inside}")
            elif self.copied is None:
                self.copied = id(source)
                path, ignore = self.hosts.paths[id(source)], self.hosts.ignores[id(source)]
                self.mounts[WORKDIR] = copy_source(path, ignore, self.scratch / "app")

    def _copy_files(self, files: Mapping[str, Path], inside: str, read_only: bool | None) -> Path:
        folder = self.scratch / "mounts" / inside.strip("/")
        for name, path in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, folder / name)
        if read_only:
            inside_out = [*folder.rglob("*"), folder]
            for path in inside_out:
                path.chmod(0o555 if path.is_dir() else 0o444)
            self.read_only += [path for path in inside_out if path.is_dir()]
        return folder

    def install(self, node: Any) -> Path:
        """Build the environment of the node's containers alone: run their installation commands
        (the image's aside), none of the project's; return the workdir they installed in."""
        self.log.touch()
        self._evaluate(node, only=is_installation)
        return self.mounts[WORKDIR]

    def _evaluate(self, node: Any, only: Callable[[tuple[str, ...]], bool] | None = None) -> None:
        """Run the node's commands that have not run yet, in order: the engine runs a step once
        (``only``: those it selects)."""
        self._mount(node)
        if IMAGE_BIN not in self.mounts:
            self.mounts[IMAGE_BIN] = image_bin(self.scratch / "image-bin")
        # The container's PATH (every command's environment sets it) replaces this machine's.
        env = {name: value for name, value in self.env.items() if name != "PATH"}
        with self.log.open("a", encoding="utf-8") as log:
            for command in execs(node):
                assert command.step is not None
                if id(command.step) in self.ran or (only and not only(command.args)):
                    continue
                self.commands.append(command)
                if builds_image(command.args):
                    self.ran[id(command.step)] = Ran(command.step, 0, "")
                else:
                    self.ran[id(command.step)] = self._exec(command, env, log)

    def _exec(self, command: Exec, env: Mapping[str, str], log: Any) -> Ran:
        mounts = self.mounts
        args = [mapped(arg, mounts) for arg in command.args]
        variables = {name: mapped(value, mounts) for name, value in command.env.items()}
        if "PATH" not in variables:
            raise ReplayError(f"`{shlex.join(command.args)}` runs with no PATH of the container's")
        variables["PATH"] = os.pathsep.join(
            mapped(entry, mounts) for entry in command.env["PATH"].split(":")
        )
        secrets = {name: _plaintext(secret) for name, secret in command.secrets.items()}
        log.write(f"$ {shlex.join(command.args)}\n")
        log.flush()
        stderr: list[str] = []
        with subprocess.Popen(
            args,
            cwd=mapped(command.workdir, mounts),
            env={**env, **variables, **secrets},
            stdout=log,
            stderr=subprocess.PIPE,
            encoding="utf-8",
            errors="replace",
        ) as process:
            assert process.stderr is not None
            try:
                for line in process.stderr:  # written to the log as it comes, and kept
                    log.write(line)
                    log.flush()
                    stderr.append(line)
            except BaseException:
                process.kill()
                raise
        # A command killed by a signal ends, in a container, with 128 + the signal's number.
        code = 128 - process.returncode if process.returncode < 0 else process.returncode
        assert command.step is not None
        if not accepts(command.expect, code):
            raise ReplayError(f"`{shlex.join(command.args)}` exited with {code}")
        return Ran(command.step, code, "".join(stderr))

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
            step.name in ("withDirectory", "withFile") for step in chain[1:]
        ):
            scratch.mkdir(parents=True, exist_ok=True)
            for index, step in enumerate(chain[1:]):
                part = self._materialise(step.args["source"], mounts, scratch / f"part{index}")
                if step.name == "withFile":
                    (scratch / step.args["path"]).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(part, scratch / step.args["path"])
                else:
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
    project = ("LCP_ROOT", "DVC_ROOT", "MLFLOW_TRACKING_URI", "LCP_SHARED_DIR", "LCP_GIT_COMMIT")
    python = ["PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT"]
    python += ["PYSPARK_PYTHON"]
    for name in (*project, *python):
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


def write_signup_leads(target: Path, visits_factor: float, rows: bool = True) -> Path:
    """The real raw leads from the signup source (the training rows' source), with n_visits
    multiplied by ``visits_factor``; only the header when ``rows`` is false."""
    with shared_file("data", "raw_data.csv").open(encoding="utf-8", newline="") as raw:
        reader = csv.DictReader(raw)
        assert reader.fieldnames is not None
        leads = [row for row in reader if row["source"] == "signup"]
    for row in leads:
        if row["n_visits"]:
            row["n_visits"] = str(float(row["n_visits"]) * visits_factor)
    with target.open("w", encoding="utf-8", newline="") as batch:
        writer = csv.DictWriter(batch, fieldnames=reader.fieldnames)
        writer.writeheader()
        writer.writerows(leads if rows else [])
    return target


def replay_monitor(batch: Path, folder: Path) -> tuple[Replay, Path]:
    """`dagger call --dvc-remote MIRROR monitor --batch BATCH export --path monitoring`, replayed
    from the project root: the raw data from the shared mirror, the model trained on it."""
    folder.mkdir()
    exported = folder / "monitoring"
    mirror = ["--dvc-remote", str(SHARED_DIR / "dvc-remote")]
    words = [*mirror, "monitor", "--batch", str(batch), "export", "--path", str(exported)]
    log = folder / "replay.log"
    return Replay(DaggerCall.parse(words), PROJ_ROOT, folder, container_env(), log), exported


def test_monitor_returns_the_report_of_a_drifted_batch_with_its_alert(tmp_path: Path) -> None:
    batch = write_signup_leads(tmp_path / "leads.csv", visits_factor=1.5)
    run, exported = replay_monitor(batch, tmp_path / "call")
    try:
        assert run.run() == exported
    except ReplayError as error:
        raise AssertionError(f"{error}\n{run.log.read_text(encoding='utf-8')[-3000:]}") from None

    lcp = [command.args[:2] for command in run.commands if command.args[0] == "lcp"]
    assert lcp == [("lcp", stage) for stage in ("fetch", "data", "features", "train", "monitor")]
    # lcp monitor exited with 3, which the function accepts: its report is the result.
    (monitor,) = [
        ran for ran in run.ran.values() if ran.step.args["args"][:2] == ["lcp", "monitor"]
    ]
    assert monitor.exit_code == 3
    assert sorted(path.name for path in exported.iterdir()) == ["drift.json", "report.html"]
    drift = json.loads((exported / "drift.json").read_text(encoding="utf-8"))
    assert drift["status"] == "alert" and "n_visits" in drift["alerts"], drift["alerts"]
    assert drift["rows"] > 1000 and drift["batch"].endswith("/leads.csv")
    # It read the batch under its own name, in the read-only folder the query mounts.
    assert run.commands[-1].args[2:4] == ("--input", "/batch/leads.csv")


def test_monitor_fails_the_call_on_a_batch_with_no_rows(tmp_path: Path) -> None:
    batch = write_signup_leads(tmp_path / "leads.csv", visits_factor=1.0, rows=False)
    run, exported = replay_monitor(batch, tmp_path / "call")
    with pytest.raises(
        ReplayError, match=r"`lcp monitor` exited with 2: error: .*/leads.csv: .*no data rows$"
    ):
        run.run()
    assert not exported.exists()
