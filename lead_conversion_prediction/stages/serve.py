"""``lcp serve``: the registered model over HTTP, MLflow's scoring server in this process.

The model's files are downloaded and checked against the digest recorded when it was logged,
then served by uvicorn in this very process: SIGTERM or Ctrl-C stops the server and the
command, and no child is left answering on the port. Answers name the model version.
"""

from __future__ import annotations

import os

from loguru import logger

from lead_conversion_prediction.scoring.model import verified_model_files
from lead_conversion_prediction.scoring.pyfunc import PROVENANCE_ENV


def run_serve(uri: str, host: str, port: int) -> None:
    """Serve the model at ``uri`` on ``host:port`` until stopped."""
    import mlflow
    import uvicorn
    from mlflow.pyfunc import scoring_server

    with verified_model_files(uri) as (folder, provenance):
        os.environ[PROVENANCE_ENV] = provenance
        app = scoring_server.init(mlflow.pyfunc.load_model(str(folder)))
        logger.info("serve: {} on http://{}:{} (Ctrl-C to stop)", provenance, host, port)
        uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=10)
    logger.info("serve: stopped")
