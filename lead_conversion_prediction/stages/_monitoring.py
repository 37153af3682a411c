"""The monitoring report's outputs that ``lcp monitor`` and ``lcp predict --monitor`` share:
``drift.json``, ``report.html`` and a run of the monitoring experiment.

Drawing the report needs matplotlib, and logging its run MLflow: seconds of imports, and work
that holds the interpreter's lock. :class:`DriftPublisher` starts a process of their own
(``cli/report_worker.py``) with the command, which imports them on the other core while the
model loads and the batch is scored. The statistics are computed here as soon as the last row
is counted; the worker draws (and logs, when this process has no MLflow of its own: a model
from a file) while ``lcp predict`` still ranks and writes the scores. A model from the
registry has imported MLflow here already: the run is logged here, once the report is drawn.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from loguru import logger

from lead_conversion_prediction.config import Params
from lead_conversion_prediction.exceptions import DataContractError, RegistryError
from lead_conversion_prediction.monitoring.counts import BatchCounts
from lead_conversion_prediction.monitoring.drift import DriftReport, drift_report
from lead_conversion_prediction.monitoring.profile import ReferenceProfile
from lead_conversion_prediction.scoring import STDIO

T = TypeVar("T")
# What logging a monitoring run imports: seconds, spent by the worker while the batch is scored.
WARM_MODULES = ("mlflow", "mlflow.store.tracking.sqlalchemy_store")
DRIFT_NAME = "drift.json"
REPORT_NAME = "report.html"
WORKER = "lead_conversion_prediction.cli.report_worker"


class DriftPublisher:
    """The drift report of one scored batch, prepared while it is scored and published beside it.

    Made when the command starts, it starts the report's worker process (``logs_here``: this
    process logs the run, for it imports MLflow anyway) and takes the batch file's md5 on a
    thread. :meth:`counted` (called once the last row is counted, while ``lcp predict`` still
    ranks and writes the scores) computes the statistics, writes ``drift.json`` and has the
    report drawn and logged, on a thread; :meth:`report` waits for it, raising its error if it
    failed. A publisher that is never asked ends its worker with the process (the worker dies
    with its parent).
    """

    def __init__(
        self, params: Params, input_path: str, output_dir: Path, logs_here: bool = False
    ) -> None:
        from lead_conversion_prediction.utils.logging import logger_level

        self.params, self.input_path, self.output_dir = params, input_path, output_dir
        self.logs_here = logs_here
        task = "draw" if logs_here else "draw-and-log"
        self._worker = subprocess.Popen(
            [sys.executable, "-m", WORKER, str(os.getpid()), logger_level(), task],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._md5 = in_background(batch_md5, input_path)
        self._published: Future[DriftReport] | None = None

    def counted(self, profile: ReferenceProfile, counts: BatchCounts | None, model: str) -> None:
        """Start publishing the report of the batch's counts (once)."""
        if self._published is None:
            self._published = in_background(self._publish, profile, counts, model)

    def report(
        self, profile: ReferenceProfile, counts: BatchCounts | None, model: str
    ) -> DriftReport:
        """The published report (published now if :meth:`counted` was not called)."""
        self.counted(profile, counts, model)
        assert self._published is not None
        return self._published.result()

    def _publish(
        self, profile: ReferenceProfile, counts: BatchCounts | None, model: str
    ) -> DriftReport:
        from lead_conversion_prediction.utils.storage import write_json

        params, input_path, output_dir = self.params, self.input_path, self.output_dir
        if counts is None or not counts.rows:
            self._stop_worker()
            raise DataContractError(input_path, "no row was scored: nothing to monitor")
        md5 = self._md5.result() or counts_md5(counts)
        report = drift_report(profile, counts, params.monitor, model, input_path, md5)
        output_dir.mkdir(parents=True, exist_ok=True)
        write_json(output_dir / DRIFT_NAME, report.model_dump(mode="json"))
        request = {
            "experiment": params.monitor.experiment,
            "report": report.model_dump(mode="json"),
            "output": str(output_dir),
        }
        drawn = in_background(self._ask_worker, request)
        if self.logs_here:  # the run and its metrics while the worker draws, then the files
            log_monitoring(params.monitor.experiment, report, output_dir, drawn.result)
        else:
            drawn.result()
        if report.weak:
            logger.warning(
                "monitor: {} rows only (under {}): the statistics are weak and no test alerts",
                report.rows,
                params.monitor.min_rows,
            )
        worst = [item for item in report.inputs if item.status != "ok"]
        logger.info(
            "monitor: {:,} rows, status {}{}; report in {}",
            report.rows,
            report.status,
            f" ({', '.join(f'{i.name} {i.status}' for i in worst)})" if worst else "",
            output_dir / REPORT_NAME,
        )
        return report

    def _ask_worker(self, request: dict[str, Any]) -> None:
        """Send the worker its request; return once it answers done, else raise its error."""
        answer, _ = self._worker.communicate(json.dumps(request) + "\n")
        told = json.loads(answer.strip().splitlines()[-1]) if answer.strip() else {}
        if "error" in told:
            raise RegistryError(told["error"])
        if "done" not in told:
            raise RuntimeError(
                f"the monitoring report's process failed (exit {self._worker.returncode}): "
                f"{told.get('bug', 'no answer')}"
            )

    def _stop_worker(self) -> None:
        """End the worker, which has nothing to publish."""
        self._worker.kill()
        self._worker.communicate()


def in_background(function: Callable[..., T], *args: Any) -> Future[T]:
    """Run ``function`` on a daemon thread: an error exit never waits for it."""
    future: Future[T] = Future()

    def run() -> None:
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(function(*args))
            except BaseException as error:  # raised by result(), in the caller's thread
                future.set_exception(error)

    threading.Thread(target=run, name="monitoring", daemon=True).start()
    return future


def batch_md5(input_path: str) -> str:
    """The batch file's md5; empty for stdin or a location Spark reads (the counts' stands in)."""
    from lead_conversion_prediction.utils.storage import file_digest

    if input_path != STDIO and Path(input_path).is_file():
        return file_digest(Path(input_path), "md5")
    return ""


def write_and_log(experiment: str | None, report: DriftReport, output_dir: Path) -> None:
    """Write ``report.html`` beside ``drift.json``; log both as a monitoring run of
    ``experiment`` unless it is None (the caller logs)."""
    from lead_conversion_prediction.monitoring.report import render_drift
    from lead_conversion_prediction.utils.storage import write_text

    write_text(output_dir / REPORT_NAME, render_drift(report))
    if experiment is not None:
        log_monitoring(experiment, report, output_dir)


def log_monitoring(
    experiment: str,
    report: DriftReport,
    output_dir: Path,
    drawn: Callable[[], object] = lambda: None,
) -> None:
    """Log the report as a run of the monitoring experiment: its statistics as metrics, and
    its files once ``drawn`` returns."""
    from lead_conversion_prediction.config import default_tracking_uri
    from lead_conversion_prediction.modeling.tracking import log_monitoring_run

    metrics = {"rows": float(report.rows)}
    for item in [*report.inputs, *([report.prediction] if report.prediction else [])]:
        for statistic in item.statistics:
            metrics[f"{item.name}.{statistic.name}"] = statistic.value
    if report.summary is not None:
        metrics.update(
            {
                "prediction.mean": report.summary.mean,
                "expected_converters": report.summary.expected_converters,
                **(
                    {"expected_roc_auc": report.summary.expected_roc_auc}
                    if report.summary.expected_roc_auc is not None
                    else {}
                ),
            }
        )
    log_monitoring_run(
        default_tracking_uri(),
        experiment,
        "drift",
        {
            "model": report.model,
            "batch": report.batch,
            "batch_md5": report.batch_md5,
            "status": report.status,
            "alerts": ",".join(report.alerts),
        },
        metrics,
        [output_dir / DRIFT_NAME, output_dir / REPORT_NAME],
        drawn,
    )


def counts_md5(counts: BatchCounts) -> str:
    """The md5 of a batch's counts: what names a batch that is no file."""
    return hashlib.md5(counts.model_dump_json().encode(), usedforsecurity=False).hexdigest()
