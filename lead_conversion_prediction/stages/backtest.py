"""The model on real outcomes (``lcp backtest``): how did its scores do, cohort by cohort?

Reads one or more files of scores (as ``lcp predict`` writes them) and a file of outcomes
(``lead_id``, ``converted`` and, for ``--by month``, a ``date``), CSV or Parquet, each checked
on its own (a bad row is named by its line). Joins them on ``lead_id``, counting what does not
join; measures each cohort with bootstrap intervals against the holdout band of the model the
scores name (a registered version's tags, or the workspace's ``reports/evaluation.json`` for
its own model file). Writes ``backtest.json`` and ``report.html``, logs a monitoring run; the
caller exits 3 on an alert.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from loguru import logger

from lead_conversion_prediction.config import Params, Paths, default_tracking_uri
from lead_conversion_prediction.exceptions import DataContractError
from lead_conversion_prediction.monitoring.backtest import (
    BacktestReport,
    MetricBand,
    backtest,
    check_outcomes,
    check_scores,
    holdout_bands,
    holdout_bands_from_report,
    name_models,
)
from lead_conversion_prediction.scoring import CHUNK_ROWS
from lead_conversion_prediction.scoring.io import InputFormat, input_columns, read_chunks
from lead_conversion_prediction.scoring.locations import check_input_present
from lead_conversion_prediction.scoring.model import ModelRef
from lead_conversion_prediction.utils.logging import log_stage

BACKTEST_NAME = "backtest.json"
REPORT_NAME = "report.html"


def run_backtest(
    paths: Paths,
    params: Params,
    scores_paths: list[str],
    outcomes_path: str,
    output_dir: Path,
    by: str | None = None,
    model: str | None = None,
) -> BacktestReport:
    """Measure scored leads against their outcomes, per cohort, beside the holdout's band."""
    from lead_conversion_prediction.modeling.tracking import log_monitoring_run
    from lead_conversion_prediction.monitoring.report import render_backtest
    from lead_conversion_prediction.utils.storage import write_json, write_text

    with log_stage("backtest") as facts:
        for path in [*scores_paths, outcomes_path]:
            check_input_present(path)
        scores = pd.concat(
            [check_scores(read_table(path), path) for path in scores_paths], ignore_index=True
        )
        outcomes = check_outcomes(read_table(outcomes_path), outcomes_path)
        named = model or name_models(scores)
        report = backtest(scores, outcomes, by, holdout_of(paths, named), params.backtest, named)
        if not report.join.matched:
            raise DataContractError(
                outcomes_path, "no lead_id of it is in the scores (once each): nothing to measure"
            )
        output_dir.mkdir(parents=True, exist_ok=True)
        write_json(output_dir / BACKTEST_NAME, report.model_dump(mode="json"))
        write_text(output_dir / REPORT_NAME, render_backtest(report))
        metrics = {"matched": float(report.join.matched)}
        for cohort in report.cohorts:
            metrics[f"{cohort.cohort}.rows"] = float(cohort.rows)
            for name, band in cohort.metrics.items():
                metrics[f"{cohort.cohort}.{name}"] = band.value
        log_monitoring_run(
            default_tracking_uri(),
            params.monitor.experiment,
            "backtest",
            {
                "model": report.model,
                "batch": ",".join(scores_paths),
                "outcomes": outcomes_path,
                "status": report.status,
                "by": report.by,
            },
            metrics,
            [output_dir / BACKTEST_NAME, output_dir / REPORT_NAME],
        )
        unjoined = report.join.scores_without_outcome + report.join.outcomes_without_score
        if unjoined or report.join.duplicate_score_ids or report.join.duplicate_outcome_ids:
            logger.warning(
                "backtest: left out of the join: {:,} scores without an outcome, {:,} outcomes "
                "without a score, {:,} repeated score ids, {:,} repeated outcome ids",
                report.join.scores_without_outcome,
                report.join.outcomes_without_score,
                report.join.duplicate_score_ids,
                report.join.duplicate_outcome_ids,
            )
        if report.holdout is None:
            logger.warning("backtest: no holdout band for {}: nothing to alert on", report.model)
        logger.info(
            "backtest: {:,} leads in {} cohorts, status {}; report in {}",
            report.join.matched,
            len(report.cohorts),
            report.status,
            output_dir / REPORT_NAME,
        )
        facts.update(matched=report.join.matched, status=report.status)
    return report


def read_table(path: str) -> pd.DataFrame:
    """Every column of a CSV (cells as text) or Parquet file, in one frame."""
    source_format = InputFormat.of(path)
    columns = input_columns(path, source_format)
    chunks = list(read_chunks(path, source_format, CHUNK_ROWS, columns))
    return pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame(columns=columns)


def holdout_of(paths: Paths, model: str) -> dict[str, MetricBand] | None:
    """The holdout band of the model the scores name: a registered version's tags, or the
    workspace's evaluation of its own model file; None when unknown (or several models)."""
    from lead_conversion_prediction.modeling.artifacts import MetricsReport
    from lead_conversion_prediction.scoring.model import names_file

    if ", " in model:
        return None
    ref = ModelRef.parse(model)
    if ref.uri is not None:
        from lead_conversion_prediction.scoring.model import recorded_tags

        return holdout_bands(recorded_tags(ref.uri)[0])
    if names_file(model, paths.lead_model) and paths.evaluation.is_file():
        return holdout_bands_from_report(MetricsReport.read(paths.evaluation))
    return None
