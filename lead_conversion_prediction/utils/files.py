"""Reading files: one mapping of the operating system's errors to the project's errors."""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from lead_conversion_prediction.exceptions import (
    ConfigError,
    DataContractError,
    InputNotFoundError,
)


@contextmanager
def reading(path: Path | str, hint: str = "") -> Iterator[None]:
    """Turn the errors of opening or decoding ``path`` into one-line project errors.

    A missing file says how to make it when ``hint`` does; else the command that reads it may
    name the stage that writes it (``cli/errors.py``).
    """
    try:
        yield
    except FileNotFoundError:
        raise InputNotFoundError(path, hint) from None
    except (IsADirectoryError, NotADirectoryError):
        raise DataContractError(path, "is a directory, not a file") from None
    except PermissionError:
        raise DataContractError(path, "cannot be read (permission denied)") from None
    except UnicodeDecodeError as error:
        raise DataContractError(
            path, f"not UTF-8 text (bad byte at offset {error.start})"
        ) from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise DataContractError(path, f"not a whole gzip file ({error})") from None


def is_gzip(path: Path) -> bool:
    """Whether a file is gzipped, told by its first two bytes."""
    with path.open("rb") as probe:
        return probe.read(2) == b"\x1f\x8b"


def open_binary(path: Path) -> IO[bytes]:
    """A file's bytes, buffered (it can be peeked at); a gzip file's as they were before
    compression."""
    if is_gzip(path):
        return io.BufferedReader(gzip.open(path, "rb"), buffer_size=1 << 20)
    return path.open("rb", buffering=1 << 20)


def read_yaml(path: Path, hint: str = "") -> Any:
    """Parse a YAML file; a missing file or bad YAML is a one-line error naming the file."""
    import yaml

    try:
        with reading(path, hint):
            return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from None
