"""Writing a file whole or not at all, and cleaning up after runs that were killed mid-write.

A file is written to a temporary name beside its target (``.<name>.<host>.<pid>.<random>`` and
:data:`TEMP_SUFFIX`) and renamed over it only when complete. A run killed before the rename
leaves that temporary file: the checkout's stages sweep theirs under the checkout lock, and
``lcp predict`` removes those beside its outputs whose writing process is gone.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from lead_conversion_prediction.exceptions import ENVIRONMENT_ERRNOS, WriteError

TEMP_SUFFIX = ".lcp-tmp"


def default_file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _writer_prefix(path: Path) -> str:
    """The start of the name of this process's temporary files for ``path``: the target's name,
    then the host and the process that writes it, so a later run can tell an abandoned one."""
    import socket

    return f".{path.name}.{socket.gethostname()}.{os.getpid()}."


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` if the block succeeds."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(
            prefix=_writer_prefix(path), suffix=TEMP_SUFFIX, dir=path.parent
        )
    except OSError as error:
        raise _write_error(path, error) from None
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        temporary.chmod(default_file_mode())
        temporary.replace(path)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise _write_error(path, error) from None
        raise


def _write_error(path: Path, error: OSError) -> Exception:
    """A ``WriteError`` for an error of the place ``path`` goes; the error itself otherwise."""
    if error.errno in ENVIRONMENT_ERRNOS:
        return WriteError(path, error.strerror or str(error))
    return error


def sweep_temporary(folders: Iterable[Path]) -> list[Path]:
    """Remove the temporary files and folders that killed runs left in ``folders``."""
    removed = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob(f"*{TEMP_SUFFIX}"), reverse=True):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def sweep_abandoned(path: Path) -> list[Path]:
    """Remove the temporary files for ``path`` that a killed run on this host left beside it:
    those whose writing process is gone. Another host's, and a running process's, stay."""
    own = _writer_prefix(path)
    host_prefix = own[: own.rstrip(".").rfind(".") + 1]  # ".<name>.<host>."
    removed = []
    for candidate in path.parent.glob(f"{glob.escape(host_prefix)}*{TEMP_SUFFIX}"):
        pid = candidate.name[len(host_prefix) :].split(".", 1)[0]
        if pid.isdigit() and not _process_alive(int(pid)):
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive
    return True
