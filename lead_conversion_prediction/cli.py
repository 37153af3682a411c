"""The ``lcp`` command line: one command per pipeline stage, ``pipeline`` for all, and scoring.

Paths default to the project's standard locations (``config.Paths``). Errors a user can fix
are reported on one line with exit code 2; ``--debug`` shows the traceback instead. Heavy
libraries are imported by the commands, not here, so ``lcp --help`` is instant.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lead_conversion_prediction.exceptions import ConfigError, LeadConversionError
from lead_conversion_prediction.scoring import CHUNK_ROWS, OnError
from lead_conversion_prediction.scoring.io import InputFormat, OutputFormat

if TYPE_CHECKING:
    from lead_conversion_prediction.config import Params, Paths

app = typer.Typer(
    name="lcp",
    help="Lead conversion prediction: prepare data, train, evaluate, register and score.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
_state = {"debug": False}

RawOption = Annotated[
    Path | None,
    typer.Option(
        "--raw", help="Raw lead CSV.", dir_okay=False, show_default="data/raw/raw_data.csv"
    ),
]
AcceptChangedOption = Annotated[
    bool,
    typer.Option(
        "--accept-changed-raw",
        help="Train on a raw file whose md5 differs from the one DVC pins.",
    ),
]
TrackingOption = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        help="MLflow store.",
        show_default="$MLFLOW_TRACKING_URI, else sqlite:///<project>/mlflow.db",
    ),
]


def _context() -> tuple[Paths, Params]:
    from lead_conversion_prediction.config import Paths, load_params

    paths = Paths.from_env()
    return paths, load_params(paths.params_file)


def _tracking_uri(option: str | None) -> str:
    from lead_conversion_prediction.config import default_tracking_uri

    return option or default_tracking_uri()


def _show_version(value: bool) -> None:
    if value:
        from lead_conversion_prediction import __version__

        typer.echo(f"lcp {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Log warnings only.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Show the version and exit.", callback=_show_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Lead conversion prediction: prepare data, train, evaluate, register and score."""
    from lead_conversion_prediction.utils.logging import configure_logging

    _state["debug"] = debug
    configure_logging("DEBUG" if debug else "WARNING" if quiet else "INFO")


@app.command()
def fetch() -> None:
    """Get the pinned raw data: DVC remote, else its upstream URL.

    The download is checked against the md5 that data/raw/raw_data.csv.dvc pins.
    """
    from lead_conversion_prediction.config import Paths
    from lead_conversion_prediction.stages.fetch import run_fetch

    run_fetch(Paths.from_env())


@app.command()
def data(raw: RawOption = None, accept_changed_raw: AcceptChangedOption = False) -> None:
    """Check, validate and clean the raw leads into data/interim/."""
    from lead_conversion_prediction.stages.data import run_data

    run_data(*_context(), raw=raw, accept_changed=accept_changed_raw)


@app.command()
def features() -> None:
    """Split the leads and fit the preprocessing into data/processed/."""
    from lead_conversion_prediction.stages.features import run_features

    run_features(*_context())


@app.command()
def train() -> None:
    """Search the candidate models and keep the best in models/."""
    from lead_conversion_prediction.stages.train import run_train

    run_train(*_context())


@app.command()
def evaluate() -> None:
    """Write the holdout metrics, figures and model card into reports/."""
    from lead_conversion_prediction.stages.evaluate import run_evaluate

    run_evaluate(*_context())


@app.command()
def register(tracking_uri: TrackingOption = None) -> None:
    """Log candidates to MLflow, register the best, promote if better."""
    from lead_conversion_prediction.stages.register import run_register

    run_register(*_context(), tracking_uri=_tracking_uri(tracking_uri))


@app.command()
def package() -> None:
    """Bundle model.pkl, the pipeline and the columns in models.tar."""
    from lead_conversion_prediction.stages.package import run_package

    paths, _ = _context()
    run_package(paths)


def _first_predictions(value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        return [int(item) for item in value.split(",")]
    except ValueError:
        raise ConfigError(f"--expect-first: '{value}' is not a list like 0,1,0") from None


@app.command()
def validate(
    model: Annotated[
        Path | None,
        typer.Option(help="Pickled estimator.", show_default="models/model.pkl"),
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
        typer.Option(help="Where to write the report.", show_default="reports/validation.json"),
    ] = None,
) -> None:
    """Check model.pkl as the course validator does."""
    from lead_conversion_prediction.stages.validate import run_validate

    run_validate(
        *_context(),
        model=model,
        X=x,
        y=y,
        expected_first=_first_predictions(expect_first),
        min_accuracy=min_accuracy,
        report=report,
    )


@app.command()
def pipeline(
    raw: RawOption = None,
    accept_changed_raw: AcceptChangedOption = False,
    tracking_uri: TrackingOption = None,
    record: Annotated[
        bool,
        typer.Option(
            "--record/--no-record",
            help="In a DVC project, record the outputs in dvc.lock (as `dvc commit dvc.yaml`).",
        ),
    ] = True,
) -> None:
    """Run every stage in order, from data to validate.

    data, features, train, evaluate, register, package, validate; then, in a DVC project,
    record the outputs in dvc.lock.
    """
    from lead_conversion_prediction.stages.pipeline import run_pipeline

    paths, params = _context()
    run_pipeline(
        paths,
        params,
        _tracking_uri(tracking_uri),
        raw=raw,
        accept_changed=accept_changed_raw,
        record=record,
    )


@app.command()
def predict(
    input_path: Annotated[
        str,
        typer.Option(
            "--input", "-i", metavar="PATH", help="Raw leads: .csv or .parquet, or - for stdin."
        ),
    ],
    output_path: Annotated[
        str,
        typer.Option(
            "--output", "-o", metavar="PATH", help="Scores: .csv or .parquet, or - for stdout."
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option(
            metavar="URI|PATH",
            help="models:/lead_model@champion, a runs:/ URI, or an artifact path.",
            show_default="models/lead_model.joblib",
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
        int,
        typer.Option(
            metavar="K",
            min=0,
            help="Add each lead's K inputs that moved its score most: reason_1..K and their "
            "signed contributions to the log-odds.",
        ),
    ] = 0,
    top: Annotated[
        str | None,
        typer.Option(
            metavar="N|P%",
            help="Write only the N (or P%) likeliest leads, best first; ties by lead_id.",
        ),
    ] = None,
    tracking_uri: TrackingOption = None,
) -> None:
    """Score raw leads: probability, label, rank, reasons."""
    import os

    from lead_conversion_prediction.stages.predict import run_predict

    if model and ":/" in model:
        os.environ["MLFLOW_TRACKING_URI"] = _tracking_uri(tracking_uri)
    paths, params = _context()
    run_predict(
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
        explain=explain,
        top=top,
    )


@app.command()
def serve(
    model: Annotated[
        str, typer.Option(metavar="URI", help="Registered model to serve.")
    ] = "models:/lead_model@champion",
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 5001,
    tracking_uri: TrackingOption = None,
) -> None:
    """Serve a registered model over HTTP (MLflow scoring server).

    The model is the whole Pipeline, so requests hold raw lead records.
    """
    import os
    import subprocess
    import sys

    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model]
    command += ["--env-manager", "local", "-h", host, "-p", str(port)]
    # MLflow starts uvicorn from PATH: put this environment's scripts first.
    scripts = str(Path(sys.executable).parent)
    environment = {
        **os.environ,
        "PATH": os.pathsep.join([scripts, os.environ.get("PATH", "")]),
        "MLFLOW_TRACKING_URI": _tracking_uri(tracking_uri),
    }
    raise typer.Exit(subprocess.call(command, env=environment))


def run() -> None:
    """Console entry point: run the app, reporting project errors on one line (exit code 2)."""
    try:
        app()
    except LeadConversionError as error:
        if _state["debug"]:
            raise
        typer.echo(f"error: {error}", err=True)
        raise SystemExit(2) from None
    finally:
        # The process is exiting: spare the final garbage collection of every loaded module's
        # objects, which takes about a second once MLflow is imported.
        gc.freeze()
