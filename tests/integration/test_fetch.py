"""The raw data online, with no mirror: a fresh copy fetches it from its upstream URL.

A loopback HTTP server stands in for the upstream and serves the shared raw file; the copy's
DVC pin points at it. `make` runs in the copy with the project's own environment linked in.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lead_conversion_prediction.config import PROJ_ROOT
from tests.support import (
    RAW_MD5,
    SHARED_DIR,
    UpstreamServer,
    copy_project,
    md5_of,
    one_candidate,
    point_pin_at,
)

pytestmark = pytest.mark.long(seconds=50)

PIN = "data/raw/raw_data.csv.dvc"


@pytest.fixture(scope="module")
def upstream(real_raw_data: Path) -> Iterator[UpstreamServer]:
    server = UpstreamServer()
    server.serve(real_raw_data)
    yield server
    server.close()


def fresh_copy(base: Path, url: str) -> Path:
    """A committed copy of the project whose pin imports from ``url``, with no DVC remote."""
    root = copy_project(base / "clone")
    point_pin_at(root, url)
    (root / ".venv").symlink_to(PROJ_ROOT / ".venv")
    return root


def make(root: Path, *targets: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """`make` in the copy, its linked environment taken as installed."""
    env = {**os.environ, "LCP_ROOT": str(root), "MLFLOW_TRACKING_URI": f"sqlite:///{root}/m.db"}
    env.pop("DVC_ROOT", None)
    # Under `make test DVC_REMOTE=...` the outer make hands its command-line variables down
    # through MAKEFLAGS: the copy must see only the variables each test gives.
    for variable in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "DVC_REMOTE"):
        env.pop(variable, None)
    settings = [f"{name}={value}" for name, value in variables.items()]
    return subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-C",
            str(root),
            "-o",
            ".venv/.installed",
            *targets,
            *settings,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def git_status(root: Path) -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.fixture(scope="module")
def online(tmp_path_factory: pytest.TempPathFactory, upstream: UpstreamServer) -> Path:
    """A fresh copy where `make pipeline` ran online, with the upstream stand-in only."""
    root = fresh_copy(tmp_path_factory.mktemp("online"), upstream.url)
    one_candidate(root)  # the fetch is the matter here, not the model
    upstream.gets.clear()
    result = make(root, "pipeline")
    assert result.returncode == 0, result.stderr[-3000:]
    return root


def test_make_pipeline_fetches_the_pinned_file_once_from_the_url_and_trains(
    online: Path, upstream: UpstreamServer
) -> None:
    assert upstream.gets == [f"/{upstream.name}"]
    assert md5_of(online / "data" / "raw" / "raw_data.csv") == RAW_MD5
    assert (online / "models" / "model.pkl").is_file()
    assert (online / "reports" / "validation.json").is_file()
    cached = online / ".dvc" / "cache" / "files" / "md5" / RAW_MD5[:2] / RAW_MD5[2:]
    assert md5_of(cached) == RAW_MD5, "the fetched file is in the DVC cache, as after a pull"
    assert PIN not in git_status(online), "the pin is unchanged"


def test_a_file_already_in_place_is_not_fetched_again(
    online: Path, upstream: UpstreamServer
) -> None:
    before = len(upstream.gets)
    (online / PIN).touch()  # make sees a newer pin, so it asks again
    result = make(online, "data")
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(upstream.gets) == before
    assert "origin=workspace" in result.stderr


def test_dvc_tracks_the_fetched_file_as_a_pulled_one(online: Path) -> None:
    result = subprocess.run(
        [str(PROJ_ROOT / ".venv" / "bin" / "dvc"), "status", PIN],
        cwd=online,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout


def test_a_changed_upstream_file_is_refused_and_nothing_changes(
    tmp_path: Path, online: Path, upstream: UpstreamServer, real_raw_data: Path
) -> None:
    changed = tmp_path / "raw_data.csv"
    changed.write_bytes(real_raw_data.read_bytes().replace(b"signup", b"organic", 5))
    raw = online / "data" / "raw" / "raw_data.csv"
    raw.unlink()  # the next run must fetch again
    outputs = {
        path: path.read_bytes()
        for path in [online / "models" / "model.pkl", online / "reports" / "metrics.json"]
    }
    upstream.serve(changed)
    try:
        result = make(online, "pipeline")
    finally:
        upstream.serve(real_raw_data)
    assert result.returncode != 0
    message = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(message) == 1
    assert md5_of(changed) in message[0] and f"is not the pinned {RAW_MD5}" in message[0]
    assert f"dvc update {PIN}" in message[0]
    assert not raw.exists(), "nothing was written in place of the raw file"
    assert not list(raw.parent.glob(".raw_data.csv.*")), "no temporary file is left"
    assert {path: path.read_bytes() for path in outputs} == outputs


def test_a_configured_remote_is_used_before_the_url(
    tmp_path: Path, upstream: UpstreamServer
) -> None:
    root = fresh_copy(tmp_path, upstream.url)
    before = len(upstream.gets)
    result = make(root, "data/raw/raw_data.csv", DVC_REMOTE=str(SHARED_DIR / "dvc-remote"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(upstream.gets) == before
    assert "origin=DVC remote 'mirror'" in result.stderr
    assert md5_of(root / "data" / "raw" / "raw_data.csv") == RAW_MD5


def test_a_remote_without_the_file_falls_back_to_the_url(
    tmp_path: Path, upstream: UpstreamServer
) -> None:
    root = fresh_copy(tmp_path, upstream.url)
    empty = tmp_path / "empty-remote"
    empty.mkdir()
    before = len(upstream.gets)
    result = make(root, "data/raw/raw_data.csv", DVC_REMOTE=str(empty))
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(upstream.gets) == before + 1
    assert "trying the upstream URL" in result.stderr
    assert md5_of(root / "data" / "raw" / "raw_data.csv") == RAW_MD5


def test_when_neither_answers_one_line_names_dvc_remote(tmp_path: Path) -> None:
    silent = UpstreamServer()
    url = silent.url
    silent.close()  # nothing listens there any more
    root = fresh_copy(tmp_path, url)
    result = make(root, "data/raw/raw_data.csv")
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert url in errors[0] and "DVC_REMOTE=" in errors[0]
    assert "no DVC remote is configured" in errors[0]
    assert "Traceback" not in result.stderr
    assert not (root / "data" / "raw" / "raw_data.csv").exists()


def test_a_busy_upstream_is_tried_again_until_it_answers(
    tmp_path: Path, real_raw_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lead_conversion_prediction.stages import fetch
    from lead_conversion_prediction.stages._io import RawDataPin

    monkeypatch.setattr(fetch, "BACKOFF_SECONDS", 0.05)
    busy = UpstreamServer()
    busy.serve(real_raw_data)
    busy.fail_next(2)
    try:
        target = tmp_path / "raw_data.csv"
        fetch.download(RawDataPin(tmp_path / "pin", RAW_MD5, busy.url), target, timeout=10)
    finally:
        busy.close()
    assert busy.gets == [f"/{busy.name}"] * 3
    assert md5_of(target) == RAW_MD5
    assert [path.name for path in tmp_path.iterdir()] == ["raw_data.csv"], "nothing else left"


def test_an_upstream_that_never_answers_is_one_line_in_bounded_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that accepts the connection and says nothing: each try ends at its timeout."""
    import socket
    import time

    from lead_conversion_prediction.exceptions import RawDataUnavailableError
    from lead_conversion_prediction.stages import fetch
    from lead_conversion_prediction.stages._io import RawDataPin

    monkeypatch.setattr(fetch, "BACKOFF_SECONDS", 0.05)
    with socket.create_server(("127.0.0.1", 0)) as mute:
        url = f"http://127.0.0.1:{mute.getsockname()[1]}/raw_data.csv"
        started = time.monotonic()
        with pytest.raises(RawDataUnavailableError) as raised:
            fetch.download(RawDataPin(tmp_path / "pin", RAW_MD5, url), tmp_path / "x.csv", 0.5)
        seconds = time.monotonic() - started
    assert seconds < 3 * 0.5 + 0.15 + 10, "three tries of half a second, and the pauses"
    (line,) = str(raised.value).splitlines()
    assert url in line and "3 tries" in line and "DVC_REMOTE=" in line
    assert list(tmp_path.iterdir()) == [], "nothing partial is kept"
