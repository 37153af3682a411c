"""What a user waits for: one command run from start to exit, timed from outside, with the peak
memory of its whole process tree.

Both benchmark scripts time their commands with :func:`measure`, so every figure they print
covers the interpreter's start, the imports, the model's loading and the exit, not only the
part a command logs about itself.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
SAMPLE_SECONDS = 0.02


@dataclass(frozen=True)
class Measured:
    """One run of a command: its wall seconds from start to exit, the peak resident memory of
    the command and all of its descendants (summed, sampled every 20 ms), and its output."""

    wall: float
    peak_mb: float
    returncode: int
    output: str

    def last_line(self) -> str:
        lines = self.output.strip().splitlines()
        return lines[-1] if lines else f"exit {self.returncode}"


def tree_rss(pid: int) -> int:
    """The resident bytes of a process and all of its descendants."""
    total, pending = 0, [pid]
    while pending:
        process = Path(f"/proc/{pending.pop()}")
        try:
            total += int((process / "statm").read_text().split()[1]) * PAGE
            for task in (process / "task").iterdir():
                pending.extend(int(child) for child in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


def measure(command: list[str] | str, env: dict[str, str], cwd: Path | None = None) -> Measured:
    """Run ``command`` (a string runs in the shell) to its end, stdout and stderr together."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        shell=isinstance(command, str),
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(SAMPLE_SECONDS):
            peak[0] = max(peak[0], tree_rss(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = process.communicate()
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    return Measured(wall, peak[0] / 2**20, process.returncode, output)


def measure_start(command: list[str], env: dict[str, str], ready_url: str) -> Measured:
    """Start a server, time it from its start to the first answer of ``ready_url`` (what a
    user waits for before the first request), with its tree's peak memory; then stop it with
    SIGTERM and wait for it to exit."""
    import urllib.error
    import urllib.request

    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    peak, wall = 0, None
    try:
        while process.poll() is None:
            peak = max(peak, tree_rss(process.pid))
            try:
                with urllib.request.urlopen(ready_url, timeout=1) as answer:
                    if answer.status == 200:
                        wall = time.perf_counter() - started
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(SAMPLE_SECONDS)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 15)
        _, errors = process.communicate(timeout=60)
    if wall is None:
        return Measured(0.0, peak / 2**20, process.returncode or 1, errors)
    return Measured(wall, peak / 2**20, 0, errors)
