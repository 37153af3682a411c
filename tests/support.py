"""Helpers for the tests: tiny lead frames, project roots, and the shared real data."""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest

from lead_conversion_prediction.config import PROJ_ROOT, Params, Paths

if TYPE_CHECKING:
    from lead_conversion_prediction.monitoring.backtest import BacktestReport
    from lead_conversion_prediction.monitoring.drift import DriftReport

SHARED_DIR = Path(os.environ.get("LCP_SHARED_DIR", PROJ_ROOT.parent / "shared")).resolve()
RAW_MD5 = "05663184eaf8f324162e4d1bc14be387"  # the pinned raw data (SPEC)
# The reference's 12 model columns, in order (SPEC, step 9).
REFERENCE_COLUMNS = [
    "purchases",
    "time_spent",
    "n_visits",
    *(f"customer_group_{group}" for group in range(2, 10)),
    "onboarding_True",
]
VALIDATOR_FIRST_FIVE = [0, 1, 0, 1, 0]  # the course validator's contract on its own X_test.csv


def shared_file(*parts: str) -> Path:
    """Return a file of the shared data folder, failing the test clearly if it is absent."""
    path = SHARED_DIR.joinpath(*parts)
    if not path.is_file():
        pytest.fail(
            f"{path} is missing: the tests need the shared data folder beside the project "
            "(or LCP_SHARED_DIR pointing at it)"
        )
    return path


def md5_of(path: Path) -> str:
    """Return the md5 of a file's bytes."""
    return hashlib.md5(path.read_bytes()).hexdigest()


def make_project(root: Path, raw: Path | None = None) -> Path:
    """Lay out a project root with the real params and DVC pin, the raw file linked in."""
    (root / "data" / "raw").mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJ_ROOT / "params.yaml", root / "params.yaml")
    shutil.copy(PROJ_ROOT / "data" / "raw" / "raw_data.csv.dvc", root / "data" / "raw")
    if raw is not None:
        (root / "data" / "raw" / "raw_data.csv").symlink_to(raw)
    return root


def make_raw_leads(n: int = 60, seed: int = 0) -> pd.DataFrame:
    """A small raw lead frame in the raw file's schema, every level of each category present."""
    rng = np.random.default_rng(seed)
    groups = np.resize(np.arange(1, 10), n)
    return pd.DataFrame(
        {
            "lead_id": np.arange(n),
            "lead_indicator": np.resize([0.0, 1.0], n),
            "date_part": [f"2024-01-{1 + i % 31}" for i in range(n)],
            "is_active": 0,
            "source": np.resize(["signup", "signup", "organic", "li", "fb", "signup"], n),
            "purchases": rng.integers(0, 10, n),
            "time_spent": rng.uniform(10, 200, n).round(3),
            "customer_group": groups,
            "onboarding": np.resize([True, False, True], n),
            "customer_code": np.resize(["ABC", None], n),
            "n_visits": rng.integers(1, 20, n),
        }
    )


def ragged_csv(path: Path, leads: pd.DataFrame, extra: dict[int, str]) -> str:
    """Leads as CSV, with the data rows at ``extra`` given another field (or ``""``: one less)."""
    rows = [leads.iloc[:0].to_csv(index=False, lineterminator="\n")]
    for row in range(len(leads)):
        body = leads.iloc[[row]].to_csv(index=False, header=False, lineterminator="\n")[:-1]
        if row in extra:
            body = f"{body},{extra[row]}" if extra[row] else body.rsplit(",", 1)[0]
        rows.append(body + "\n")
    path.write_text("".join(rows))
    return str(path)


def fit_small_model(n: int = 200, seed: int = 1) -> Any:
    """A lead model Pipeline (the real preprocessing, a logistic regression) on a small frame."""
    from sklearn.linear_model import LogisticRegression

    from lead_conversion_prediction.config import FeatureParams
    from lead_conversion_prediction.features import build_preprocessor
    from lead_conversion_prediction.modeling.train import assemble_model
    from lead_conversion_prediction.schema import features_and_target, validate_leads

    X, y = features_and_target(validate_leads(make_raw_leads(n=n, seed=seed), "train.csv"))
    preprocessor = build_preprocessor(FeatureParams()).fit(X)
    classifier = LogisticRegression().fit(preprocessor.transform(X), y)
    return assemble_model(preprocessor, classifier)


def monitored_leads(
    n: int, seed: int, shift: float = 0.0, sources: tuple[str, ...] = ("signup", "organic")
) -> pd.DataFrame:
    """Typed leads as the monitor sees them; ``shift`` moves every purchase count up."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "purchases": rng.poisson(3, n).astype("float64") + shift,
            "time_spent": rng.gamma(2.0, 100.0, n),
            "n_visits": rng.poisson(5, n).astype("float64"),
            "customer_group": pd.array(rng.integers(1, 10, n), dtype="Int64"),
            "onboarding": rng.random(n) < 0.4,
            "source": rng.choice(list(sources), n),
        }
    )


def drifted_report(rows: int = 500) -> DriftReport:
    """The drift of a batch of ``rows`` leads from 2,000 training leads: its purchases moved
    up, half its sources a level named ``<script>`` that training never had, its
    probabilities higher."""
    from lead_conversion_prediction.config import MonitorParams
    from lead_conversion_prediction.monitoring.counts import count_batch
    from lead_conversion_prediction.monitoring.drift import drift_report
    from lead_conversion_prediction.monitoring.profile import build_profile

    rng = np.random.default_rng(7)
    training = monitored_leads(2000, seed=1)
    profile = build_profile(training, pd.Series(rng.random(2000) < 0.3), rng.beta(2, 5, 600))
    batch = monitored_leads(rows, seed=2, shift=3.0, sources=("signup", "<script>"))
    counts = count_batch(profile, batch, rng.beta(3, 4, rows))
    return drift_report(profile, counts, MonitorParams(), "lead-model v3", "leads.csv", "0" * 32)


HOLDOUT_BANDS = {  # (value, low, high) of a holdout the synthetic scores match
    "roc_auc": (0.83, 0.80, 0.86),
    "log_loss": (0.50, 0.47, 0.53),
    "brier": (0.167, 0.155, 0.18),
    "top_10_capture": (0.19, 0.16, 0.22),
    "top_20_capture": (0.36, 0.32, 0.40),
}


def backtest_report(holdout: bool = True) -> BacktestReport:
    """The backtest of 900 scored leads over three months, by month: January and February
    convert as scored, March's outcomes ignore the scores (its ROC-AUC falls below the
    holdout's). 20 scores have no outcome, 5 outcomes no score, and one score id repeats."""
    from lead_conversion_prediction.config import BacktestParams
    from lead_conversion_prediction.monitoring.backtest import MetricBand, backtest

    rng = np.random.default_rng(3)
    probability = rng.uniform(0, 1, 900)
    converted = np.r_[rng.random(600) < probability[:600], rng.random(300) < 0.5]
    dates = np.repeat(["2024-01-15", "2024-02-15", "2024-03-15"], 300)
    scores = pd.DataFrame(
        {"lead_id": np.r_[np.arange(900), 7], "conversion_probability": np.r_[probability, 0.5]}
    ).assign(model="lead-model v3")
    outcomes = pd.DataFrame(
        {"lead_id": np.arange(20, 905), "converted": np.r_[converted[20:], [1] * 5]}
    ).assign(date=np.r_[dates[20:], ["2024-03-20"] * 5])
    bands = {
        name: MetricBand(value=v, low=lo, high=hi) for name, (v, lo, hi) in HOLDOUT_BANDS.items()
    }
    params = BacktestParams(resamples=200)
    return backtest(scores, outcomes, "month", bands if holdout else None, params)


def run_lcp(
    *args: str,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    unset: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """Run the `lcp` command line as a user would, with extra (or ``unset``) variables.

    Typer colours its help where GITHUB_ACTIONS, FORCE_COLOR or PY_COLORS is set, terminal or
    not; the tests read it as plain text, on GitHub's runners too.
    """
    colour = ("GITHUB_ACTIONS", "FORCE_COLOR", "PY_COLORS")
    environment = {name: value for name, value in os.environ.items() if name not in colour}
    environment.update(env or {})
    for name in unset:
        environment.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "lead_conversion_prediction", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )


def lcp_here(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run an ``lcp`` command in this process: what ``run_lcp`` gives, without the start-up.

    For the many checks of one command's handling of its input: the same app, options, errors
    and exit codes, with the environment, the standard streams and the log sink swapped in for
    the call and restored after it. A bug's traceback goes to stderr with exit code 1, as
    Python exits. Process matters (start-up, imports, pipes, signals) need ``run_lcp``.
    """
    import io
    import traceback

    from loguru import logger

    from lead_conversion_prediction.cli import execute

    saved_environment = dict(os.environ)
    saved_streams = sys.stdin, sys.stdout, sys.stderr
    # A new process starts with none: a URI another test set in MLflow's module state must not
    # stand in for the environment's.
    forget_mlflow_globals()
    colour = ("GITHUB_ACTIONS", "FORCE_COLOR", "PY_COLORS")
    for name in colour:
        os.environ.pop(name, None)
    os.environ.update(env or {})
    # Standard input as a process has it: a buffered reader, which the readers peek into.
    given = io.BufferedReader(io.BytesIO((stdin or "").encode()))
    streams: list[io.TextIOWrapper[Any]] = [
        io.TextIOWrapper(given, encoding="utf-8", newline=""),
        *(io.TextIOWrapper(io.BytesIO(), encoding="utf-8", newline="") for _ in range(2)),
    ]
    sys.stdin, sys.stdout, sys.stderr = streams
    code = 0
    try:
        execute(args)
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 0 if stop.code is None else 1
        if isinstance(stop.code, str):
            print(stop.code, file=sys.stderr)
    except Exception:  # a bug: the traceback, as the interpreter shows it
        traceback.print_exc()
        code = 1
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved_streams
        forget_mlflow_globals()
        os.environ.clear()
        os.environ.update(saved_environment)
        logger.remove()
        logger.add(sys.stderr)
    output = []
    for stream in streams[1:]:
        stream.flush()
        output.append(stream.buffer.getvalue().decode("utf-8", "replace"))
    return subprocess.CompletedProcess(["lcp", *args], code, output[0], output[1])


def forget_mlflow_globals() -> None:
    """Undo what a command set in MLflow's module state (its tracking URI and experiment), as
    the end of its process would: the next command reads the environment again."""
    if "mlflow" not in sys.modules:
        return
    from mlflow.tracking import fluent
    from mlflow.tracking._tracking_service import utils

    utils._tracking_uri = None
    fluent._active_experiment_id = None


def project_files() -> list[str]:
    """The project's files as a fresh clone would hold them, uncommitted changes included."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=PROJ_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return [name for name in listed if (PROJ_ROOT / name).is_file()]


def copy_project(root: Path) -> Path:
    """Copy the project's files into ``root`` and commit them there: a fresh clone of it."""
    for name in project_files():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJ_ROOT / name, root / name)
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "baseline"]):
        subprocess.run(["git", *command], cwd=root, env={**os.environ, **GIT_IDENTITY}, check=True)
    return root


GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


class UpstreamServer:
    """A loopback HTTP server standing in for the raw data's upstream URL; counts the GETs.

    ``serve(path)`` chooses the file it answers with; ``url`` is what the DVC pin points at.
    ``fail_next(n)`` answers the next ``n`` GETs with 503, as a busy server would.
    """

    def __init__(self, name: str = "raw_data.csv") -> None:
        import http.server
        import threading

        self.name = name
        self.file: Path | None = None
        self.gets: list[str] = []
        self.failures = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.gets.append(self.path)
                if server.failures > 0:
                    server.failures -= 1
                    self.send_error(503)
                    return
                if self.path != f"/{server.name}" or server.file is None:
                    self.send_error(404)
                    return
                body = server.file.read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", "text/csv")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{self.name}"

    def serve(self, file: Path) -> None:
        self.file = file

    def fail_next(self, times: int) -> None:
        self.failures = times

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


def point_pin_at(root: Path, url: str) -> None:
    """Make the raw data's DVC pin in ``root`` import from ``url``, and commit the change."""
    rewrite_pin(Path(root), url)
    subprocess.run(
        ["git", "commit", "-qam", "upstream stand-in"],
        cwd=root,
        env={**os.environ, **GIT_IDENTITY},
        check=True,
    )


def rewrite_pin(root: Path, url: str) -> None:
    """Point the pin in ``root`` at ``url`` and write it as DVC writes it, its own checksum
    recomputed (the checksum covers the URL): in the project's environment when the one
    running this has no DVC (the Dagger SDK's)."""
    try:
        from dvc.repo import Repo
        from dvc.stage.utils import compute_md5
    except ModuleNotFoundError:
        script = "import sys; from tests.support import rewrite_pin; rewrite_pin(*sys.argv[1:])"
        python = PROJ_ROOT / ".venv" / "bin" / "python"
        subprocess.run(
            [str(python), "-c", script, str(root), url],
            cwd=PROJ_ROOT,
            capture_output=True,
            check=True,
        )
        return
    with Repo(str(root)) as repo:
        (stage,) = repo.stage.collect(str(Path(root) / PIN))
        stage.deps[0].def_path = url
        stage.md5 = compute_md5(stage)
        stage.dump()


def small_train_params(params: Params) -> Params:
    """``params`` with small searches (a few settings, 3 folds), so that tests stay quick."""
    raw = params.model_dump(mode="json")
    for name in raw["train"]["candidates"]:
        raw["train"][name].update(n_iter=3, cv_folds=3)
    return Params.model_validate(raw)


def save_verified(obj: object, path: Path) -> Path:
    """Pickle ``obj`` to ``path`` as a one-member checksummed set, as the stages write them."""
    from lead_conversion_prediction.utils.storage import artifact_set

    with artifact_set(path.parent) as written:
        written.save(obj, path.name)
    return path


PIN = "data/raw/raw_data.csv.dvc"


def run_stage(name: str, root: Path, params: Any, tracking_uri: str) -> None:
    """Run stage ``name`` in-process against ``root``, as its ``lcp`` command would."""
    from lead_conversion_prediction.config import Paths
    from lead_conversion_prediction.stages.data import run_data
    from lead_conversion_prediction.stages.evaluate import run_evaluate
    from lead_conversion_prediction.stages.features import run_features
    from lead_conversion_prediction.stages.package import run_package
    from lead_conversion_prediction.stages.register import run_register
    from lead_conversion_prediction.stages.train import run_train
    from lead_conversion_prediction.stages.validate import run_validate

    paths = Paths(root)
    runs: dict[str, Callable[[], object]] = {
        "data": lambda: run_data(paths, params, accept_changed=True),
        "features": lambda: run_features(paths, params),
        "train": lambda: run_train(paths, params),
        "evaluate": lambda: run_evaluate(paths, params),
        "register": lambda: run_register(paths, params, tracking_uri),
        "package": lambda: run_package(paths),
        "validate": lambda: run_validate(paths, params, model=paths.validator_model),
    }
    runs[name]()


def small_params() -> Params:
    """The project's parameters with small searches and no accuracy bar (synthetic labels)."""
    from lead_conversion_prediction.config import load_params

    params = small_train_params(load_params(PROJ_ROOT / "params.yaml"))
    return params.model_copy(
        update={"validation": params.validation.model_copy(update={"min_accuracy": 0.0})}
    )


def two_models_holdout(
    rows: int, seed: int, names: tuple[str, str]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Holdout outcomes and two models' probabilities on them: the first ranks them well,
    the second barely."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, rows)
    return y, {
        names[0]: np.clip(y * 0.5 + rng.random(rows) * 0.5, 0, 1),
        names[1]: np.clip(y * 0.2 + rng.random(rows) * 0.8, 0, 1),
    }


def write_registry_record(paths: Paths, **fields: object) -> None:
    """Write ``reports/registry.json`` as a registration of ``lead_model`` would, with
    ``fields`` over the defaults (the workspace's model digest when it has a model file)."""
    from lead_conversion_prediction.config import default_tracking_uri
    from lead_conversion_prediction.modeling.artifacts import RegistryRecord
    from lead_conversion_prediction.utils.storage import file_digest

    record: dict[str, object] = {
        "model_name": "lead_model",
        "new_version": True,
        "promoted": False,
        "decision": "",
        "promotion_metric": "roc_auc",
        "evaluation_set_md5": "e" * 32,
        "tracking_uri": default_tracking_uri(),
        "experiment": "lead-conversion",
        "parent_run_id": "r",
        "runs": {},
    }
    if paths.lead_model.is_file():
        record["workspace_sha256"] = file_digest(paths.lead_model)
    paths.registry_record.parent.mkdir(parents=True, exist_ok=True)
    RegistryRecord.model_validate({**record, **fields}).write(paths.registry_record)


def one_candidate(root: Path) -> None:
    """Search only the quickest candidate in the project at ``root`` (its params.yaml's text
    otherwise as written): for tests of a command's mechanics, not of the model's quality."""
    params = root / "params.yaml"
    listed = "  candidates:\n  - xgboost_rf\n  - logistic_regression\n  - xgboost\n"
    assert listed in params.read_text(), "the candidates as the project's params.yaml lists them"
    params.write_text(
        params.read_text().replace(listed, "  candidates:\n  - logistic_regression\n")
    )


# Registering logs every candidate's model: the registry tests train one, so that their runs on
# the tracking server (hundreds of HTTP requests per candidate) stay quick.
REGISTRY_CANDIDATES = ["xgboost_rf"]


def new_project(root: Path, candidates: list[str] | None = None) -> Path:
    """A project root with the small parameters (and only ``candidates``, when given) and the
    raw data's pin, and no data."""
    import yaml

    (root / "data" / "raw").mkdir(parents=True)
    params = small_params().model_dump(mode="json")
    if candidates is not None:
        params["train"]["candidates"] = candidates
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    shutil.copy(PROJ_ROOT / PIN, root / PIN)
    return root


# Debian names it chromium; GitHub's Ubuntu runners ship chromium-browser and google-chrome.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
CHROMIUM_FLAGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    """Debian's Chromium; the check fails (never skips) without it."""
    for name in CHROMIUM_NAMES:
        if found := shutil.which(name):
            return found
    pytest.fail(
        "Chromium is not installed: the browser checks need it (Debian: apt-get install chromium)"
    )


@contextlib.contextmanager
def browser_page(profile: Path) -> Iterator[Any]:
    """A page of headless Chromium with the browser profile ``profile`` (a new folder: a
    browser that never saw the page), closed after the block."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=chromium(),
            headless=True,
            chromium_sandbox=False,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            yield browser.new_page()
        finally:
            browser.close()


def _prctl() -> Callable[..., int] | None:
    try:
        function: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return None
    return function


PRCTL = _prctl()  # looked up here: a child between fork and exec must not load libraries
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """``preexec_fn`` for a child process: SIGTERM reaches it when the test run dies (Linux)."""
    if PRCTL is not None:
        PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM)


def _ephemeral_floor() -> int:
    """The first port the kernel may give an outgoing connection (Linux; 32768 elsewhere)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


PORTS_PER_WORKER = 1000
_handed_out: list[int] = []


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now, and that no
    other test worker and no outgoing connection can take before the test's server binds it.

    A port the kernel hands out for ``bind(0)`` is an ephemeral one: between the probe and the
    server's bind, any client connection of a busy run may take it as its source port, and the
    server then fails to start, or another server answers in its place. So the ports come from
    below the ephemeral range, from a slice of its own for each pytest-xdist worker, and each
    is probed before it is handed out.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    start = _ephemeral_floor() - PORTS_PER_WORKER * (int(worker) + 1 if worker.isdigit() else 1)
    for _ in range(PORTS_PER_WORKER):
        port = start + len(_handed_out) % PORTS_PER_WORKER
        _handed_out.append(port)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {start}-{start + PORTS_PER_WORKER - 1}")


def wait_until(
    condition: Callable[[], bool],
    seconds: float,
    what: str,
    process: subprocess.Popen[Any] | None = None,
    log: Path | None = None,
) -> None:
    """Poll ``condition`` until it holds, failing after ``seconds`` or when ``process`` exits.

    The bound is generous on purpose: it only limits how long a broken run hangs, and a busy
    machine may take many times longer than an idle one.
    """
    deadline = time.monotonic() + seconds
    while not condition():
        output = log.read_text(errors="replace")[-3000:] if log is not None else ""
        if process is not None and process.poll() is not None:
            pytest.fail(f"{what}: the process exited with {process.returncode}\n{output}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {seconds:.0f} s\n{output}")
        time.sleep(0.2)


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group is still running (zombies left to init do not count)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def stop_group(process: subprocess.Popen[Any], grace: float = 60) -> None:
    """Stop a process started with ``start_new_session=True`` and every process it started.

    SIGTERM to the whole group, SIGKILL to what is left after ``grace`` seconds; returns once
    no process of the group runs.
    """
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            process.poll()
            if not _group_alive(process.pid):
                return
            time.sleep(0.1)
    raise AssertionError(f"process group {process.pid} still runs after SIGKILL")


def start_serve(port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``lcp serve --port PORT`` with ``env``, as ``start_lcp`` starts it."""
    return start_lcp(["serve", "--port", str(port)], env, log)


def start_lcp(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A long-running ``lcp`` command with ``env``, its output in ``log`` (a pipe nobody reads
    would block it once full), in a session of its own that dies with the test run."""
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "lead_conversion_prediction", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
