"""The serving commands: a registered model over HTTP, and the team's tracking server."""

from __future__ import annotations

from typing import Annotated

import typer

from lead_conversion_prediction.cli.options import (
    TrackingOption,
    project,
    require_model_store,
    use_tracking_store,
)

app = typer.Typer()


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
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 5001,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Worker processes, each with the model loaded.")
    ] = 1,
    tracking_uri: TrackingOption = None,
) -> None:
    """Serve a registered model over HTTP (MLflow's server).

    The model is the whole Pipeline, so requests hold raw lead records; its files are checked
    against the digest recorded when it was logged before it is loaded.
    """
    from lead_conversion_prediction.modeling.registry import champion_uri
    from lead_conversion_prediction.stages.serve import run_serve

    store = use_tracking_store(tracking_uri)
    params = project()[1]
    uri = model or champion_uri(params.registry.model_name)
    require_model_store(uri, store, params.registry.model_name)
    run_serve(uri, host, port, params.serve, workers)


@app.command("mlflow-ui")
def mlflow_ui(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 5000,
    tracking_uri: TrackingOption = None,
) -> None:
    """MLflow's UI, opened on the project's runs.

    The link opens the experiment's runs table (MLflow 3 otherwise opens its GenAI view). For
    a tracking server, which is its own UI, the link alone is logged.
    """
    from lead_conversion_prediction.stages.mlflow_ui import run_mlflow_ui

    use_tracking_store(tracking_uri, check=False)
    run_mlflow_ui(project()[1], host, port)


@app.command("tracking-server")
def tracking_server() -> None:
    """Run the team's MLflow server: PostgreSQL, basic-auth.

    Settings come from the environment (docs/team-registry.md): MLFLOW_AUTH_ADMIN_PASSWORD and
    MLFLOW_FLASK_SERVER_SECRET_KEY are required; MLFLOW_BACKEND_STORE_URI names the database.
    The command becomes `mlflow server`: Ctrl-C or SIGTERM stops it.
    """
    from lead_conversion_prediction.config import Paths
    from lead_conversion_prediction.stages.tracking_server import run_tracking_server

    run_tracking_server(Paths.from_env())
