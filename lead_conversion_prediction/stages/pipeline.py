"""``lcp pipeline``: every stage in order, in one process and one worker, with their timings.

Both cores work. A worker process imports the training libraries while this process prepares
the data; then it runs the train stage while this process opens the MLflow store (creating it
takes seconds); then, once this process has validated the new model, it runs the evaluate
stage while this process logs and registers the candidates, and the report is attached to the
run once drawn. The outputs are the same as
stage by stage. In a DVC project the outputs are then recorded in ``dvc.lock``, so that
``dvc repro`` finds every stage up to date.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from pathlib import Path

from loguru import logger

from lead_conversion_prediction.config import Params, Paths
from lead_conversion_prediction.modeling.candidates import candidate_sections
from lead_conversion_prediction.stages.data import run_data
from lead_conversion_prediction.stages.dvc_lock import is_dvc_project, record_in_dvc_lock
from lead_conversion_prediction.stages.evaluate import run_evaluate
from lead_conversion_prediction.stages.features import run_features
from lead_conversion_prediction.stages.package import run_package
from lead_conversion_prediction.stages.register import registering
from lead_conversion_prediction.stages.train import run_train
from lead_conversion_prediction.stages.validate import run_validate
from lead_conversion_prediction.utils.logging import configure_logging, logger_level
from lead_conversion_prediction.utils.processes import die_with_parent

# What the worker imports before it is asked anything: the training and report libraries.
WARM_MODULES = (
    "sklearn.linear_model",
    "sklearn.model_selection",
    "xgboost",
    "sklearn.calibration",
    "scipy.stats",
    "pandera.pandas",
    "lead_conversion_prediction.stages.train",
    "lead_conversion_prediction.stages.evaluate",
)


def run_pipeline(
    paths: Paths,
    params: Params,
    tracking_uri: str,
    raw: Path | None = None,
    accept_changed: bool = False,
    record: bool = True,
    promote: bool = False,
) -> None:
    """Run every stage in order and log each stage's time (see the module's docstring).

    ``promote`` is the release path: the new version takes the champion alias when its lead
    on the evaluation set is real.
    """
    started = time.perf_counter()
    timings: dict[str, float] = {}
    recording = record and is_dvc_project(paths.root)
    candidate_sections(params.train, paths.params_file)  # a bad search stops the run first

    def timed(name: str, step: Callable[[], object]) -> None:
        step_started = time.perf_counter()
        step()
        timings[name] = round(time.perf_counter() - step_started, 2)

    with worker(logger_level()) as pool:
        pool.submit(warm_up)
        timed("data", lambda: run_data(paths, params, raw, accept_changed))
        timed("features", lambda: run_features(paths, params))

        def train() -> None:
            training = pool.submit(run_train, paths, params)
            open_tracking_store(tracking_uri, params.registry.experiment)
            training.result()

        def evaluate_and_register() -> None:
            evaluation = pool.submit(run_evaluate, paths, params)
            with registering(paths, params, tracking_uri, promote, evaluation.result):
                if recording:
                    import dvc.repo  # noqa: F401  (slow to import: done while the report is drawn)
                evaluation.result()

        timed("train", train)
        # Only a model that passes validation is registered.
        timed("validate", lambda: run_validate(paths, params, model=paths.validator_model))
        timed("evaluate & register", evaluate_and_register)
    timed("package", lambda: run_package(paths))
    if recording:
        timed("dvc.lock", lambda: record_in_dvc_lock(paths.root))
    stages = ", ".join(f"{name} {seconds} s" for name, seconds in timings.items())
    logger.info("pipeline: done in {:.2f} s ({})", time.perf_counter() - started, stages)


@contextmanager
def worker(log_level: str) -> Iterator[Executor]:
    """A one-process pool whose worker logs as this process does and dies with it."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(log_level, os.getpid()),
    )
    try:
        yield pool
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _start_worker(log_level: str, parent: int) -> None:
    """Set up a worker: our log format, death with the parent, and a quick exit."""
    import atexit
    import gc

    configure_logging(log_level)
    die_with_parent(parent)
    # Spare the final garbage collection of every loaded module's objects at exit.
    atexit.register(gc.freeze)


def warm_up() -> None:
    """Import what the searches and the report need, and load the report's fonts."""
    import importlib
    from io import BytesIO

    from matplotlib.figure import Figure

    for module in WARM_MODULES:
        importlib.import_module(module)
    figure = Figure(figsize=(1, 1))
    figure.add_subplot().set_title("warm")
    figure.savefig(BytesIO(), format="png")


def open_tracking_store(tracking_uri: str, experiment: str) -> None:
    """Create or open the MLflow store and experiment, and import MLflow's model format."""
    from lead_conversion_prediction.modeling.tracking import configure_tracking

    configure_tracking(tracking_uri, experiment)
    import skops.io  # noqa: F401  (MLflow's model format; slow to import)
