"""``lcp pipeline``: every stage in order, in one process and one worker, with their timings.

Both cores work. A worker process imports the training libraries while this process prepares
the data; then it runs the train stage while this process opens the MLflow store (creating it
takes seconds); then, once this process has validated the new model, it runs the evaluate
stage while this process logs and registers the candidates, and the report is attached to the
run once drawn. The outputs are the same as
stage by stage. In a DVC project the outputs are then recorded in ``dvc.lock``, so that
``dvc repro`` finds every stage up to date. The closing summary gives each stage's time as its
own "done in" line does; the total also counts the waits between them.
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
from lead_conversion_prediction.utils.logging import (
    configure_logging,
    logger_level,
    stage_seconds,
)
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
# What the pipeline says the worker does while the train stage waits for it.
WARMING_UP = "scikit-learn, XGBoost and matplotlib (the train and evaluate stages' libraries)"


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
    timings: dict[str, float] = {}  # each stage's own "done in" time: one measurement
    recording = record and is_dvc_project(paths.root)
    candidate_sections(params.train, paths.params_file)  # a bad search stops the run first

    def here(name: str, step: Callable[[], object]) -> None:
        step()
        timings[name] = stage_seconds(name)

    with worker(logger_level()) as pool:
        warming = pool.submit(warm_up)
        here("data", lambda: run_data(paths, params, raw, accept_changed))
        here("features", lambda: run_features(paths, params))
        if not warming.done():
            logger.info("train: waiting for the worker to import {}", WARMING_UP)
        training = pool.submit(in_worker, "train", run_train, paths, params)
        open_tracking_store(tracking_uri, params.registry.experiment)
        timings["train"] = training.result()
        # Only a model that passes validation is registered.
        here("validate", lambda: run_validate(paths, params, model=paths.validator_model))
        evaluation = pool.submit(in_worker, "evaluate", run_evaluate, paths, params)
        with registering(paths, params, tracking_uri, promote, evaluation.result):
            if recording:
                import dvc.repo  # noqa: F401  (slow to import: done while the report is drawn)
            timings["evaluate"] = evaluation.result()
        timings["register"] = stage_seconds("register")
    here("package", lambda: run_package(paths))
    if recording:
        here("dvc.lock", lambda: record_in_dvc_lock(paths.root))
    stages = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in timings.items())
    logger.info("pipeline: done in {:.2f} s ({})", time.perf_counter() - started, stages)


def in_worker(name: str, stage: Callable[..., object], *arguments: object) -> float:
    """Run a stage in the worker; return its time, as its "done in" line gave it."""
    stage(*arguments)
    return stage_seconds(name)


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
