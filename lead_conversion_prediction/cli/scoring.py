"""The scoring commands: score raw leads, check a classifier as the course validator does,
and check a models folder or bundle against its checksums."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lead_conversion_prediction.cli.options import (
    TrackingOption,
    exit_on_alerts,
    project,
    require_model_store,
    use_tracking_store,
    uses_registry,
    writing,
)
from lead_conversion_prediction.exceptions import ConfigError
from lead_conversion_prediction.scoring import (
    CHUNK_ROWS,
    MAX_REASONS,
    SPARK_MASTER,
    STDIO,
    Engine,
    OnError,
)
from lead_conversion_prediction.scoring.io import InputFormat, OutputFormat

if TYPE_CHECKING:
    from lead_conversion_prediction.config import Paths

app = typer.Typer()


@app.command()
def predict(
    input_path: Annotated[
        str,
        typer.Option(
            "--input",
            "-i",
            metavar="PATH",
            help="Raw leads: .csv (gzipped too) or .parquet, or - for stdin. Spark: any "
            "location it reads (a file, folder or glob; file://, hdfs://, s3a://...).",
        ),
    ],
    output_path: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            metavar="PATH",
            help="Scores: .csv or .parquet, or - for stdout. Spark: a Parquet folder.",
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option(
            metavar="URI|PATH",
            help="A registered model (models:/...), a runs:/ URI, or an artifact path "
            "such as models/lead_model.joblib.",
            show_default="models:/lead_model@champion",
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            min=0,
            max=1,
            help="predicted_label is 1 above this probability.",
            show_default="threshold in params.yaml",
        ),
    ] = None,
    sort: Annotated[
        bool, typer.Option("--sort", help="Order the rows by probability, highest first.")
    ] = False,
    on_error: Annotated[
        OnError,
        typer.Option(
            help="Rows that break the data contract: fail stops with an error naming them; "
            "skip scores the rest and writes them to the rejects file."
        ),
    ] = OnError.fail,
    rejects: Annotated[
        Path | None,
        typer.Option(help="Rejected rows with their reason.", show_default="<output>.rejects.csv"),
    ] = None,
    training_source_only: Annotated[
        bool,
        typer.Option(
            "--training-source-only",
            help="Reject leads whose source is not the one the model was trained on (signup) "
            "instead of scoring them with a warning.",
        ),
    ] = False,
    input_format: Annotated[
        InputFormat | None,
        typer.Option(help="Input format.", show_default="from the extension, csv for -"),
    ] = None,
    output_format: Annotated[
        OutputFormat | None,
        typer.Option(help="Output format.", show_default="from the extension, csv for -"),
    ] = None,
    chunk_rows: Annotated[
        int, typer.Option(min=1000, help="Rows scored at a time; bounds the memory.")
    ] = CHUNK_ROWS,
    explain: Annotated[
        int | None,
        typer.Option(
            metavar="K",
            min=1,
            max=MAX_REASONS,
            help="Add each lead's K inputs that moved its score most, as its values "
            "(reason_1..K: n_visits=12), their signed contributions to the log-odds, and "
            "base_log_odds, which they add up from. K=5 gives every input.",
        ),
    ] = None,
    top: Annotated[
        str | None,
        typer.Option(
            metavar="N|P%",
            help="Write only the N (or P%) likeliest leads, best first; ties by lead_id.",
        ),
    ] = None,
    engine: Annotated[
        Engine,
        typer.Option(
            help="local scores in this process; spark in a Spark application (pip install "
            "-e '.[spark]'), with the same contract, rejects and warnings."
        ),
    ] = Engine.local,
    spark_master: Annotated[
        str,
        typer.Option(
            metavar="URL",
            help="Spark master when lcp starts Spark itself (under spark-submit, its own).",
        ),
    ] = SPARK_MASTER,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Replace an existing Spark output folder (a local output file is always "
            "replaced, in one step).",
        ),
    ] = False,
    monitor: Annotated[
        bool,
        typer.Option(
            "--monitor",
            help="Also compare the scored leads with the model's training rows in the same "
            "pass: drift.json and report.html in <output>.monitoring/ (exit 3 on an alert).",
        ),
    ] = False,
    tracking_uri: TrackingOption = None,
) -> None:
    """Score raw leads: probability, label, rank, reasons."""
    from lead_conversion_prediction.stages.predict import run_predict

    uri = use_tracking_store(tracking_uri, check=monitor or uses_registry(model))
    paths, params = project()
    if uses_registry(model):
        require_model_store(model, uri, params.registry.model_name)
    report = run_predict(
        paths,
        params,
        input_path=input_path,
        output_path=output_path,
        model=model,
        threshold=threshold,
        sort=sort,
        on_error=on_error,
        rejects=rejects,
        training_source_only=training_source_only,
        input_format=input_format,
        output_format=output_format,
        chunk_rows=chunk_rows,
        explain=explain or 0,
        top=top,
        engine=engine,
        spark_master=spark_master,
        overwrite=overwrite,
        monitor=monitoring_folder(paths, output_path) if monitor else None,
    )
    exit_on_alerts(report.alerts)


def monitoring_folder(paths: Paths, output_path: str) -> Path:
    """Where ``--monitor`` writes its report: beside the scores, or the project's folder."""
    if output_path == STDIO:
        return paths.monitoring_dir
    scores = Path(output_path.rstrip("/"))
    return scores.with_name(f"{scores.stem}.monitoring")


@app.command()
def validate(
    ctx: typer.Context,
    model: Annotated[
        str | None,
        typer.Option(
            metavar="URI|PATH",
            help="A registered model, or a model.pkl file.",
            show_default="models:/lead_model@champion",
        ),
    ] = None,
    x: Annotated[
        Path | None,
        typer.Option(
            "--x",
            help="Features CSV (the 12 scaled columns).",
            show_default="data/processed/X_test.csv",
        ),
    ] = None,
    y: Annotated[
        Path | None,
        typer.Option("--y", help="Target CSV.", show_default="data/processed/y_test.csv"),
    ] = None,
    expect_first: Annotated[
        str | None,
        typer.Option(metavar="LIST", help="Predictions the first rows must get, e.g. 0,1,0,1,0."),
    ] = None,
    min_accuracy: Annotated[
        float | None,
        typer.Option(
            min=0, max=1, help="Lowest accepted accuracy.", show_default="validation params"
        ),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(
            help="Where to write the report.",
            show_default="reports/validation.json for models/model.pkl, else none",
        ),
    ] = None,
    tracking_uri: TrackingOption = None,
) -> None:
    """Check a classifier as the course validator does."""
    from lead_conversion_prediction.stages.validate import run_validate

    uri = use_tracking_store(tracking_uri, check=uses_registry(model))
    paths, params = project()
    if uses_registry(model):
        require_model_store(model, uri, params.registry.model_name)
    with writing(ctx, paths, "validate"):
        run_validate(
            paths,
            params,
            model=model,
            X=x,
            y=y,
            expected_first=first_predictions(expect_first),
            min_accuracy=min_accuracy,
            report=report,
        )


def first_predictions(value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        return [int(item) for item in value.split(",")]
    except ValueError:
        raise ConfigError(f"--expect-first: '{value}' is not a list like 0,1,0") from None


@app.command()
def verify(
    path: Annotated[
        Path | None,
        typer.Argument(help="A models folder or a models.tar bundle.", show_default="models/"),
    ] = None,
) -> None:
    """Check a models folder or models.tar against SHA256SUMS."""
    from lead_conversion_prediction.config import Paths
    from lead_conversion_prediction.stages.verify import run_verify

    run_verify(Paths.from_env(), path)
