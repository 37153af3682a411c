"""Locks on a checkout and on a set of artifacts, held with ``flock`` on a lock file.

A lock dies with the process that holds it: the kernel releases it when the process exits,
however it exits, so no stale lock can block the next run. The checkout lock's file says who
holds it, for the message another run prints.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from loguru import logger

from lead_conversion_prediction.exceptions import LockedError

LOCK_NAME = ".lcp.lock"
POLL_SECONDS = 0.2


@contextmanager
def checkout_lock(root: Path, command: str, wait: float = 0.0) -> Iterator[None]:
    """Hold the checkout's write lock while the block runs.

    Another holder makes this wait up to ``wait`` seconds (saying so once), then refuse with a
    line naming the holder.
    """
    path = root / LOCK_NAME
    root.mkdir(parents=True, exist_ok=True)
    with path.open("a+", encoding="utf-8") as handle:
        _acquire(handle, fcntl.LOCK_EX, wait, lambda: _holder(path), what=str(root))
        handle.seek(0)
        handle.truncate()
        started = datetime.now(UTC).isoformat(timespec="seconds")
        handle.write(json.dumps({"pid": os.getpid(), "command": command, "started": started}))
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def directory_lock(directory: Path, exclusive: bool) -> Iterator[None]:
    """Hold a lock on the directory itself (no lock file), shared by readers or exclusive for
    a writer; wait as needed."""
    directory.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def _acquire(
    handle: IO[str], mode: int, wait: float, holder: Callable[[], str], what: str
) -> None:
    deadline = time.monotonic() + wait
    announced = False
    while True:
        try:
            fcntl.flock(handle, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            who = holder()
            if time.monotonic() >= deadline:
                hint = "wait for it to finish, or pass --wait SECONDS"
                holder_name = who or "another lcp run"
                raise LockedError(f"{what}: {holder_name} is running; {hint}") from None
            if not announced:
                logger.warning("waiting up to {:g} s for {} to finish", wait, who or "another run")
                announced = True
            time.sleep(POLL_SECONDS)


def _holder(path: Path) -> str:
    """Who holds the checkout lock, from its file: ``lcp pipeline (pid 123, since ...)``."""
    try:
        facts = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, json.JSONDecodeError):
        return ""
    if not facts:
        return ""
    return f"lcp {facts.get('command')} (pid {facts.get('pid')}, since {facts.get('started')})"
