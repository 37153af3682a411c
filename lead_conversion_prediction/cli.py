"""The ``lcp`` command line: one command per pipeline stage, ``pipeline`` for all, and scoring.

Paths default to the project's standard locations (``config.Paths``). Errors a user can fix
are reported on one line with exit code 2; ``--debug`` shows the traceback instead. Heavy
libraries are imported by the commands, not here, so ``lcp --help`` is instant.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lead_conversion_prediction.exceptions import ConfigError, LeadConversionError
from lead_conversion_prediction.scoring import CHUNK_ROWS, SPARK_MASTER, Engine, OnError
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
_state: dict[str, object] = {"debug": False, "wait": 0.0}

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


@contextmanager
def _writing(paths: Paths, command: str) -> Iterator[None]:
    """Hold the checkout's write lock (waiting up to ``--wait``), tidy it, then run."""
    from lead_conversion_prediction.stages._checkout import tidy_checkout
    from lead_conversion_prediction.utils.locking import checkout_lock

    wait = _state["wait"]
    with checkout_lock(paths.root, command, float(wait) if isinstance(wait, float) else 0.0):
        tidy_checkout(paths)
        yield


def _use_tracking_store(option: str | None, check: bool = True) -> str:
    """The tracking URI to use, checked to answer first (one line when it cannot), and set as
    ``MLFLOW_TRACKING_URI`` for the command and the processes it starts."""
    import os

    from lead_conversion_prediction.config import default_tracking_uri

    uri = option or default_tracking_uri()
    if check:
        from lead_conversion_prediction.modeling.tracking_check import check_tracking_store

        check_tracking_store(uri)
    os.environ["MLFLOW_TRACKING_URI"] = uri
    return uri


def _uses_registry(model: str | None) -> bool:
    """Whether a --model option names a registry or run URI (the default does)."""
    return model is None or ":/" in model


def _show_version(value: bool) -> None:
    if value:
        from lead_conversion_prediction import __version__

        typer.echo(f"lcp {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Log warnings only.")] = False,
    wait: Annotated[
        float,
        typer.Option(
            min=0,
            metavar="SECONDS",
            help="How long a command that writes waits for another run of this checkout.",
        ),
    ] = 0.0,
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
    _state["wait"] = wait
    configure_logging("DEBUG" if debug else "WARNING" if quiet else "INFO")


@app.command()
def fetch() -> None:
    """Get the pinned raw data: DVC remote, else upstream URL.

    The download is checked against the md5 that data/raw/raw_data.csv.dvc pins.
    """
    from lead_conversion_prediction.config import Paths
    from lead_conversion_prediction.stages.fetch import run_fetch

    paths = Paths.from_env()
    with _writing(paths, "fetch"):
        run_fetch(paths)


@app.command()
def data(raw: RawOption = None, accept_changed_raw: AcceptChangedOption = False) -> None:
    """Check, validate and clean raw leads into data/interim/."""
    from lead_conversion_prediction.stages.data import run_data

    paths, params = _context()
    with _writing(paths, "data"):
        run_data(paths, params, raw=raw, accept_changed=accept_changed_raw)


@app.command()
def features() -> None:
    """Split leads and fit the preprocessing: data/processed/."""
    from lead_conversion_prediction.stages.features import run_features

    paths, params = _context()
    with _writing(paths, "features"):
        run_features(paths, params)


@app.command()
def train() -> None:
    """Search the candidate models; keep the best in models/."""
    from lead_conversion_prediction.stages.train import run_train

    paths, params = _context()
    with _writing(paths, "train"):
        run_train(paths, params)


@app.command()
def evaluate() -> None:
    """Write holdout metrics, figures, model card to reports/."""
    from lead_conversion_prediction.stages.evaluate import run_evaluate

    paths, params = _context()
    with _writing(paths, "evaluate"):
        run_evaluate(paths, params)


PromoteOption = Annotated[
    bool,
    typer.Option(
        "--promote",
        help="The release path: make the new version champion if its lead is real.",
    ),
]


@app.command()
def register(tracking_uri: TrackingOption = None, promote: PromoteOption = False) -> None:
    """Log candidates to MLflow, register the challenger."""
    from lead_conversion_prediction.stages.register import run_register

    uri = _use_tracking_store(tracking_uri)
    paths, params = _context()
    with _writing(paths, "register"):
        run_register(paths, params, tracking_uri=uri, promote=promote)


@app.command()
def promote(
    version: Annotated[
        int | None,
        typer.Option(min=1, help="The version to promote.", show_default="the challenger"),
    ] = None,
    tracking_uri: TrackingOption = None,
) -> None:
    """Make a version champion if its lead is real."""
    from lead_conversion_prediction.stages.promote import run_promote

    _use_tracking_store(tracking_uri)
    run_promote(*_context(), version=version)


@app.command()
def rollback(tracking_uri: TrackingOption = None) -> None:
    """Give the champion alias back to the previous champion."""
    from lead_conversion_prediction.stages.promote import run_rollback

    _use_tracking_store(tracking_uri)
    run_rollback(_context()[1])


@app.command()
def champion(tracking_uri: TrackingOption = None) -> None:
    """Show the champion: its metrics, lineage and history."""
    from lead_conversion_prediction.stages.promote import champion_report

    _use_tracking_store(tracking_uri)
    for line in champion_report(_context()[1]):
        typer.echo(line)


@app.command()
def unlock(tracking_uri: TrackingOption = None) -> None:
    """Break the registry lock left by a process that is gone.

    A process on the holder's own machine breaks a dead holder's lock by itself; this is for
    a holder that died on another machine. Make sure it is gone first.
    """
    from lead_conversion_prediction.modeling.registry_lock import break_lock, lock_name

    _use_tracking_store(tracking_uri)
    name = _context()[1].registry.model_name
    holder = break_lock(name)
    if holder is None:
        typer.echo(f"{lock_name(name)}: not held")
    else:
        typer.echo(f"{lock_name(name)}: broken (it was held by {holder.describe()})")


@app.command("tracking-server")
def tracking_server() -> None:
    """Run the team's MLflow server: PostgreSQL, basic-auth.

    Settings come from the environment (see the README): MLFLOW_AUTH_ADMIN_PASSWORD and
    MLFLOW_FLASK_SERVER_SECRET_KEY are required; MLFLOW_BACKEND_STORE_URI names the database.
    The command becomes `mlflow server`: Ctrl-C or SIGTERM stops it.
    """
    from lead_conversion_prediction.config import Paths
    from lead_conversion_prediction.stages.tracking_server import run_tracking_server

    run_tracking_server(Paths.from_env())


@app.command()
def package() -> None:
    """Bundle model.pkl, the pipeline and columns: models.tar."""
    from lead_conversion_prediction.stages.package import run_package

    paths, _ = _context()
    with _writing(paths, "package"):
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

    _use_tracking_store(tracking_uri, check=_uses_registry(model))
    paths, params = _context()
    with _writing(paths, "validate"):
        run_validate(
            paths,
            params,
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
    promote: PromoteOption = False,
) -> None:
    """Run every stage in order, from data to validate.

    data, features, train, evaluate, register, package, validate; then, in a DVC project,
    record the outputs in dvc.lock.
    """
    from lead_conversion_prediction.stages.pipeline import run_pipeline

    uri = _use_tracking_store(tracking_uri)
    paths, params = _context()
    with _writing(paths, "pipeline"):
        run_pipeline(
            paths,
            params,
            uri,
            raw=raw,
            accept_changed=accept_changed_raw,
            record=record,
            promote=promote,
        )


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
    tracking_uri: TrackingOption = None,
) -> None:
    """Score raw leads: probability, label, rank, reasons."""
    from lead_conversion_prediction.stages.predict import run_predict

    _use_tracking_store(tracking_uri, check=_uses_registry(model))
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
        engine=engine,
        spark_master=spark_master,
        overwrite=overwrite,
    )


@app.command()
def serve(
    model: Annotated[
        str | None,
        typer.Option(
            metavar="URI",
            help="Registered model to serve.",
            show_default="models:/lead_model@champion",
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 5001,
    tracking_uri: TrackingOption = None,
) -> None:
    """Serve a registered model over HTTP (MLflow's server).

    The model is the whole Pipeline, so requests hold raw lead records; its files are checked
    against the digest recorded when it was logged before it is loaded.
    """
    from lead_conversion_prediction.stages.serve import run_serve

    _use_tracking_store(tracking_uri)
    params = _context()[1]
    run_serve(model or f"models:/{params.registry.model_name}@champion", host, port)


def _registry_failure(error: Exception) -> str | None:
    """One line for an error of the tracking store (MLflow's, or its HTTP client's), naming the
    store's URI without its password; None for any other error."""
    import os
    import sys

    from lead_conversion_prediction.utils.secrets import redact_uri

    exceptions = sys.modules.get("mlflow.exceptions")
    requests = sys.modules.get("requests.exceptions")
    where = redact_uri(os.environ.get("MLFLOW_TRACKING_URI", "the tracking store"))
    if exceptions is not None and isinstance(error, exceptions.MlflowException):
        text = " ".join(str(getattr(error, "message", error)).split())[:300]
        if error.error_code == "PERMISSION_DENIED":
            user = os.environ.get("MLFLOW_TRACKING_USERNAME", "?")
            return f"{where}: user '{user}' is not allowed to do that ({text})"
        if error.error_code == "UNAUTHENTICATED":
            return f"{where}: the credentials were refused ({text})"
        return f"{where}: {text}"
    if requests is not None and isinstance(error, requests.RequestException):
        return f"{where}: the tracking server failed to answer ({type(error).__name__})"
    return None


def run() -> None:
    """Console entry point: run the app, reporting project errors on one line each (exit 2)."""
    import os

    # MLflow sends usage data and keeps an id under ~/.config/mlflow unless told not to; its
    # download progress bars would fill the logs.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from lead_conversion_prediction.utils.secrets import redact_text

    try:
        app()
    except LeadConversionError as error:
        if _state["debug"]:
            raise
        for line in str(error).splitlines():
            typer.echo(f"error: {redact_text(line)}", err=True)
        raise SystemExit(2) from None
    except Exception as error:
        message = _registry_failure(error)
        if message is None or _state["debug"]:
            raise
        typer.echo(f"error: {redact_text(message)}", err=True)
        raise SystemExit(2) from None
    finally:
        # The process is exiting: spare the final garbage collection of every loaded module's
        # objects, which takes about a second once MLflow is imported.
        gc.freeze()
