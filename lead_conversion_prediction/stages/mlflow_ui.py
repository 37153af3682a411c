"""``lcp mlflow-ui``: MLflow's UI on the project's store, opened on the runs of its experiment.

MLflow 3's UI opens an experiment in its GenAI view (an overview of traces, empty here) unless
the link says otherwise: the URL parameter ``workflowType=machine_learning`` opens the runs
table, and the browser keeps that choice. The command logs that link for the project's
experiment, then replaces itself with ``mlflow ui`` (``exec``: Ctrl-C or SIGTERM stops it),
with MLflow's telemetry and background jobs off. A tracking server is its own UI: for one, the
link is printed and nothing is started.
"""

from __future__ import annotations

import os
import re
import sys

from loguru import logger

from lead_conversion_prediction.config import Params, default_tracking_uri
from lead_conversion_prediction.utils.logging import MLFLOW_CONFIGURE_LOGGING

RUNS_VIEW = "workflowType=machine_learning"


def runs_url(ui: str, experiment_id: str | None) -> str:
    """The link that opens the UI at ``ui`` on the runs table of an experiment."""
    if experiment_id is None:
        return f"{ui.rstrip('/')}/#/experiments?{RUNS_VIEW}"
    return f"{ui.rstrip('/')}/#/experiments/{experiment_id}/runs?{RUNS_VIEW}"


def experiment_id(tracking_uri: str, name: str) -> str | None:
    """The id of the experiment ``name`` in the store, or None before the first run."""
    from mlflow import MlflowClient

    found = MlflowClient(tracking_uri=tracking_uri).get_experiment_by_name(name)
    return None if found is None else str(found.experiment_id)


def run_mlflow_ui(params: Params, host: str, port: int) -> None:
    """Print the runs link, then become ``mlflow ui`` on the store (never returns), or for a
    tracking server print its link only."""
    store = default_tracking_uri()
    found = experiment_id(store, params.registry.experiment)
    if store.startswith(("http://", "https://")):
        server = re.sub(r"//[^/@]*@", "//", store)  # no user in a link
        logger.info(
            "mlflow-ui: the tracking server is its own UI: open {}", runs_url(server, found)
        )
        return
    url = runs_url(f"http://{host}:{port}", found)
    if found is None:
        logger.warning("mlflow-ui: no run in {} yet: run 'make pipeline' first", store)
    logger.info("mlflow-ui: open {} (Ctrl-C to stop)", url)
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", store]
    command += ["--host", host, "--port", str(port), "--workers", "1"]
    environment = {
        **os.environ,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        MLFLOW_CONFIGURE_LOGGING: "true",  # the server logs as MLflow does, not as lcp
    }
    sys.stderr.flush()
    os.execve(command[0], command, environment)
