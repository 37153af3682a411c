"""The pipeline's commands: one per stage, and ``pipeline`` for all of them in order."""

from __future__ import annotations

from typing import Annotated

import typer

from lead_conversion_prediction.cli.options import (
    AcceptChangedOption,
    PromoteOption,
    RawOption,
    TrackingOption,
    exit_on_refused_release,
    project,
    use_tracking_store,
    writing,
)

app = typer.Typer()


@app.command()
def fetch(ctx: typer.Context) -> None:
    """Get the pinned raw data: DVC remote, else upstream URL.

    The download is checked against the md5 that data/raw/raw_data.csv.dvc pins.
    """
    from lead_conversion_prediction.config import Paths
    from lead_conversion_prediction.stages.fetch import run_fetch

    paths = Paths.from_env()
    with writing(ctx, paths, "fetch"):
        run_fetch(paths)


@app.command()
def data(
    ctx: typer.Context, raw: RawOption = None, accept_changed_raw: AcceptChangedOption = False
) -> None:
    """Check, validate and clean raw leads into data/interim/."""
    from lead_conversion_prediction.stages.data import run_data

    paths, params = project()
    with writing(ctx, paths, "data"):
        run_data(paths, params, raw=raw, accept_changed=accept_changed_raw)


@app.command()
def features(ctx: typer.Context) -> None:
    """Split leads and fit the preprocessing: data/processed/."""
    from lead_conversion_prediction.stages.features import run_features

    paths, params = project()
    with writing(ctx, paths, "features"):
        run_features(paths, params)


@app.command()
def train(ctx: typer.Context) -> None:
    """Search the candidate models; keep the best in models/."""
    from lead_conversion_prediction.stages.train import run_train

    paths, params = project()
    with writing(ctx, paths, "train"):
        run_train(paths, params)


@app.command()
def evaluate(ctx: typer.Context) -> None:
    """Write holdout metrics, figures, model card to reports/."""
    from lead_conversion_prediction.stages.evaluate import run_evaluate

    paths, params = project()
    with writing(ctx, paths, "evaluate"):
        run_evaluate(paths, params)


@app.command()
def register(
    ctx: typer.Context, tracking_uri: TrackingOption = None, promote: PromoteOption = False
) -> None:
    """Log candidates to MLflow, register the challenger."""
    from lead_conversion_prediction.stages.register import run_register

    uri = use_tracking_store(tracking_uri)
    paths, params = project()
    with writing(ctx, paths, "register"):
        run_register(paths, params, tracking_uri=uri, promote=promote)
    if promote:
        exit_on_refused_release(paths)


@app.command()
def package(ctx: typer.Context) -> None:
    """Bundle model.pkl, the pipeline and columns: models.tar."""
    from lead_conversion_prediction.stages.package import run_package

    paths, _ = project()
    with writing(ctx, paths, "package"):
        run_package(paths)


@app.command()
def pipeline(
    ctx: typer.Context,
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

    uri = use_tracking_store(tracking_uri)
    paths, params = project()
    with writing(ctx, paths, "pipeline"):
        run_pipeline(
            paths,
            params,
            uri,
            raw=raw,
            accept_changed=accept_changed_raw,
            record=record,
            promote=promote,
        )
    if promote:
        exit_on_refused_release(paths)
