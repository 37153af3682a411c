"""The monitoring report's outputs that ``lcp monitor`` and ``lcp predict --monitor`` share:
``drift.json``, ``report.html`` and a run of the monitoring experiment.

The report needs MLflow and matplotlib, seconds of imports: :func:`prepare_monitoring` starts
them, and opens the store's monitoring experiment, on a thread of its own while the batch is
scored (the scoring's heavy work leaves the interpreter free), so the report costs little more
than its own drawing and logging once the last row is counted.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from loguru import logger

from lead_conversion_prediction.config import Params
from lead_conversion_prediction.exceptions import DataContractError
from lead_conversion_prediction.monitoring.counts import BatchCounts
from lead_conversion_prediction.monitoring.drift import DriftReport, drift_report
from lead_conversion_prediction.monitoring.profile import ReferenceProfile
from lead_conversion_prediction.scoring import STDIO

DRIFT_NAME = "drift.json"
REPORT_NAME = "report.html"


def prepare_monitoring(params: Params) -> Future[None]:
    """Import the report's libraries and open the monitoring experiment, in the background."""
    from lead_conversion_prediction.config import default_tracking_uri

    executor = ThreadPoolExecutor(1, thread_name_prefix="monitoring")
    ready = executor.submit(_warm_up, default_tracking_uri(), params.monitor.experiment)
    executor.shutdown(wait=False)
    return ready


def _warm_up(tracking_uri: str, experiment: str) -> None:
    from io import BytesIO

    from matplotlib.figure import Figure

    from lead_conversion_prediction.modeling.tracking import configure_tracking

    Figure(figsize=(1, 1)).savefig(BytesIO(), format="png")  # fonts and the PNG writer
    configure_tracking(tracking_uri, experiment)


def publish_drift(
    params: Params,
    profile: ReferenceProfile,
    counts: BatchCounts | None,
    provenance: str,
    input_path: str,
    output_dir: Path,
    ready: Future[None] | None = None,
) -> DriftReport:
    """Compute the batch's drift, write ``drift.json`` and ``report.html``, log the run
    (once ``ready``, the background preparation, is done: its error is raised here)."""
    from lead_conversion_prediction.monitoring.report import render_drift
    from lead_conversion_prediction.utils.storage import write_json, write_text

    if counts is None or not counts.rows:
        raise DataContractError(input_path, "no row was scored: nothing to monitor")
    report = drift_report(
        profile, counts, params.monitor, provenance, input_path, batch_md5(input_path, counts)
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    write_json(output_dir / DRIFT_NAME, report.model_dump(mode="json"))
    write_text(output_dir / REPORT_NAME, render_drift(report))
    if ready is not None:
        ready.result()
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


def batch_md5(input_path: str, counts: BatchCounts) -> str:
    """The MD5 of the batch's file, or (stdin, a Spark location) of its counts."""
    from lead_conversion_prediction.utils.storage import file_digest

    if input_path != STDIO and Path(input_path).is_file():
        return file_digest(Path(input_path), "md5")
    return hashlib.md5(counts.model_dump_json().encode(), usedforsecurity=False).hexdigest()
