"""The monitoring report's outputs that ``lcp monitor`` and ``lcp predict --monitor`` share:
``drift.json``, ``report.html`` and a run of the monitoring experiment.

The report needs MLflow and matplotlib, seconds of imports: :class:`DriftPublisher` starts them
on a thread of its own while the batch is scored (the scoring's heavy work leaves the
interpreter free), and draws and logs the report there while the scores are written.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from loguru import logger

from lead_conversion_prediction.config import Params
from lead_conversion_prediction.exceptions import DataContractError
from lead_conversion_prediction.monitoring.counts import BatchCounts
from lead_conversion_prediction.monitoring.drift import DriftReport, drift_report
from lead_conversion_prediction.monitoring.profile import ReferenceProfile
from lead_conversion_prediction.scoring import STDIO

T = TypeVar("T")
# What logging a monitoring run imports: seconds, spent while the batch is scored.
WARM_MODULES = ("mlflow", "mlflow.store.tracking.sqlalchemy_store")
DRIFT_NAME = "drift.json"
REPORT_NAME = "report.html"


class DriftPublisher:
    """The drift report of one scored batch, prepared and published off the main thread.

    Made once the model is loaded (two threads importing MLflow at once could each see the
    other's modules half made), it imports the report's libraries and takes the batch file's
    md5 on a thread of its own while the batch is scored. :meth:`counted` (called once the
    last row is counted, while ``lcp predict`` still ranks and writes the scores) computes,
    writes and logs the report on another, and :meth:`report` waits for it, raising its error
    if it failed.
    """

    def __init__(self, params: Params, input_path: str, output_dir: Path) -> None:

        self.params, self.input_path, self.output_dir = params, input_path, output_dir
        self._md5 = in_background(_warm_up, input_path)
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
        from lead_conversion_prediction.monitoring.report import render_drift
        from lead_conversion_prediction.utils.storage import write_json, write_text

        params, input_path, output_dir = self.params, self.input_path, self.output_dir
        if counts is None or not counts.rows:
            raise DataContractError(input_path, "no row was scored: nothing to monitor")
        md5 = self._md5.result() or counts_md5(counts)
        report = drift_report(profile, counts, params.monitor, model, input_path, md5)
        output_dir.mkdir(parents=True, exist_ok=True)
        write_json(output_dir / DRIFT_NAME, report.model_dump(mode="json"))
        write_text(output_dir / REPORT_NAME, render_drift(report))
        log_monitoring(params, report, output_dir)
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


def _warm_up(input_path: str) -> str:
    """Import what the report needs (MLflow's store included); return the batch file's md5.

    MLflow's global state (its tracking URI and experiment) is left alone here: the model may
    be loading from the registry meanwhile. The experiment is opened when the report is logged.
    """
    import importlib
    from io import BytesIO

    from matplotlib.figure import Figure

    from lead_conversion_prediction.utils.storage import file_digest

    for module in WARM_MODULES:
        importlib.import_module(module)
    Figure(figsize=(1, 1)).savefig(BytesIO(), format="png")  # fonts and the PNG writer
    if input_path != STDIO and Path(input_path).is_file():
        return file_digest(Path(input_path), "md5")
    return ""  # stdin, or a location Spark reads: the counts' md5 stands in


def log_monitoring(params: Params, report: DriftReport, output_dir: Path) -> None:
    """Log the report as a run of the monitoring experiment: its statistics as metrics."""
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
        params.monitor.experiment,
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
    )


def counts_md5(counts: BatchCounts) -> str:
    """The md5 of a batch's counts: what names a batch that is no file."""
    return hashlib.md5(counts.model_dump_json().encode(), usedforsecurity=False).hexdigest()
