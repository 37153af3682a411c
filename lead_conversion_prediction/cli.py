"""The ``lcp`` command line: one subcommand per pipeline stage, and ``pipeline`` for all.

Paths default to the project's standard locations (see ``config.Paths``). Errors a user can
fix are reported on one line with exit code 2; ``--debug`` shows the traceback instead.
Heavy libraries are imported by the commands, not here, so ``lcp --help`` is instant.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lead_conversion_prediction.exceptions import LeadConversionError

if TYPE_CHECKING:
    from lead_conversion_prediction.config import Params, Paths

app = typer.Typer(
    name="lcp",
    help="Lead conversion prediction: prepare data, train, evaluate, register and validate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
_state = {"debug": False}

RawOption = Annotated[
    Path | None,
    typer.Option("--raw", help="Raw lead CSV. [default: data/raw/raw_data.csv]", dir_okay=False),
]
AcceptChangedOption = Annotated[
    bool,
    typer.Option(
        "--accept-changed-raw",
        help="Train on a raw file whose md5 differs from the one pinned by DVC.",
    ),
]
TrackingOption = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        help="MLflow store. [default: $MLFLOW_TRACKING_URI, else sqlite:///<project>/mlflow.db]",
    ),
]


def _context() -> tuple[Paths, Params]:
    from lead_conversion_prediction.config import Paths, load_params

    paths = Paths.from_env()
    return paths, load_params(paths.params_file)


def _tracking_uri(option: str | None) -> str:
    from lead_conversion_prediction.config import default_tracking_uri

    return option or default_tracking_uri()


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Log warnings only.")] = False,
) -> None:
    """Lead conversion prediction: prepare data, train, evaluate, register and validate."""
    from lead_conversion_prediction.utils.logging import configure_logging

    _state["debug"] = debug
    configure_logging("DEBUG" if debug else "WARNING" if quiet else "INFO")


@app.command()
def fetch() -> None:
    """Get the pinned raw data: from the DVC remote, else its upstream URL (md5 checked)."""
    from loguru import logger

    from lead_conversion_prediction.config import Paths
    from lead_conversion_prediction.fetch import fetch_raw_data

    fetched = fetch_raw_data(Paths.from_env())
    logger.info("fetch: {} (md5 {}) from {}", fetched.path, fetched.md5, fetched.origin)


@app.command()
def data(raw: RawOption = None, accept_changed_raw: AcceptChangedOption = False) -> None:
    """Check, validate and clean the raw leads into data/interim/."""
    from lead_conversion_prediction.stages import run_data

    run_data(*_context(), raw=raw, accept_changed=accept_changed_raw)


@app.command()
def features() -> None:
    """Split the leads and fit the preprocessing; write data/processed/."""
    from lead_conversion_prediction.stages import run_features

    run_features(*_context())


@app.command()
def train() -> None:
    """Search the candidate models and keep the best in models/."""
    from lead_conversion_prediction.stages import run_train

    run_train(*_context())


@app.command()
def evaluate() -> None:
    """Score the chosen model on the holdout rows into reports/metrics.json."""
    from lead_conversion_prediction.stages import run_evaluate

    run_evaluate(*_context())


@app.command()
def register(tracking_uri: TrackingOption = None) -> None:
    """Log the candidates to MLflow and register the chosen model; promote it if better."""
    from lead_conversion_prediction.stages import run_register

    run_register(*_context(), tracking_uri=_tracking_uri(tracking_uri))


@app.command()
def package() -> None:
    """Bundle model.pkl, the full pipeline and the column list into models/models.tar."""
    from lead_conversion_prediction.stages import run_package

    paths, _ = _context()
    run_package(paths)


@app.command()
def validate(
    model: Annotated[
        Path | None, typer.Option(help="Pickled estimator. [default: models/model.pkl]")
    ] = None,
    x: Annotated[
        Path | None,
        typer.Option(
            "--x", help="Features CSV (12 scaled columns). [default: data/processed/X_test.csv]"
        ),
    ] = None,
    y: Annotated[
        Path | None,
        typer.Option("--y", help="Target CSV. [default: data/processed/y_test.csv]"),
    ] = None,
    expect_first: Annotated[
        str | None,
        typer.Option(help="Comma-separated predictions the first rows must get, e.g. 0,1,0,1,0."),
    ] = None,
    min_accuracy: Annotated[
        float | None, typer.Option(help="Lowest accepted accuracy. [default: from params]")
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(help="Where to write the report. [default: reports/validation.json]"),
    ] = None,
) -> None:
    """Load model.pkl as the course validator does and check its predictions."""
    from lead_conversion_prediction.exceptions import ConfigError
    from lead_conversion_prediction.stages import run_validate

    expected = None
    if expect_first is not None:
        try:
            expected = [int(value) for value in expect_first.split(",")]
        except ValueError:
            raise ConfigError(
                f"--expect-first: '{expect_first}' is not a list like 0,1,0"
            ) from None
    run_validate(
        *_context(),
        model=model,
        X=x,
        y=y,
        expected_first=expected,
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
            help="In a DVC project, record the outputs in dvc.lock (as `dvc commit dvc.yaml`)."
        ),
    ] = True,
) -> None:
    """Run every stage in order: data, features, train, evaluate, register, package, validate."""
    from lead_conversion_prediction.stages import run_pipeline

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
    input: Annotated[
        str,
        typer.Option("--input", "-i", help="Raw leads: a .csv or .parquet file, or - for stdin."),
    ],
    output: Annotated[
        str,
        typer.Option("--output", "-o", help="Scores: a .csv or .parquet file, or - for stdout."),
    ],
    model: Annotated[
        str | None,
        typer.Option(
            help="models:/lead_model@champion, a runs:/ URI, or an artifact path. "
            "[default: models/lead_model.joblib]"
        ),
    ] = None,
    threshold: Annotated[
        float, typer.Option(min=0, max=1, help="predicted_label is 1 above this probability.")
    ] = 0.5,
    sort: Annotated[
        bool, typer.Option(help="Order the rows by probability, highest first.")
    ] = False,
    on_error: Annotated[
        str,
        typer.Option(
            help="Rows that break the data contract: 'fail' stops with an error naming them; "
            "'skip' scores the rest and writes them to the rejects file."
        ),
    ] = "fail",
    rejects: Annotated[
        Path | None,
        typer.Option(help="Rejected rows with their reason. [default: <output>.rejects.csv]"),
    ] = None,
    training_source_only: Annotated[
        bool,
        typer.Option(
            help="Reject leads whose source is not the one the model was trained on (signup) "
            "instead of scoring them with a warning."
        ),
    ] = False,
    input_format: Annotated[
        str | None, typer.Option(help="csv or parquet. [default: from the extension, csv for -]")
    ] = None,
    output_format: Annotated[
        str | None, typer.Option(help="csv or parquet. [default: from the extension, csv for -]")
    ] = None,
    chunk_rows: Annotated[
        int | None,
        typer.Option(min=1000, help="Rows scored at a time; bounds the memory. [default: 100000]"),
    ] = None,
    tracking_uri: TrackingOption = None,
) -> None:
    """Score a file of raw leads: probability, label and rank of each lead."""
    import os

    from lead_conversion_prediction.exceptions import ConfigError
    from lead_conversion_prediction.stages import run_predict

    if on_error not in ("fail", "skip"):
        raise ConfigError(f"--on-error: '{on_error}' is not fail or skip")
    for name, value in (("--input-format", input_format), ("--output-format", output_format)):
        if value not in (None, "csv", "parquet"):
            raise ConfigError(f"{name}: '{value}' is not csv or parquet")
    if model and ":/" in model:
        os.environ["MLFLOW_TRACKING_URI"] = _tracking_uri(tracking_uri)
    paths, params = _context()
    run_predict(
        paths,
        params,
        source=input,
        target=output,
        model=model,
        threshold=threshold,
        sort=sort,
        on_error=on_error,
        rejects=rejects,
        training_source_only=training_source_only,
        input_format=input_format,
        output_format=output_format,
        chunk_rows=chunk_rows,
    )


@app.command()
def serve(
    model: Annotated[
        str, typer.Option(help="Registered model to serve.")
    ] = "models:/lead_model@champion",
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 5001,
    tracking_uri: TrackingOption = None,
) -> None:
    """Serve a registered model over HTTP (MLflow's scoring server, raw lead records in)."""
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
