"""One log: the libraries' log lines in the project's format, chatter at DEBUG, stage times."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator

import pytest
from loguru import logger

from lead_conversion_prediction.utils.logging import (
    MLFLOW_CONFIGURE_LOGGING,
    ROUTED_LOGGERS,
    InterceptHandler,
    configure_logging,
    log_stage,
    printed_as_debug,
    stage_seconds,
)

# the project's line: time | level | message
LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} \| (?P<level>[A-Z]+) *\| (?P<message>.*)$")


@pytest.fixture
def routed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The CLI's logging set-up at INFO, its lines collected; the loggers restored after."""
    monkeypatch.delenv(MLFLOW_CONFIGURE_LOGGING, raising=False)  # restored at teardown
    saved = {
        name: (item.handlers[:], item.propagate, item.level)
        for name in ROUTED_LOGGERS
        for item in [logging.getLogger(name)]
    }
    lines: list[str] = []
    configure_logging("INFO")
    logger.remove()  # the same set-up, into a list instead of stderr
    from lead_conversion_prediction.utils.logging import LOG_FORMAT

    sink = logger.add(lines.append, level="INFO", format=LOG_FORMAT, colorize=False)
    yield lines
    logger.remove(sink)
    logger.add(sys.stderr)
    for name, (handlers, propagate, level) in saved.items():
        item = logging.getLogger(name)
        item.handlers, item.propagate, item.level = handlers, propagate, level


def parsed(lines: list[str]) -> list[tuple[str, str]]:
    found = [LINE.match(line.rstrip("\n")) for line in lines]
    assert all(found), lines
    return [(match["level"], match["message"]) for match in found if match]


def test_a_library_warning_comes_out_in_the_projects_format(routed: list[str]) -> None:
    logging.getLogger("mlflow.tracking.fluent").warning("the run %s is odd", "abc")
    logging.getLogger("dvc.repo").error("no remote")
    assert parsed(routed) == [
        ("WARNING", "mlflow.tracking.fluent: the run abc is odd"),
        ("ERROR", "dvc.repo: no remote"),
    ]


def test_library_chatter_is_debug_and_other_info_stays(routed: list[str]) -> None:
    logging.getLogger("mlflow.store.db.utils").info("Creating initial MLflow database tables...")
    logging.getLogger("mlflow.pyfunc").info("Validating input example against model signature")
    logging.getLogger("mlflow.utils.uv_utils").info("Copied uv.lock to model artifacts")
    logging.getLogger("dvc.dvcfile").info("Updating lock file 'dvc.lock'")
    logging.getLogger("mlflow.tracking._tracking_service.client").info("View run at http://x")
    logging.getLogger("alembic.runtime.migration").info("update 451aebb31d03 to 90e64c465722")
    logging.getLogger("alembic.runtime.migration").warning("a stamp is missing")
    assert parsed(routed) == [
        ("INFO", "mlflow.tracking._tracking_service.client: View run at http://x"),
        ("WARNING", "alembic.runtime.migration: a stamp is missing"),
    ]


def test_mlflow_imported_later_keeps_our_handler(routed: list[str]) -> None:
    # MLflow replaces the handlers of its logger when imported, unless told not to
    from mlflow.environment_variables import MLFLOW_CONFIGURE_LOGGING as VARIABLE

    assert VARIABLE.get() is False
    import mlflow  # noqa: F401

    kinds = {type(handler) for handler in logging.getLogger("mlflow").handlers}
    assert InterceptHandler in kinds
    assert logging.StreamHandler not in kinds  # MLflow's own, onto stderr
    assert logging.getLogger("mlflow").propagate is False


def test_what_mlflow_prints_is_logged_at_debug(routed: list[str]) -> None:
    from mlflow.utils.logging_utils import eprint

    with printed_as_debug("mlflow"):
        eprint("Created version '1' of model 'lead_model'.")
        logger.info("register: still shown")
    assert parsed(routed) == [("INFO", "register: still shown")]
    debug: list[str] = []
    sink = logger.add(debug.append, level="DEBUG", format="{level} {message}")
    with printed_as_debug("mlflow"):
        eprint("Created version '2' of model 'lead_model'.")
    logger.remove(sink)
    assert debug == ["DEBUG mlflow: Created version '2' of model 'lead_model'.\n"]


def test_a_stages_time_is_the_one_its_done_line_gives(routed: list[str]) -> None:
    with log_stage("example") as facts:
        facts.update(rows=3)
        sum(range(200_000))
    (_, start), (_, done) = parsed(routed)
    assert start == "example: start"
    said = re.fullmatch(r"example: done in (\d+\.\d\d) s \(rows=3\)", done)
    assert said is not None, done
    assert stage_seconds("example") == float(said[1])
