"""The GitHub workflow, run here job by job as GitHub runs it, with stand-ins where it must.

The jobs of ``.github/workflows/ci.yml`` run one after another in ``needs`` order, each in its
own folder (``work/`` is ``GITHUB_WORKSPACE``, ``temp/`` is ``RUNNER_TEMP``), on a fresh clone
of the project: the commit checked out here with the working tree's uncommitted changes
(modified, new and deleted files that git does not ignore) committed on top, so that what is
about to be committed is what runs.

What stands in for what:

==============================  ===============================================================
in the workflow                 here
==============================  ===============================================================
``run:`` step                   its script, ``${{ }}`` substituted, in a file run by
                                ``bash -e FILE`` (no ``shell:``) or ``bash --noprofile --norc
                                -eo pipefail FILE`` (``shell: bash``), in the workspace or
                                ``working-directory:``. Env: this machine's less what the
                                project, this test's venv, make and pytest set; then ``CI``,
                                ``GITHUB_*``, ``RUNNER_*``; what earlier steps wrote to
                                ``GITHUB_ENV``; the workflow's, job's and step's ``env:``.
                                ``GITHUB_PATH`` entries go first on ``PATH``, newest first;
                                ``GITHUB_OUTPUT`` feeds ``steps.ID.outputs``.
``run: make lint``,             ``make --dry-run ...``: the target and its prerequisites
``run: make test-lane ...``     resolve, and their commands are printed, not run. ``.ci/run``
                                runs ``make lint`` on a fresh clone of the same files, this
                                suite is the lanes, and it does not run a check twice.
``strategy: matrix:``           one list: the job runs once per value, one after another,
                                ``${{ matrix.KEY }}`` substituted. The first value's run
                                runs every step in its own folder; each later value's runs
                                the steps that read ``matrix.`` in that folder, after what
                                the others did there: they would do the same again.
``${{ }}``                      ``runner.temp``, ``runner.os``, ``github.workspace``,
                                ``github.sha``, ``github.ref``, ``github.repository``,
                                ``github.workflow``, ``github.event_name``, ``secrets.NAME``
                                (empty: there are no secrets here), ``vars.NAME`` (the run's
                                ``variables``, none by default), ``steps.ID.outputs.NAME``.
                                Any other expression, and ``if:``, fail the test.
``actions/checkout``            ``git clone`` of that clone into the workspace (or ``path:``).
                                ``repository:`` the course validator's: a folder laid out like
                                its repository, with ``test/dataset/X_test.csv`` and
                                ``y_test.csv`` from ``../shared/validator``. Any other
                                repository fails the test.
``astral-sh/setup-uv``           this machine's uv (on PATH: the project's .venv has it) first on
                                ``PATH``, when it is the version of ``version-file:``'s uv.lock
                                (relative to ``working-directory:``); ``enable-cache:`` must be
                                true, and uv's cache is this machine's.
``actions/setup-python``        a venv (with pip) of the interpreter running this test, its
                                ``bin`` first on ``PATH``: Python 3.11, which also stands in
                                for ``python-version: "3.12"`` (the validator's; the tests do
                                not require a 3.12). ``cache:`` is ignored.
``actions/upload-artifact``     a folder per artifact name: a file ``path:`` lands at its
                                root, a folder's contents do. ``if-no-files-found: error``
                                fails on a missing path; a name uploaded twice fails (v4 on).
``actions/download-artifact``   the named artifact's folder copied to ``path:``.
``dagger/dagger-for-github``     ``verb: call`` with ``args:`` replayed from ``workdir:`` by
                                ``tests/integration/test_dagger_replay.py``: the commands of
                                the module as this test imported it (the clone's files), no
                                engine. ``version:`` must be dagger.json's
                                engine. As each job starts its own engine, each job has its own
                                cache: a call whose commands and inputs equal an earlier
                                call's reuses its results.
the course validator            its composite action's steps: its repository laid out in the
                                workspace, the artifact ``model`` downloaded to ``model/``,
                                Python 3.12 (the job's, as above), ``pip install scikit-learn
                                pandas joblib`` (unpinned, as the action does; the job's
                                ``PIP_CONSTRAINT`` applies), then its check:
                                ``model/model.pkl`` loaded with joblib must predict
                                ``[0, 1, 0, 1, 0]`` for the first five rows of ``X_test.csv``.
the raw data's upstream URL     a loopback HTTP server (``tests.support.UpstreamServer``)
                                serving ``../shared/data/raw_data.csv``, counting the GETs.
                                The clone's ``data/raw/raw_data.csv.dvc`` imports from it: the
                                one edit made to the clone, committed there. No DVC remote is
                                configured unless a step configures one.
==============================  ===============================================================

Each test job installs, fetches the data and lays out the shared folder its lanes read, which
the test then checks; its ``make test-lane`` is a dry run (running it would run the suite again,
which runs here). The Dagger job of the same run trains on the real data, and the version it
registers must record the run's commit. A failing step fails the test with the job, the step,
its exit code and the last lines of its output; each job's time here is printed beside its
timeout.
"""

from __future__ import annotations

import contextlib
import filecmp
import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

import pytest
import yaml

from lead_conversion_prediction.config import PROJ_ROOT
from tests.integration.test_dagger_replay import DaggerCall, Done, Replay, ReplayError, build
from tests.support import (
    GIT_IDENTITY,
    RAW_MD5,
    UpstreamServer,
    md5_of,
    point_pin_at,
    shared_file,
)

pytestmark = pytest.mark.long(seconds=130)

WORKFLOW = PROJ_ROOT / ".github" / "workflows" / "ci.yml"
VALIDATOR = "lasselundstenjensen/itu-sdse-project-model-validator"
REPOSITORY = "lead-conversion/lead-conversion-prediction"
# The validator's packages, pinned to the lock's versions before its own install.
VALIDATOR_PACKAGES = ("scikit-learn", "pandas", "numpy", "joblib", "xgboost-cpu")
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
# What this machine's environment must not pass to the jobs: the project's own settings, the
# environment running this test (its venv, its make, its pytest), and GitHub's variables.
NOT_PASSED = re.compile(
    r"(LCP_|MLFLOW_|DVC_|PYTEST_|GITHUB_|RUNNER_|PYTHON|VIRTUAL_ENV|MAKE|MFLAGS)"
)
TAIL_LINES = 40

# The course validator's check (SPEC: its external contract), in its repository's layout.
VALIDATOR_CHECK = """\
import joblib
import numpy as np
import pandas as pd

with open("model/model.pkl", "rb") as stream:
    model = joblib.load(stream)
features = pd.read_csv("test/dataset/X_test.csv")
labels = pd.read_csv("test/dataset/y_test.csv")
predicted = model.predict(features.head(5))
actual = labels.head(5).to_numpy().ravel()
print("predicted:", predicted, "actual:", actual)
expected = np.array([0.0, 1.0, 0.0, 1.0, 0.0])
if not np.array_equal(predicted, expected):
    raise SystemExit("the first five predictions are not [0, 1, 0, 1, 0]")
if not np.array_equal(actual, expected):
    raise SystemExit("the first five labels are not [0, 1, 0, 1, 0]")
print("the model passes the validator's check")
"""


class StepError(AssertionError):
    """A step of the workflow failed: names the job, the step and the end of its output."""

    def __init__(self, job: str, step: str, reason: str, log: Path | None = None) -> None:
        tail = ""
        if log is not None and log.is_file():
            lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
            tail = "\n".join(lines[-TAIL_LINES:])
        super().__init__(f"job '{job}', step '{step}': {reason}\n{tail}".rstrip())


def machine_env() -> dict[str, str]:
    """This machine's environment as a runner's: nothing of the test's venv, make or pytest."""
    tools = {str(Path(sys.executable).parent)}
    if venv := os.environ.get("VIRTUAL_ENV"):
        tools.add(str(Path(venv) / "bin"))
    env = {
        name: value
        for name, value in os.environ.items()
        if not NOT_PASSED.match(name) and name not in ("CI", "_")
    }
    env["PATH"] = os.pathsep.join(
        entry for entry in os.environ["PATH"].split(os.pathsep) if entry and entry not in tools
    )
    return env


def run_git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **GIT_IDENTITY},
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def clone_with_changes(origin: Path, upstream_url: str) -> Path:
    """A clone of the checkout's HEAD, its uncommitted changes committed, the pin edited."""
    head = run_git("rev-parse", "HEAD", cwd=PROJ_ROOT).strip()
    subprocess.run(
        ["git", "clone", "-q", "--no-checkout", str(PROJ_ROOT), str(origin)], check=True
    )
    run_git("checkout", "-q", "-B", "main", head, cwd=origin)
    changed = run_git("ls-files", "--modified", "--others", "--exclude-standard", cwd=PROJ_ROOT)
    for name in dict.fromkeys(changed.splitlines()):
        source, target = PROJ_ROOT / name, origin / name
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        elif target.is_file():
            target.unlink()
    run_git("add", "-A", cwd=origin)
    if run_git("status", "--porcelain", cwd=origin):
        run_git("commit", "-qm", "Uncommitted changes of the checkout", cwd=origin)
    point_pin_at(origin, upstream_url)
    return origin


@dataclass
class StepDone:
    """A step that ran: its job, name and spec, how long it took, its GETs of the upstream."""

    job: str
    name: str
    spec: Mapping[str, Any]
    seconds: float
    upstream_gets: int = 0
    reused: bool = False  # a later matrix value's step that reads no `matrix.`: not run again


@dataclass
class Job:
    """A job's runner: its folders, and what its steps handed on to the later ones."""

    id: str
    spec: dict[str, Any]
    root: Path
    deadline: float
    env: dict[str, str] = field(default_factory=dict)  # from GITHUB_ENV
    path: list[str] = field(default_factory=list)  # from GITHUB_PATH, newest first
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    pythons: dict[str, Path] = field(default_factory=dict)
    dagger_cache: list[Done] = field(default_factory=list)
    steps_run: int = 0
    matrix: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    @property
    def workspace(self) -> Path:
        return self.root / "work"

    @property
    def temp(self) -> Path:
        return self.root / "temp"

    @property
    def name(self) -> str:
        name = str(self.spec.get("name", self.id))
        for key, value in self.matrix.items():
            name = re.sub(rf"\$\{{\{{\s*matrix\.{key}\s*\}}\}}", value, name)
        return name


@dataclass
class WorkflowRun:
    """Runs a workflow's jobs here; see the module's docstring for what stands in for what."""

    workflow: dict[str, Any]
    base: Path
    origin: Path
    env: dict[str, str]
    upstream: UpstreamServer | None = None
    variables: dict[str, str] = field(default_factory=dict)  # the repository's `vars`
    steps_done: list[StepDone] = field(default_factory=list)
    # Each job run's name, wall time here and timeout, in the order they ran.
    job_times: list[tuple[str, float, float]] = field(default_factory=list)
    # What the validator's Python held once its check ran, by lower-case name.
    validator_packages: dict[str, str] = field(default_factory=dict)

    @property
    def artifacts(self) -> Path:
        return self.base / "artifacts"

    @cached_property
    def sha(self) -> str:
        return run_git("rev-parse", "HEAD", cwd=self.origin).strip()

    def run(self) -> None:
        jobs: dict[str, dict[str, Any]] = self.workflow["jobs"]
        graph = {job_id: set(self._list(spec.get("needs", []))) for job_id, spec in jobs.items()}
        for job_id in TopologicalSorter(graph).static_order():
            first, *others = self.matrix(job_id, jobs[job_id])
            ran = self.run_job(job_id, jobs[job_id], first)
            for index, matrix in enumerate(others, start=1):
                self.run_job(job_id, jobs[job_id], matrix, index, like=ran)

    @staticmethod
    def matrix(job_id: str, spec: dict[str, Any]) -> list[dict[str, str]]:
        """The job's matrix, one combination per run of it (one key's list, as GitHub expands
        it); a job without one runs once."""
        strategy = spec.get("strategy") or {}
        if not strategy:
            return [{}]
        if set(strategy) - {"matrix", "fail-fast"} or len(strategy["matrix"]) != 1:
            raise StepError(job_id, "(job)", "the stand-in expands a matrix of one list only")
        ((key, values),) = strategy["matrix"].items()
        return [{key: str(value)} for value in values]

    def run_job(
        self,
        job_id: str,
        spec: dict[str, Any],
        matrix: dict[str, str],
        index: int = 0,
        like: Job | None = None,
    ) -> Job:
        unknown = set(spec) - {"name", "runs-on", "needs", "timeout-minutes", "steps", "env"}
        unknown -= {"defaults", "permissions", "strategy"}
        if unknown:
            raise StepError(job_id, "(job)", f"the stand-in runner cannot run {sorted(unknown)}")
        minutes = float(spec.get("timeout-minutes", 360))
        folder = self.base / "jobs" / (f"{job_id}-{index}" if matrix else job_id)
        job = Job(job_id, spec, folder, time.monotonic() + minutes * 60, matrix=matrix)
        if like is None:
            job.workspace.mkdir(parents=True)
            job.temp.mkdir()
        else:  # the first value's folder and what its steps handed on
            job.root, job.env, job.path = like.root, dict(like.env), list(like.path)
            job.outputs, job.pythons = dict(like.outputs), dict(like.pythons)
        for index, step in enumerate(spec["steps"]):
            label = str(step.get("name") or step.get("uses") or f"step {index + 1}")
            started, requests = time.monotonic(), self.requests()
            if "if" in step or "continue-on-error" in step:
                raise StepError(job.name, label, "the stand-in runner evaluates no if:")
            if like is not None and "matrix." not in json.dumps(step):
                self.steps_done.append(StepDone(job.id, label, step, 0.0, reused=True))
                continue
            if "uses" in step:
                self.use(job, label, step)
            else:
                self.run_step(job, label, step)
            done = StepDone(job.id, label, step, time.monotonic() - started)
            self.steps_done.append(done)
            done.upstream_gets = self.requests() - requests
        self.job_times.append((job.name, time.monotonic() - job.started, minutes))
        return job

    def requests(self) -> int:
        return len(self.upstream.gets) if self.upstream else 0

    # ---- run: steps

    def substitute(self, job: Job, label: str, text: str) -> str:
        """The text with its ``${{ }}`` expressions evaluated; an unknown one fails."""

        def value(match: re.Match[str]) -> str:
            expression = match.group(1)
            known = {
                "runner.temp": str(job.temp),
                "runner.os": "Linux",
                "github.workspace": str(job.workspace),
                "github.sha": self.sha,
                "github.ref": "refs/heads/main",
                "github.repository": REPOSITORY,
                "github.workflow": str(self.workflow.get("name", "")),
                "github.event_name": "push",
            }
            if expression in known:
                return known[expression]
            if re.fullmatch(r"secrets\.\w+", expression):
                return ""
            if (found := re.fullmatch(r"matrix\.([\w-]+)", expression)) and found[1] in job.matrix:
                return job.matrix[found[1]]
            if found := re.fullmatch(r"vars\.(\w+)", expression):
                return self.variables.get(found[1], "")
            if found := re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expression):
                return job.outputs.get(found[1], {}).get(found[2], "")
            raise StepError(
                job.name, label, f"the stand-in cannot evaluate ${{{{ {expression} }}}}"
            )

        return EXPRESSION.sub(value, text)

    def step_env(self, job: Job, label: str, step: Mapping[str, Any]) -> dict[str, str]:
        """The environment GitHub gives a step, in its order of precedence."""
        github = {
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(job.workspace),
            "GITHUB_JOB": job.id,
            "GITHUB_SHA": self.sha,
            "GITHUB_REF": "refs/heads/main",
            "GITHUB_REPOSITORY": REPOSITORY,
            "GITHUB_WORKFLOW": str(self.workflow.get("name", "")),
            "GITHUB_EVENT_NAME": "push",
            "GITHUB_RUN_ID": "1",
            "RUNNER_OS": "Linux",
            "RUNNER_ARCH": "X64",
            "RUNNER_TEMP": str(job.temp),
        }
        env = {**self.env, **github, **job.env}
        for level in (self.workflow, job.spec, step):
            for name, raw in (level.get("env") or {}).items():
                env[str(name)] = self.substitute(job, label, str(raw))
        env["PATH"] = os.pathsep.join([*job.path, env["PATH"]])
        return env

    def run_step(self, job: Job, label: str, step: Mapping[str, Any]) -> None:
        defaults = {
            **(self.workflow.get("defaults") or {}).get("run", {}),
            **(job.spec.get("defaults") or {}).get("run", {}),
        }
        shell = step.get("shell", defaults.get("shell"))
        folder = step.get("working-directory", defaults.get("working-directory", "."))
        script = str(step["run"])
        if re.fullmatch(r"make (lint|test-lane) ?.*", script.strip()):
            # .ci/run lints the same files, and this suite runs the lanes (the table above).
            script = script.strip().replace("make ", "make --dry-run ", 1)
        self.shell(job, label, step, script, shell, job.workspace / folder)

    def shell(
        self,
        job: Job,
        label: str,
        step: Mapping[str, Any],
        script: str,
        shell: str | None,
        cwd: Path,
    ) -> None:
        """Run a script as GitHub runs a ``run:`` step with that ``shell:``."""
        job.steps_run += 1
        number = job.steps_run
        files = {
            name: job.temp / f"_{name.lower()}_{number}" for name in ("ENV", "PATH", "OUTPUT")
        }
        for path in files.values():
            path.touch()
        script_file = job.temp / f"_step_{number}"
        script_file.write_text(self.substitute(job, label, script), encoding="utf-8")
        commands = {
            None: ["bash", "-e", str(script_file)],
            "bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script_file)],
            "python": ["python", str(script_file)],
        }
        if shell not in commands:
            raise StepError(job.name, label, f"the stand-in runner has no shell {shell!r}")
        env = {
            **self.step_env(job, label, step),
            **{f"GITHUB_{name}": str(path) for name, path in files.items()},
            "GITHUB_STEP_SUMMARY": str(job.temp / f"_summary_{number}"),
        }
        log = self.base / "logs" / f"{job.id}-{number:02d}.log"
        log.parent.mkdir(exist_ok=True)
        self.execute(job, label, commands[shell], cwd, env, log)
        self.hand_on(job, step, files)

    def execute(
        self, job: Job, label: str, command: list[str], cwd: Path, env: dict[str, str], log: Path
    ) -> None:
        """Run a command within the job's time limit; its whole process group dies with it."""
        if shutil.which(command[0], path=env["PATH"]) is None:
            raise StepError(job.name, label, f"{command[0]} is not on the step's PATH")
        with log.open("a", encoding="utf-8") as stream:
            process = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdout=stream,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                code = process.wait(timeout=max(job.deadline - time.monotonic(), 1))
            except subprocess.TimeoutExpired:
                code = None
            finally:
                if process.poll() is None or code is None:
                    os.killpg(process.pid, 9)
                    process.wait()
        if code is None:
            raise StepError(job.name, label, "the job's timeout-minutes ran out", log)
        if code != 0:
            raise StepError(job.name, label, f"exited with {code}", log)

    def hand_on(self, job: Job, step: Mapping[str, Any], files: Mapping[str, Path]) -> None:
        """Read what the step wrote to GITHUB_ENV, GITHUB_PATH and GITHUB_OUTPUT."""
        for name, value in self.assignments(files["ENV"]).items():
            if not name.startswith(("GITHUB_", "RUNNER_")):  # GitHub keeps its own
                job.env[name] = value
        added = [line for line in files["PATH"].read_text(encoding="utf-8").splitlines() if line]
        job.path[:0] = reversed(added)
        if "id" in step:
            job.outputs[str(step["id"])] = self.assignments(files["OUTPUT"])

    @staticmethod
    def assignments(path: Path) -> dict[str, str]:
        """``NAME=value`` lines and ``NAME<<DELIMITER`` blocks, as GitHub reads these files."""
        lines = iter(path.read_text(encoding="utf-8").splitlines())
        found: dict[str, str] = {}
        for line in lines:
            if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
                name, delimiter = line.split("<<", 1)
                block: list[str] = []
                for inner in lines:
                    if inner == delimiter:
                        break
                    block.append(inner)
                found[name] = "\n".join(block)
            elif "=" in line:
                name, value = line.split("=", 1)
                found[name] = value
        return found

    # ---- uses: steps

    def use(self, job: Job, label: str, step: Mapping[str, Any]) -> None:
        action, _, ref = str(step["uses"]).partition("@")
        if not re.fullmatch(r"[0-9a-f]{40}", ref):
            raise StepError(job.name, label, f"{action} is not pinned by commit")
        inputs = {
            str(name): self.substitute(job, label, str(value))
            for name, value in (step.get("with") or {}).items()
        }
        stand_ins = {
            "actions/checkout": self.checkout,
            "actions/setup-python": self.setup_python,
            "astral-sh/setup-uv": self.setup_uv,
            "actions/upload-artifact": self.upload_artifact,
            "actions/download-artifact": self.download_artifact,
            "dagger/dagger-for-github": self.dagger,
            VALIDATOR: self.validator,
        }
        if action not in stand_ins:
            raise StepError(job.name, label, f"no stand-in for the action {action}")
        log = self.base / "logs" / f"{job.id}-{label.replace('/', '_')}.log"
        log.parent.mkdir(exist_ok=True)
        log.touch()
        try:
            stand_ins[action](job, label, step, inputs, log)
        except ReplayError as error:
            raise StepError(job.name, label, str(error), log) from None

    def checkout(
        self, job: Job, label: str, step: Mapping[str, Any], inputs: dict[str, str], log: Path
    ) -> None:
        target = job.workspace / inputs.get("path", ".")
        repository = inputs.get("repository", REPOSITORY)
        if repository == REPOSITORY:
            if target.exists() and any(target.iterdir()):
                shutil.rmtree(target)  # checkout cleans its folder first
            result = subprocess.run(
                ["git", "clone", "-q", str(self.origin), str(target)],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise StepError(job.name, label, f"git clone failed: {result.stderr}")
        elif repository == VALIDATOR:
            self.lay_out_validator(target)
        else:
            raise StepError(job.name, label, f"no stand-in for the repository {repository}")

    @staticmethod
    def lay_out_validator(target: Path) -> None:
        """The files of the validator's repository that its check reads, where it has them."""
        dataset = target / "test" / "dataset"
        dataset.mkdir(parents=True, exist_ok=True)
        for name in ("X_test.csv", "y_test.csv"):
            shutil.copy2(shared_file("validator", name), dataset / name)

    def setup_python(
        self, job: Job, label: str, step: Mapping[str, Any], inputs: dict[str, str], log: Path
    ) -> None:
        version = inputs.get("python-version", "")
        if version not in ("3.11", "3.12"):
            raise StepError(job.name, label, f"no stand-in for Python {version!r}")
        if sys.version_info[:2] != (3, 11):
            raise StepError(job.name, label, "the stand-in needs the tests to run on 3.11")
        if version not in job.pythons:
            home = job.temp / f"python-{version}"
            base = getattr(sys, "_base_executable", sys.executable)
            self.execute(job, label, [base, "-m", "venv", str(home)], job.temp, self.env, log)
            job.pythons[version] = home
        home = job.pythons[version]
        job.path.insert(0, str(home / "bin"))
        job.env["pythonLocation"] = str(home)

    def setup_uv(
        self, job: Job, label: str, step: Mapping[str, Any], inputs: dict[str, str], log: Path
    ) -> None:
        """The uv on this machine's PATH (the project's .venv has it), first on the job's PATH,
        when it is the version ``version-file`` (a uv.lock) pins; uv's cache is this machine's."""
        folder = job.workspace / inputs.get("working-directory", ".")
        lock = folder / inputs.get("version-file", "")
        if lock.name != "uv.lock" or not lock.is_file():
            raise StepError(job.name, label, "the stand-in reads uv's version from a uv.lock")
        pinned = [
            package["version"]
            for package in tomllib.loads(lock.read_text(encoding="utf-8"))["package"]
            if package["name"] == "uv"
        ]
        found = shutil.which("uv")
        if found is None or not pinned:
            raise StepError(job.name, label, "no uv on this machine's PATH, or none in the lock")
        shown = subprocess.run([found, "--version"], capture_output=True, text=True, check=True)
        if shown.stdout.split()[1] != pinned[0]:
            raise StepError(job.name, label, f"{found} is not uv {pinned[0]}: {shown.stdout}")
        if inputs.get("enable-cache", "").lower() != "true":
            raise StepError(job.name, label, "the workflow caches uv's cache (enable-cache)")
        tools = job.temp / "setup-uv"
        tools.mkdir(exist_ok=True)
        (tools / "uv").unlink(missing_ok=True)
        (tools / "uv").symlink_to(found)
        job.path.insert(0, str(tools))

    def upload_artifact(
        self, job: Job, label: str, step: Mapping[str, Any], inputs: dict[str, str], log: Path
    ) -> None:
        name = inputs.get("name", "artifact")
        paths = [line.strip() for line in inputs["path"].splitlines() if line.strip()]
        if len(paths) != 1 or any(char in paths[0] for char in "*?[!"):
            raise StepError(job.name, label, "the stand-in uploads one plain path")
        source = job.workspace / paths[0]
        target = self.artifacts / name
        if target.exists():
            raise StepError(job.name, label, f"an artifact named {name!r} already exists")
        if not source.exists():
            if inputs.get("if-no-files-found", "warn") == "error":
                raise StepError(job.name, label, f"no files were found at {paths[0]}")
            return
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            target.mkdir(parents=True)
            shutil.copy2(source, target / source.name)

    def download_artifact(
        self, job: Job, label: str, step: Mapping[str, Any], inputs: dict[str, str], log: Path
    ) -> None:
        source = self.artifacts / inputs["name"]
        if not source.is_dir():
            raise StepError(job.name, label, f"no artifact named {inputs['name']!r}")
        shutil.copytree(source, job.workspace / inputs.get("path", "."), dirs_exist_ok=True)

    def dagger(
        self, job: Job, label: str, step: Mapping[str, Any], inputs: dict[str, str], log: Path
    ) -> None:
        engine = (PROJ_ROOT / "dagger.json").read_text(encoding="utf-8")
        version = inputs.get("version", "latest")
        if f'"engineVersion": "v{version.removeprefix("v")}"' not in engine:
            raise StepError(job.name, label, f"Dagger {version} is not dagger.json's engine")
        if inputs.get("verb", "call") != "call" or inputs.get("module"):
            raise StepError(job.name, label, "the stand-in replays `dagger call` of ./dagger.json")
        workdir = job.workspace / inputs.get("workdir", ".")
        call = DaggerCall.parse(shlex.split(inputs.get("args", "")))
        scratch = job.temp / f"dagger-{len(job.dagger_cache)}"
        # The containers get this machine's environment only; the secrets that `env:NAME`
        # names come from the step's, as the CLI reads them.
        secrets = self.step_env(job, label, step)
        Replay(call, workdir, scratch, self.env, log, secrets, job.dagger_cache).run()

    def validator(
        self, job: Job, label: str, step: Mapping[str, Any], inputs: dict[str, str], log: Path
    ) -> None:
        self.lay_out_validator(job.workspace)
        self.download_artifact(job, label, step, {"name": "model", "path": "model"}, log)
        self.setup_python(job, label, step, {"python-version": "3.12"}, log)
        self.shell(
            job,
            f"{label}: install",
            {},
            "pip install scikit-learn pandas joblib\n",
            "bash",
            job.workspace,
        )
        self.shell(job, f"{label}: check", {}, VALIDATOR_CHECK, "python", job.workspace)
        python = job.pythons["3.12"] / "bin" / "python"
        frozen = subprocess.run(
            [str(python), "-m", "pip", "freeze"], capture_output=True, text=True, check=True
        )
        self.validator_packages = dict(
            line.lower().split("==", 1) for line in frozen.stdout.splitlines() if "==" in line
        )

    @staticmethod
    def _list(value: str | list[str]) -> list[str]:
        return [value] if isinstance(value, str) else list(value)


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamServer]:
    server = UpstreamServer()
    server.serve(shared_file("data", "raw_data.csv"))
    yield server
    server.close()


def test_the_workflow_runs_job_by_job_on_a_fresh_clone(
    tmp_path: Path, upstream: UpstreamServer
) -> None:
    origin = clone_with_changes(tmp_path / "origin", upstream.url)
    env = machine_env()
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    run = WorkflowRun(workflow, tmp_path, origin, env, upstream)
    started = time.monotonic()
    try:
        run.run()
    except StepError as error:
        pytest.fail(str(error), pytrace=False)
    finally:
        for done in run.steps_done:
            print(f"{done.seconds:7.1f} s {done.upstream_gets:3d} GET  {done.job}: {done.name}")
        for name, seconds, minutes in run.job_times:
            print(f"{seconds:7.1f} s of {minutes * 60:6.0f} s (timeout)  job {name}")
        print(f"{time.monotonic() - started:7.1f} s {len(upstream.gets):3d} GET  in all")

    artifacts = run.artifacts
    names = ["docs-site", "model", "model-bundle", "report"]
    assert sorted(path.name for path in artifacts.iterdir()) == names
    assert (artifacts / "docs-site" / "index.html").is_file()
    assert [path.name for path in (artifacts / "model").iterdir()] == ["model.pkl"]
    assert (artifacts / "model-bundle" / "models.tar").is_file()
    report = artifacts / "report"
    for name in ("metrics.json", "validation.json", "model_card.md", "registry.json"):
        assert (report / name).is_file(), name
    assert list((report / "figures").glob("*.png"))
    verified = [done.job for done in run.steps_done if "lcp verify" in done.spec.get("run", "")]
    assert verified == ["validate"], "the validate job checks the bundle against its manifest"

    # The test jobs laid out the shared folder their lanes read, and each ran its lanes there.
    lanes = workflow["jobs"]["test"]["strategy"]["matrix"]["lanes"]
    shared = tmp_path / "jobs" / "test-0" / "temp" / "shared"
    assert md5_of(shared / "data" / "raw_data.csv") == RAW_MD5
    for name in ("X_test.csv", "y_test.csv"):
        assert filecmp.cmp(shared / "validator" / name, shared_file("validator", name))
    tests = [done for done in run.steps_done if done.job == "test" and not done.reused]
    assert [done.name for done in tests if "matrix." in json.dumps(done.spec)] == ["Test"] * len(
        lanes
    )
    # The raw data comes from the upstream URL once for the test jobs and once in the containers.
    fetches = [
        done for done in run.steps_done if "make data/raw/raw_data.csv" in done.spec.get("run", "")
    ]
    dagger = [done for done in run.steps_done if "dagger" in done.spec.get("uses", "")]
    assert [done.upstream_gets for done in fetches if not done.reused] == [1]
    assert len(fetches) == len(lanes)
    assert [done.upstream_gets for done in dagger] == [1]
    # The version the one call registered records the commit the workflow ran on.
    store = tmp_path / "jobs" / "train" / "temp" / "dagger-0" / "app" / "mlflow.db"
    with contextlib.closing(sqlite3.connect(store)) as database:
        tags = database.execute(
            "SELECT value FROM model_version_tags WHERE key = 'git_commit'"
        ).fetchall()
    assert tags == [(run.sha,)]
    # The validator's own unpinned install took the lock's versions of its packages.
    lock = tomllib.loads((PROJ_ROOT / "uv.lock").read_text(encoding="utf-8"))
    locked = {package["name"]: package["version"] for package in lock["package"]}
    assert {name: run.validator_packages.get(name) for name in VALIDATOR_PACKAGES} == {
        name: locked[name] for name in VALIDATOR_PACKAGES
    }


def probe_run(tmp_path: Path, jobs: dict[str, Any]) -> WorkflowRun:
    """A run of a workflow made of ``run:`` steps only, on an empty repository."""
    origin = tmp_path / "origin"
    origin.mkdir()
    run_git("init", "-q", cwd=origin)
    run_git("commit", "-q", "--allow-empty", "-m", "empty", cwd=origin)
    workflow = {
        "name": "probe",
        "jobs": {name: {"runs-on": "x", **job} for name, job in jobs.items()},
    }
    return WorkflowRun(workflow, tmp_path, origin, machine_env())


def test_steps_hand_on_env_path_and_outputs_in_needs_order(tmp_path: Path) -> None:
    give = """\
mkdir -p "$RUNNER_TEMP/tools"
printf '#!/bin/sh\\necho tool ran\\n' > "$RUNNER_TEMP/tools/probe-tool"
chmod +x "$RUNNER_TEMP/tools/probe-tool"
echo "$RUNNER_TEMP/tools" >> "$GITHUB_PATH"
echo "FROM_ENV=set" >> "$GITHUB_ENV"
printf 'NOTE<<END\\ntwo\\nlines\\nEND\\n' >> "$GITHUB_ENV"
echo "answer=42" >> "$GITHUB_OUTPUT"
"""
    read = """\
test "$(probe-tool)" = "tool ran"
test "$FROM_ENV" = set && test "$NOTE" = "two
lines"
test "$SEEN_TEMP" = "$RUNNER_TEMP" && test "$ANSWER" = 42 && test -z "$TOKEN"
test "$CI" = true && test "$LEVEL" = step && test "$JOB_ONLY" = job
test "$PWD" = "$GITHUB_WORKSPACE" && test -z "${LCP_ROOT:-}${VIRTUAL_ENV:-}"
"""
    run = probe_run(
        tmp_path,
        {
            "second": {"needs": ["first"], "steps": [{"name": "later", "run": "true"}]},
            "first": {
                "env": {"LEVEL": "job", "JOB_ONLY": "job"},
                "steps": [
                    {"name": "give", "id": "give", "run": give},
                    {
                        "name": "read",
                        "env": {
                            "LEVEL": "step",
                            "SEEN_TEMP": "${{ runner.temp }}",
                            "ANSWER": "${{ steps.give.outputs.answer }}",
                            "TOKEN": "${{ secrets.TOKEN }}",
                        },
                        "run": read,
                    },
                ],
            },
        },
    )
    try:
        run.run()
    except StepError as error:
        pytest.fail(str(error), pytrace=False)
    assert [(done.job, done.name) for done in run.steps_done] == [
        ("first", "give"),
        ("first", "read"),
        ("second", "later"),
    ]


def test_a_failing_step_names_its_job_and_step_and_shows_its_output(tmp_path: Path) -> None:
    script = "echo the last words\nfalse | cat\necho not reached\n"
    run = probe_run(
        tmp_path,
        {
            "build": {
                "name": "Build it",
                "steps": [
                    # GitHub's default `bash -e` has no pipefail: a failing pipe goes on.
                    {"name": "tolerated", "run": script},
                    {"name": "breaks", "shell": "bash", "run": script},
                ],
            }
        },
    )
    with pytest.raises(StepError) as failure:
        run.run()
    message = str(failure.value)
    assert message.startswith("job 'Build it', step 'breaks': exited with 1")
    assert message.endswith("the last words")


def test_an_expression_the_runner_cannot_evaluate_fails_loudly(tmp_path: Path) -> None:
    run = probe_run(
        tmp_path, {"job": {"steps": [{"name": "who", "run": "echo ${{ github.actor }}"}]}}
    )
    with pytest.raises(StepError, match=r"step 'who': .*github\.actor"):
        run.run()


def registry_calls(tmp_path: Path, variables: dict[str, str]) -> tuple[list[DaggerCall], str]:
    """The train job's Dagger calls as the workflow's registry step makes them with the
    repository's ``variables``: that step, then the calls' ``args:`` as GitHub expands them; and
    the commit the run is on."""
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    train = workflow["jobs"]["train"]["steps"]
    (choose,) = [step for step in train if step.get("id") == "registry"]
    calls = [step for step in train if step.get("uses", "").startswith("dagger/")]
    shown = tmp_path / "args"
    show = "\n".join(f"echo '{call['with']['args']}' >> '{shown}'" for call in calls)
    run = probe_run(tmp_path, {"train": {"steps": [choose, {"name": "show", "run": show}]}})
    run.variables = variables
    try:
        run.run()
    except StepError as error:
        pytest.fail(str(error), pytrace=False)
    lines = shown.read_text(encoding="utf-8").splitlines()
    return [DaggerCall.parse(shlex.split(line)) for line in lines], run.sha


def test_without_the_repositorys_registry_the_call_keeps_its_own_store(tmp_path: Path) -> None:
    calls, sha = registry_calls(tmp_path, {})
    assert [(call.function, call.arguments) for call in calls] == [
        ("release", {"source": ".", "commit": sha}),
    ]


def test_the_repositorys_registry_reaches_the_call_with_the_password_as_a_secret(
    tmp_path: Path,
) -> None:
    uri = "https://mlflow.example.internal:5000"
    variables = {"MLFLOW_TRACKING_URI": uri, "MLFLOW_TRACKING_USERNAME": "ci-bot"}
    calls, sha = registry_calls(tmp_path, variables)
    assert [call.function for call in calls] == ["release"]
    for call in calls:
        assert call.arguments == {
            "tracking-uri": uri,
            "tracking-username": "ci-bot",
            "tracking-password": "env:MLFLOW_TRACKING_PASSWORD",
            "source": ".",
            "commit": sha,
        }
        # The module takes these flags, with the password read from the step's environment
        # (the repository secret there) as the Dagger CLI reads it.
        exported, _ = build(call, PROJ_ROOT, {"MLFLOW_TRACKING_PASSWORD": "not-logged"})
        assert exported is not None


def test_a_registry_without_its_user_fails_the_call_in_one_line(tmp_path: Path) -> None:
    calls, _ = registry_calls(tmp_path, {"MLFLOW_TRACKING_URI": "https://mlflow.example.org"})
    (call,) = calls
    with pytest.raises(ReplayError, match=r"^release: --tracking-uri .*cannot log in [^\n]*$"):
        build(call, PROJ_ROOT, {})


def test_a_registry_variable_with_other_than_url_characters_stops_the_job(
    tmp_path: Path,
) -> None:
    with pytest.raises(pytest.fail.Exception, match="URL characters only"):
        registry_calls(tmp_path, {"MLFLOW_TRACKING_URI": "https://x.example $(touch owned)"})
    assert not (tmp_path / "owned").exists()
