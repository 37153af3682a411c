"""Logging set-up for the CLI, and the start/end lines every stage writes."""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from loguru import logger

LOG_FORMAT = "<green>{time:HH:mm:ss.SSS}</green> | <level>{level: <7}</level> | {message}"


_level = {"name": "INFO"}
# Each stage's time in this process, as its "done in" line gives it (log_stage).
_stage_seconds: dict[str, float] = {}
# pandera imports PySpark's pandas layer whenever PySpark is installed, and PySpark warns there
# that it does not fully support pandas 3. The project uses neither: it hands Spark Arrow data.
_PYSPARK_PANDAS_WARNING = "PySpark does not yet fully support pandas"
# The libraries whose standard-library log records join ours (InterceptHandler).
ROUTED_LOGGERS = ("mlflow", "alembic", "dvc")
# Their loggers whose INFO lines narrate the library's own housekeeping (creating the store's
# tables, copying uv.lock beside a model, checking the input example against the signature,
# updating dvc.lock): the stage's own line says what happened, so these show with --debug only.
CHATTER = ("mlflow.store", "mlflow.utils", "mlflow.pyfunc", "mlflow.models", "alembic", "dvc")
# MLflow installs its own stderr handler when imported unless this is false; ours routes it.
MLFLOW_CONFIGURE_LOGGING = "MLFLOW_CONFIGURE_LOGGING"


class InterceptHandler(logging.Handler):
    """Hand a standard-library log record to loguru, in our format and at its level (the
    INFO lines of :data:`CHATTER` at DEBUG), prefixed with the logger's name."""

    def emit(self, record: logging.LogRecord) -> None:
        level: str | int = record.levelname
        if record.levelno <= logging.INFO and record.name.startswith(CHATTER):
            level = "DEBUG"
        try:
            logger.level(str(level))
        except ValueError:
            level = record.levelno
        frame: FrameType | None = logging.currentframe()
        depth = 2
        while frame is not None and frame.f_code.co_filename == logging.__file__:
            frame, depth = frame.f_back, depth + 1
        logger.opt(depth=depth, exception=record.exc_info).log(
            level, "{}: {}", record.name, record.getMessage()
        )


def configure_logging(level: str = "INFO") -> None:
    """Send log lines to stderr at ``level``; called by the CLI entry point and by workers."""
    silence_pyspark_pandas_warning()
    logger.remove()
    logger.add(sys.stderr, level=level, format=LOG_FORMAT, colorize=None)
    _level["name"] = level
    _level["routed"] = "yes"
    route_library_logs(level)


def reroute_dvc_logs() -> None:
    """Route DVC's log records through ours again: importing DVC adds its own handlers. Call
    after importing it; nothing happens unless :func:`configure_logging` ran."""
    if _level.get("routed"):
        route_library_logs(_level["name"])


def route_library_logs(level: str) -> None:
    """Send MLflow's, Alembic's and DVC's log records through loguru (:class:`InterceptHandler`)
    instead of their own stderr handlers; MLflow, imported later, keeps them so."""
    os.environ[MLFLOW_CONFIGURE_LOGGING] = "false"
    handler = InterceptHandler()
    for name in ROUTED_LOGGERS:
        library = logging.getLogger(name)
        library.handlers = [handler]
        library.propagate = False
        library.setLevel(logging.DEBUG if level == "DEBUG" else logging.INFO)
    # Alembic narrates each of the store's ~70 schema migrations: its warnings only, as in
    # MLflow's own set-up.
    logging.getLogger("alembic").setLevel(logging.WARNING)


def silence_pyspark_pandas_warning() -> None:
    """Hide PySpark's warning about pandas 3, which concerns pandas on Spark (unused here)."""
    warnings.filterwarnings("ignore", message=_PYSPARK_PANDAS_WARNING, category=FutureWarning)


def logger_level() -> str:
    """The level :func:`configure_logging` last set, for worker processes to use too."""
    return _level["name"]


@contextmanager
def printed_as_debug(source: str) -> Iterator[None]:
    """Log at DEBUG, as ``source``, what the block prints to stderr (MLflow prints some
    messages instead of logging them)."""
    import io
    from contextlib import redirect_stderr

    printed = io.StringIO()
    try:
        with redirect_stderr(printed):
            yield
    finally:
        for line in printed.getvalue().splitlines():
            if line.strip():
                logger.debug("{}: {}", source, line)


@contextmanager
def log_stage(name: str) -> Iterator[dict[str, Any]]:
    """Log a stage's start and end; facts put in the yielded dict join the end line."""
    facts: dict[str, Any] = {}
    logger.info("{}: start", name)
    started = time.perf_counter()
    yield facts
    seconds = round(time.perf_counter() - started, 2)
    _stage_seconds[name] = seconds
    details = ", ".join(f"{key}={value}" for key, value in facts.items())
    logger.info("{}: done in {:.2f} s{}", name, seconds, f" ({details})" if details else "")


def stage_seconds(name: str) -> float:
    """The time the last ``name`` stage of this process took, as its "done in" line said."""
    return _stage_seconds[name]


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
