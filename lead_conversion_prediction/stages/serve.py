"""``lcp serve``: the registered model over HTTP, MLflow's scoring server behind request bounds.

The model's files are downloaded and checked against the digest recorded when it was logged,
then served by uvicorn: in this very process with one worker, or in ``--workers N`` processes
of uvicorn's own that load the same checked files and die with this one. SIGTERM or Ctrl-C
stops the server and the command, and no child is left answering on the port. Answers name the
model version.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from loguru import logger

from lead_conversion_prediction.config import ServeParams
from lead_conversion_prediction.exceptions import StopSignalError
from lead_conversion_prediction.scoring.model import verified_model_files
from lead_conversion_prediction.scoring.pyfunc import PROVENANCE_ENV

# What the parent hands each worker process of `lcp serve --workers N`: the checked files.
_MODEL_DIR_ENV = "LCP_SERVE_MODEL_DIR"
_LIMITS_ENV = "LCP_SERVE_LIMITS"
_PARENT_ENV = "LCP_SERVE_PARENT"
_LOG_LEVEL_ENV = "LCP_SERVE_LOG_LEVEL"


def run_serve(uri: str, host: str, port: int, limits: ServeParams, workers: int = 1) -> None:
    """Serve the model at ``uri`` on ``host:port`` until stopped, within ``limits``.

    One worker serves in this very process. More are processes of uvicorn's own, each loading
    the files this process downloaded and checked; they end with it, even when it is killed.
    """
    import uvicorn

    from lead_conversion_prediction.utils.logging import logger_level
    from lead_conversion_prediction.utils.start_up import resume_collector

    with verified_model_files(uri) as (folder, provenance, _), _stop_on_signals():
        os.environ[PROVENANCE_ENV] = provenance
        logger.info(
            "serve: {} on http://{}:{} with {} worker(s) (Ctrl-C to stop)",
            provenance, host, port, workers,
        )  # fmt: skip
        if workers == 1:
            app = scoring_app(folder, limits)
            resume_collector()  # a server runs for long: with the collector on
            uvicorn.run(
                app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=10
            )
            return
        os.environ[_MODEL_DIR_ENV] = str(folder)
        os.environ[_LIMITS_ENV] = limits.model_dump_json()
        os.environ[_PARENT_ENV] = str(os.getpid())
        os.environ[_LOG_LEVEL_ENV] = logger_level()
        resume_collector()
        uvicorn.run(
            f"{__name__}:worker_app",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=10,
        )
        logger.info("serve: stopped")  # uvicorn's supervisor took the signal and ended


def scoring_app(folder: Path, limits: ServeParams) -> Any:
    """MLflow's scoring app for the model in ``folder``, behind the request bounds."""
    import mlflow
    from mlflow.pyfunc import scoring_server

    from lead_conversion_prediction.scoring.request_guard import RequestGuard

    scoring = scoring_server.init(mlflow.pyfunc.load_model(str(folder)))
    return RequestGuard(scoring, limits.max_request_bytes, limits.max_json_depth)


def worker_app() -> Any:
    """The app of one worker process of ``lcp serve --workers N`` (uvicorn calls it)."""
    from lead_conversion_prediction.utils.logging import configure_logging
    from lead_conversion_prediction.utils.processes import die_with_parent

    die_with_parent(int(os.environ[_PARENT_ENV]))
    configure_logging(os.environ[_LOG_LEVEL_ENV])
    limits = ServeParams.model_validate_json(os.environ[_LIMITS_ENV])
    return scoring_app(Path(os.environ[_MODEL_DIR_ENV]), limits)


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
