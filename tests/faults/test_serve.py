"""`lcp serve` under faults: stopped by SIGTERM or Ctrl-C with nothing left on its port, and
refusing, with the field and the reason, every request that breaks the data contract."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lead_conversion_prediction.config import PROJ_ROOT
from tests.faults.conftest import Project, alive, descendants
from tests.support import free_port, wait_until

pytestmark = pytest.mark.long(seconds=69)

START_SECONDS = 300  # a few seconds idle, many more on a busy machine


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture
def serving(trained: Project) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    process = trained.start("serve", "--port", str(port))
    wait_until(lambda: answers(port), START_SECONDS, "it answers", process=process)
    assert process.poll() is None, process.stderr.read() if process.stderr else ""
    yield process, port
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)


def test_a_signal_stops_the_server_and_frees_its_port(
    serving: tuple[subprocess.Popen[str], int],
) -> None:
    """SIGTERM to the command alone, as a service manager sends it. SIGINT to the command
    alone is checked with workers (``test_several_workers_stop_together_on_a_signal``), and
    Ctrl-C to the group by ``test_make_serve_exits_cleanly_on_ctrl_c``."""
    process, port = serving
    children = descendants(process.pid)
    os.kill(process.pid, signal.SIGTERM)
    assert process.wait(timeout=120) == 0
    wait_until(lambda: not answers(port), 60, "the port is freed")
    assert not [pid for pid in children if alive(pid)]


def test_make_serve_exits_cleanly_on_ctrl_c(trained: Project, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "-C", str(PROJ_ROOT), "-o", ".venv/.installed",
             "serve", f"PORT={port}"],
            env=trained.env, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_until(lambda: answers(port), START_SECONDS, "it answers", process=process, log=log)
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
        process.wait(timeout=120)
        wait_until(lambda: not answers(port), 60, "the port is freed")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_several_workers_stop_together_on_a_signal(trained: Project, sent: signal.Signals) -> None:
    port = free_port()
    process = trained.start("serve", "--port", str(port), "--workers", "2")
    try:
        wait_until(lambda: answers(port), START_SECONDS, "it answers", process=process)
        workers = descendants(process.pid)
        assert len(workers) >= 2
        os.kill(process.pid, sent)
        assert process.wait(timeout=120) == 0
        wait_until(lambda: not answers(port), 60, "the port is freed")
        wait_until(lambda: not [pid for pid in workers if alive(pid)], 60, "the workers end")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


def test_workers_end_when_their_server_is_killed(trained: Project) -> None:
    port = free_port()
    process = trained.start("serve", "--port", str(port), "--workers", "2")
    try:
        wait_until(lambda: answers(port), START_SECONDS, "it answers", process=process)
        workers = descendants(process.pid)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
        wait_until(lambda: not [pid for pid in workers if alive(pid)], 60, "the workers end")
        wait_until(lambda: not answers(port), 60, "the port is freed")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
