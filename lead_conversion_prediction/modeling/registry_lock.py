"""A mutex over the MLflow registry API: read-compare-set of the champion, one process at a time.

MLflow has no compare-and-set on aliases: two processes that each read the champion, compare
and set the alias may both act on the same old champion, and the slower one may then replace
a better model with a worse one. Every move of ``@champion`` (promote, rollback, the first
champion, the release path) and every registration (dedupe by checksum, then create) therefore
runs while holding this lock, which works wherever the registry does (a tracking server, a
database, a SQLite file), through the MLflow API alone: clients need no database credentials.

- **The lock** is a registered model named ``<model>.promotion-lock``. Creating a registered
  model is atomic in every MLflow store (the name is the table's key), so of processes that
  create it at the same moment exactly one succeeds: it holds the lock until it deletes it.
  Its tag ``lcp.lock.holder`` names the holder (user, host, pid, command, since) and a random
  token, set in the same create call.
- **Waiting.** The others poll with random pauses until it is gone, for at most
  ``$LCP_REGISTRY_LOCK_WAIT`` seconds (900 by default), then refuse with one line naming the
  holder.
- **A holder that died** leaves its lock behind. A process on the holder's own host sees that
  the holder's pid is gone and breaks the lock; breakers on that host take a host-local file
  lock first and delete the registry lock only if it still holds the dead holder's token, so a
  breaker never deletes a lock that another process has just taken. A holder on another host
  cannot be judged from here: the refusal says how to break it deliberately (``lcp unlock``).
- **Release** deletes the lock if it still holds this holder's token (a deliberate break may
  have replaced it).
- **Only a user who may change the model holds its lock.** Any authenticated user may create a
  registered model, so a user who may only read could create the lock and stop the team. A
  holder therefore proves its right: right after creating the lock it writes its token to the
  tag ``lcp.lock.token`` of the model itself, which needs EDIT or MANAGE on it. A waiter that
  sees a lock whose token the model has not carried for ``PROOF_SECONDS`` ignores that lock,
  says so, and goes on without it. (``lcp tracking-server`` refuses such a lock outright:
  ``server_auth.py``.) A model not registered yet has no tag to prove with: its lock is
  honoured as it is.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from loguru import logger

from lead_conversion_prediction.exceptions import RegistryError, RegistryLockedError

LOCK_SUFFIX = ".promotion-lock"
HOLDER_TAG = "lcp.lock.holder"
PROOF_TAG = "lcp.lock.token"  # on the model itself: only who may change it can write it
PROOF_SECONDS = 15.0  # a holder writes its proof right after taking the lock
WAIT_ENV_VAR = "LCP_REGISTRY_LOCK_WAIT"
DEFAULT_WAIT = 900.0


@dataclass(frozen=True)
class Holder:
    """Who holds (or wants) the registry lock."""

    user: str
    host: str
    pid: int
    command: str
    since: str
    token: str

    def describe(self) -> str:
        return f"{self.user}@{self.host} pid {self.pid} ({self.command}, since {self.since})"

    def is_dead_here(self) -> bool:
        """True when the holder ran on this host and its process is gone."""
        import socket

        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # a process of another user: alive
            return False
        return _is_zombie(self.pid)


def _is_zombie(pid: int) -> bool:
    from pathlib import Path

    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
        return stat.rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def lock_name(model: str) -> str:
    """The registered model that is the lock of ``model``'s registry operations."""
    return f"{model}{LOCK_SUFFIX}"


def lock_wait() -> float:
    """How long to wait for the lock: ``$LCP_REGISTRY_LOCK_WAIT`` seconds, else 900."""
    value = os.environ.get(WAIT_ENV_VAR, "")
    try:
        return float(value) if value else DEFAULT_WAIT
    except ValueError:
        raise RegistryError(f"{WAIT_ENV_VAR}: '{value}' is not a number of seconds") from None


def _me(command: str) -> Holder:
    import getpass
    import secrets
    import socket

    user = os.environ.get("MLFLOW_TRACKING_USERNAME") or getpass.getuser()
    return Holder(
        user=user,
        host=socket.gethostname(),
        pid=os.getpid(),
        command=command,
        since=datetime.now(UTC).isoformat(timespec="seconds"),
        token=secrets.token_hex(8),
    )


@contextmanager
def registry_lock(model: str, command: str, wait: float | None = None) -> Iterator[Holder]:
    """Hold ``model``'s registry lock while the block runs (see the module's docstring)."""
    from mlflow import MlflowClient

    registry = MlflowClient()
    name = lock_name(model)
    me = _me(command)
    held = _acquire(registry, model, me, lock_wait() if wait is None else wait)
    try:
        yield me
    finally:
        if held:
            _release(registry, name, me)


def _acquire(registry: Any, model: str, me: Holder, wait: float) -> bool:
    """Take the lock (True), or go on without a lock that has no right to exist (False)."""
    from mlflow.exceptions import MlflowException

    name = lock_name(model)
    deadline = time.monotonic() + wait
    announced = False
    unproven_since: dict[str, float] = {}
    while True:
        try:
            registry.create_registered_model(
                name,
                tags={HOLDER_TAG: json.dumps(asdict(me))},
                description=f"lock of the champion's moves, held by {me.describe()}",
            )
            _prove(registry, model, me)
            return True
        except MlflowException as error:
            # A taken name; or "not found": MLflow's SQL store answers a taken name by reading
            # that model again, and its holder may have released it in between. Either way,
            # try again (within the wait).
            taken = ("RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST")
            if error.error_code not in taken and not _transient(error):
                raise
        holder = read_holder(registry, name)
        if holder is not None and holder.token == me.token:
            _prove(registry, model, me)
            return True  # our own create went through, and its answer was lost and retried
        if holder is not None and holder.is_dead_here():
            _break_dead(registry, name, holder)
            continue
        if holder is not None and not _proven(registry, model, holder):
            first_seen = unproven_since.setdefault(holder.token, time.monotonic())
            if time.monotonic() - first_seen >= PROOF_SECONDS:
                logger.warning(
                    "the registry lock {} of {} was not taken by a user who may change '{}': "
                    "ignored (an admin can delete it: 'lcp unlock')",
                    name,
                    holder.describe(),
                    model,
                )
                return False
        who = holder.describe() if holder is not None else "another process"
        if time.monotonic() >= deadline:
            raise RegistryLockedError(
                f"{name}: held by {who} for longer than {wait:g} s; wait for it "
                f"({WAIT_ENV_VAR}=SECONDS), or if that process is gone, break the lock with "
                "'lcp unlock'"
            )
        if not announced:
            logger.warning("waiting up to {:g} s for the registry lock held by {}", wait, who)
            announced = True
        time.sleep(random.uniform(0.05, 0.4))


def _prove(registry: Any, model: str, me: Holder) -> None:
    """Write this holder's token on the model: what a user who may change it alone can do."""
    from mlflow.exceptions import MlflowException

    try:
        registry.set_registered_model_tag(model, PROOF_TAG, me.token)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return  # not registered yet: nothing to prove with, nothing to prove against
        _release(registry, lock_name(model), me)
        raise


def _proven(registry: Any, model: str, holder: Holder) -> bool:
    """Whether the model carries the holder's token (or is not registered yet)."""
    from mlflow.exceptions import MlflowException

    try:
        tags = registry.get_registered_model(model).tags
    except MlflowException as error:
        return bool(error.error_code == "RESOURCE_DOES_NOT_EXIST")
    return bool(tags.get(PROOF_TAG) == holder.token)


def _transient(error: Any) -> bool:
    """A store busy with another writer (SQLite): try again."""
    return "database is locked" in str(error)


def read_holder(registry: Any, name: str) -> Holder | None:
    """The holder recorded on the lock, or None when there is no lock (or it cannot be read)."""
    from mlflow.exceptions import MlflowException

    try:
        tags = registry.get_registered_model(name).tags
    except MlflowException:
        return None
    try:
        return Holder(**json.loads(tags[HOLDER_TAG]))
    except (KeyError, TypeError, ValueError):
        return None


def _break_dead(registry: Any, name: str, dead: Holder) -> None:
    """Delete the lock of a holder that died on this host, unless someone else got there first."""
    from mlflow.exceptions import MlflowException

    with _host_lock(registry, name):
        current = read_holder(registry, name)
        if current is None or current.token != dead.token:
            return  # broken already, and perhaps taken again
        with suppress(MlflowException):
            registry.delete_registered_model(name)
            logger.warning("registry lock of {} broken: that process is gone", dead.describe())


@contextmanager
def _host_lock(registry: Any, name: str) -> Iterator[None]:
    """A lock among this host's processes on one registry lock (a file lock; dies with us)."""
    import fcntl
    import hashlib
    import tempfile
    from pathlib import Path

    import mlflow

    key = hashlib.sha256(f"{mlflow.get_tracking_uri()}\n{name}".encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"lcp-registry-lock-{key}"
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _release(registry: Any, name: str, me: Holder) -> None:
    from mlflow.exceptions import MlflowException

    current = read_holder(registry, name)
    if current is None or current.token != me.token:
        logger.warning("the registry lock {} was broken while this process held it", name)
        return
    try:
        registry.delete_registered_model(name)
    except MlflowException as error:
        logger.warning(
            "could not release the registry lock {} ({}); break it with 'lcp unlock'",
            name,
            error.error_code,
        )


def break_lock(model: str) -> Holder | None:
    """Delete ``model``'s registry lock whoever holds it; return the holder it named."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    registry = MlflowClient()
    name = lock_name(model)
    holder = read_holder(registry, name)
    try:
        registry.delete_registered_model(name)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    return holder
