"""``lcp serve``: the registered model over HTTP, MLflow's scoring server in this process.

The model's files are downloaded and checked against the digest recorded when it was logged,
then served by uvicorn in this very process: SIGTERM or Ctrl-C stops the server and the
command, and no child is left answering on the port. Answers name the model version.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager

from loguru import logger

from lead_conversion_prediction.config import ServeParams
from lead_conversion_prediction.exceptions import StopSignalError
from lead_conversion_prediction.scoring.model import verified_model_files
from lead_conversion_prediction.scoring.pyfunc import PROVENANCE_ENV


def run_serve(uri: str, host: str, port: int, limits: ServeParams) -> None:
    """Serve the model at ``uri`` on ``host:port`` until stopped, within ``limits``."""
    import mlflow
    import uvicorn
    from mlflow.pyfunc import scoring_server

    from lead_conversion_prediction.scoring.request_guard import RequestGuard

    with verified_model_files(uri) as (folder, provenance), _stop_on_signals():
        os.environ[PROVENANCE_ENV] = provenance
        scoring = scoring_server.init(mlflow.pyfunc.load_model(str(folder)))
        app = RequestGuard(scoring, limits.max_request_bytes, limits.max_json_depth)
        logger.info("serve: {} on http://{}:{} (Ctrl-C to stop)", provenance, host, port)
        uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=10)


@contextmanager
def _stop_on_signals() -> Iterator[None]:
    """Turn SIGTERM and SIGINT into a clean end of the command.

    uvicorn handles them while it serves (it stops taking requests and finishes the ones under
    way), then raises the signal again; here that ends the command with status 0, once the
    model's temporary folder has been removed.
    """

    def stop(number: int, frame: object) -> None:
        raise StopSignalError

    previous = {sent: signal.signal(sent, stop) for sent in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    except StopSignalError:
        logger.info("serve: stopped")
    finally:
        for sent, handler in previous.items():
            signal.signal(sent, handler)
