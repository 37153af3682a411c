"""The monitoring commands: drift of a scored batch, and the model on real outcomes.

Both write a machine-readable JSON and a ``report.html``, log a monitoring run to MLflow, and
exit 0 without an alert, 3 with one (named on stderr, one line per input or cohort), 2 on an
error: what a scheduler needs to fail a job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lead_conversion_prediction.cli.options import (
    TrackingOption,
    exit_on_alerts,
    project,
    use_tracking_store,
)
from lead_conversion_prediction.scoring import CHUNK_ROWS, OnError
from lead_conversion_prediction.scoring.io import InputFormat

app = typer.Typer()


@app.command()
def monitor(
    input_path: Annotated[
        str,
        typer.Option(
            "--input",
            "-i",
            metavar="PATH",
            help="A batch of raw leads (.csv, gzipped too, .parquet, or - for stdin), or the "
            "scores lcp predict wrote for it (then only the prediction is compared).",
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option(
            metavar="URI|PATH",
            help="The model whose training rows the batch is compared with (its reference "
            "profile): models:/..., runs:/..., or an artifact path.",
            show_default="models:/lead_model@champion, or the model the scores name",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            metavar="FOLDER",
            help="Where to write drift.json and report.html.",
            show_default="reports/monitoring",
        ),
    ] = None,
    on_error: Annotated[
        OnError,
        typer.Option(
            help="Rows that break the data contract: fail stops; skip leaves them out "
            "(written to <output>/rejects.csv)."
        ),
    ] = OnError.fail,
    input_format: Annotated[
        InputFormat | None,
        typer.Option(help="Input format.", show_default="from the extension, csv for -"),
    ] = None,
    chunk_rows: Annotated[
        int, typer.Option(min=1000, help="Rows read at a time; bounds the memory.")
    ] = CHUNK_ROWS,
    tracking_uri: TrackingOption = None,
) -> None:
    """Drift of a batch from the training rows, per input."""
    from lead_conversion_prediction.stages.monitor import run_monitor

    use_tracking_store(tracking_uri, check=True)
    paths, params = project()
    report = run_monitor(
        paths,
        params,
        input_path,
        output or paths.monitoring_dir,
        model=model,
        on_error=on_error,
        input_format=input_format,
        chunk_rows=chunk_rows,
    )
    exit_on_alerts(report.alert_lines())


@app.command()
def backtest(
    scores: Annotated[
        list[str],
        typer.Option(
            "--scores",
            metavar="PATH",
            help="Scores as lcp predict writes them (.csv or .parquet); repeat for several.",
        ),
    ],
    outcomes: Annotated[
        str,
        typer.Option(
            metavar="PATH",
            help="Outcomes: lead_id, converted (0/1/true/false) and, for --by month, date.",
        ),
    ],
    by: Annotated[
        str | None,
        typer.Option(
            metavar="month|COLUMN",
            help="Cohorts: the month of date, or a column of the outcomes or scores.",
            show_default="one cohort",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            metavar="URI|PATH",
            help="The model whose holdout band the cohorts are compared with.",
            show_default="the model the scores name",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            metavar="FOLDER",
            help="Where to write backtest.json and report.html.",
            show_default="reports/monitoring/backtest",
        ),
    ] = None,
    tracking_uri: TrackingOption = None,
) -> None:
    """Scores against real outcomes, per cohort, vs the holdout."""
    from lead_conversion_prediction.stages.backtest import run_backtest

    use_tracking_store(tracking_uri, check=True)
    paths, params = project()
    report = run_backtest(
        paths,
        params,
        scores,
        outcomes,
        output or paths.monitoring_dir / "backtest",
        by=by,
        model=model,
    )
    exit_on_alerts([f"backtest alert: {line}" for line in report.alerts])
