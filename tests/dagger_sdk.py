"""The tests that import the Dagger SDK, run by the Dagger module's own interpreter.

The SDK (``dagger-io``) needs graphql-core>=3.3 while MLflow's UI server needs graphene 3, which
needs graphql-core<3.3, so the SDK lives in ``dagger/.venv`` and never in ``.venv``. When the
interpreter running pytest lacks the SDK, every test module that imports it (``dagger``,
``lead_pipeline``, or a test module that does) is collected and run by ``dagger/.venv``'s pytest
in a subprocess, and each of its tests is reported here under its own id, with its own outcome
and failure text. Nothing is skipped: without ``dagger/.venv`` those tests fail and name the
command that creates it. ``LCP_DAGGER_PYTHON`` names another interpreter that has the SDK.

The same module, loaded by that subprocess, writes what it collected and how each test went
to the file named by ``LCP_DAGGER_REPORT``.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from tests.support import die_with_parent

ROOT = Path(__file__).resolve().parents[1]
SDK_MODULES = frozenset({"dagger", "lead_pipeline"})
PYTHON_VARIABLE = "LCP_DAGGER_PYTHON"
REPORT_VARIABLE = "LCP_DAGGER_REPORT"
DEFAULT_PYTHON = ROOT / "dagger" / ".venv" / "bin" / "python"
# Generous bounds: the replay of the Dagger pipeline runs the whole pipeline.
COLLECT_TIMEOUT = 600
RUN_TIMEOUT = 3600


@cache
def has_sdk() -> bool:
    """Whether this interpreter can import the Dagger SDK (not the repository's folder)."""
    try:
        metadata.version("dagger-io")
    except metadata.PackageNotFoundError:
        return False
    return True


def basetemp(config: pytest.Config) -> Path:
    """The session's base temporary folder (created on first use)."""
    factory: pytest.TempPathFactory = config._tmp_path_factory  # type: ignore[attr-defined]
    return factory.getbasetemp()


def sdk_python() -> Path:
    return Path(os.environ.get(PYTHON_VARIABLE) or DEFAULT_PYTHON)


@cache
def imports_sdk(path: Path) -> bool:
    """Whether a test module imports the SDK or the module, itself or through a test module."""
    tree = ast.parse(path.read_bytes(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            if name.split(".")[0] in SDK_MODULES:
                return True
            imported = module_file(name) if name.startswith("tests.") else None
            if imported is not None and imported != path and imports_sdk(imported):
                return True
    return False


def module_file(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


# --- In the subprocess: write what was collected and how each test went. ---------------------


def _report(record: dict[str, Any]) -> None:
    if target := os.environ.get(REPORT_VARIABLE):
        with Path(target).open("a", encoding="utf-8") as stream:
            stream.write(json.dumps(record) + "\n")


def pytest_collection_finish(session: pytest.Session) -> None:
    for item in session.items:
        markers = {marker.name: marker.kwargs for marker in reversed(list(item.iter_markers()))}
        _report({"collected": item.nodeid, "markers": markers})


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    text = report.longreprtext
    if report.skipped and isinstance(report.longrepr, tuple):
        text = str(report.longrepr[2])
    _report(
        {"nodeid": report.nodeid, "when": report.when, "outcome": report.outcome, "text": text}
    )


# --- In the parent: collect and run those modules in the SDK's environment. ------------------


def run_pytest(args: list[str], report: Path, timeout: float) -> tuple[int, str, list[Any]]:
    """Run the SDK interpreter's pytest from the project root; its exit code, output, records."""
    report.unlink(missing_ok=True)
    env = {
        **os.environ,
        REPORT_VARIABLE: str(report),
        # The commands the tests run (lcp, dvc) come from the environment running this session.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    command = [str(sdk_python()), "-m", "pytest", "-p", "no:cacheprovider", *args]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except BaseException:  # a timeout or an interrupt: stop the whole group, then re-raise
        _stop(process)
        raise
    records = []
    if report.is_file():
        records = [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines()]
    return process.returncode, output, records


def _stop(process: subprocess.Popen[str]) -> None:
    for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 30)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
            return


class SdkTestError(Exception):
    """A test that failed in the SDK's environment, with the text pytest gave there."""


@dataclass
class SdkRun:
    """One run of a module's selected SDK tests, made when the first of them runs (pytest-xdist
    runs a module's tests on one worker: ``--dist loadfile``)."""

    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    output: str = ""
    done: bool = False

    def results(self, item: SdkItem) -> list[dict[str, Any]]:
        if not self.done:
            self.done = True
            selected = [
                each.nodeid
                for each in item.session.items
                if isinstance(each, SdkItem) and each.path == item.path
            ]
            base = basetemp(item.config) / f"dagger-sdk-run-{item.path.stem}"
            _, self.output, records = run_pytest(
                ["--basetemp", str(base), *selected], base.with_suffix(".jsonl"), RUN_TIMEOUT
            )
            for record in records:
                if "nodeid" in record:
                    self.records.setdefault(record["nodeid"], []).append(record)
        return self.records.get(item.nodeid, [])


RUNS_KEY = pytest.StashKey[dict[Path, SdkRun]]()


class SdkReported(pytest.Item):
    """An item whose failure is text written in the SDK's environment (no local traceback)."""

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> Any:
        if isinstance(excinfo.value, SdkTestError):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, self.name


class SdkItem(SdkReported):
    """A test of a module that imports the SDK, run in the SDK's environment."""

    def runtest(self) -> None:
        run = self.config.stash.setdefault(RUNS_KEY, {}).setdefault(self.path, SdkRun())
        records = run.results(self)
        failed = [record for record in records if record["outcome"] == "failed"]
        if failed:
            where = sdk_python()
            raise SdkTestError(
                "\n".join(f"[{record['when']}, in {where}]\n{record['text']}" for record in failed)
            )
        skipped = [record for record in records if record["outcome"] == "skipped"]
        if skipped:
            pytest.skip(skipped[0]["text"])
        if not any(record["when"] == "call" for record in records):
            raise SdkTestError(
                f"{sdk_python()} reported no result for this test:\n{run.output[-4000:]}"
            )


class BrokenSdkModule(SdkReported):
    """Stands for a module that could not be collected in the SDK's environment."""

    def __init__(self, *, message: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.message = message

    def runtest(self) -> None:
        raise SdkTestError(self.message)


class SdkModule(pytest.File):
    """A test module that imports the SDK, collected by the SDK's interpreter."""

    def collect(self) -> Iterator[pytest.Item]:
        python = sdk_python()
        if not python.is_file():
            yield BrokenSdkModule.from_parent(
                self,
                name="dagger-sdk-environment",
                message=(
                    f"{python} is missing: this module imports the Dagger SDK, which has its own "
                    "environment. `make dagger-env` creates it (`make test` does), or set "
                    f"{PYTHON_VARIABLE} to an interpreter with the SDK."
                ),
            )
            return
        base = basetemp(self.config)
        name = self.path.stem
        relative = str(self.path.relative_to(ROOT))
        code, output, records = run_pytest(
            ["--collect-only", "-q", "--basetemp", str(base / f"dagger-sdk-{name}"), relative],
            base / f"dagger-sdk-{name}.jsonl",
            COLLECT_TIMEOUT,
        )
        collected = [record for record in records if "collected" in record]
        if code != 0 or not collected:
            yield BrokenSdkModule.from_parent(
                self,
                name="dagger-sdk-collection",
                message=f"{python} could not collect {relative} (exit {code}):\n{output[-4000:]}",
            )
            return
        for record in collected:
            item = SdkItem.from_parent(self, name=record["collected"].split("::", 1)[1])
            for marker, kwargs in record["markers"].items():
                item.add_marker(getattr(pytest.mark, marker)(**kwargs))
            yield item


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> Any:
    if has_sdk() or not imports_sdk(module_path):
        return None
    return SdkModule.from_parent(parent, path=module_path)
