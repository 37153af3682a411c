"""Logging set-up for the CLI, and the start/end lines every stage writes."""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from loguru import logger

LOG_FORMAT = "<green>{time:HH:mm:ss.SSS}</green> | <level>{level: <7}</level> | {message}"


_level = {"name": "INFO"}
# pandera imports PySpark's pandas layer whenever PySpark is installed, and PySpark warns there
# that it does not fully support pandas 3. The project uses neither: it hands Spark Arrow data.
_PYSPARK_PANDAS_WARNING = "PySpark does not yet fully support pandas"


def configure_logging(level: str = "INFO") -> None:
    """Send log lines to stderr at ``level``; called by the CLI entry point and by workers."""
    silence_pyspark_pandas_warning()
    logger.remove()
    logger.add(sys.stderr, level=level, format=LOG_FORMAT, colorize=None)
    _level["name"] = level


def silence_pyspark_pandas_warning() -> None:
    """Hide PySpark's warning about pandas 3, which concerns pandas on Spark (unused here)."""
    warnings.filterwarnings("ignore", message=_PYSPARK_PANDAS_WARNING, category=FutureWarning)


def logger_level() -> str:
    """The level :func:`configure_logging` last set, for worker processes to use too."""
    return _level["name"]


@contextmanager
def log_stage(name: str) -> Iterator[dict[str, Any]]:
    """Log a stage's start and end; facts put in the yielded dict join the end line."""
    facts: dict[str, Any] = {}
    logger.info("{}: start", name)
    started = time.perf_counter()
    yield facts
    seconds = time.perf_counter() - started
    details = ", ".join(f"{key}={value}" for key, value in facts.items())
    logger.info("{}: done in {:.2f} s{}", name, seconds, f" ({details})" if details else "")


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[int], None]]:
    """Yield a callback that advances a bar of rows; the bar shows only on a terminal."""
    if not sys.stderr.isatty():
        yield lambda rows: None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description} {task.completed:,} rows"))
    with Progress(*columns, TimeElapsedColumn(), transient=True) as progress:
        task = progress.add_task(description, total=None)
        yield lambda rows: progress.advance(task, rows)
