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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from lead_conversion_prediction.config import PROJ_ROOT

SHARED_DIR = Path(os.environ.get("LCP_SHARED_DIR", PROJ_ROOT.parent / "shared")).resolve()
RAW_MD5 = "05663184eaf8f324162e4d1bc14be387"


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


def fit_small_model(n: int = 200, seed: int = 1) -> Any:
    """A lead model Pipeline (the real preprocessing, a logistic regression) on a small frame."""
    from sklearn.linear_model import LogisticRegression

    from lead_conversion_prediction.config import FeatureParams
    from lead_conversion_prediction.features import build_preprocessor, features_and_target
    from lead_conversion_prediction.modeling.train import assemble_model
    from lead_conversion_prediction.schema import validate_leads

    X, y = features_and_target(validate_leads(make_raw_leads(n=n, seed=seed), "train.csv"))
    preprocessor = build_preprocessor(FeatureParams()).fit(X)
    classifier = LogisticRegression().fit(preprocessor.transform(X), y)
    return assemble_model(preprocessor, classifier)


def run_lcp(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the `lcp` command line as a user would, with extra environment variables."""
    return subprocess.run(
        [sys.executable, "-m", "lead_conversion_prediction", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )


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


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
