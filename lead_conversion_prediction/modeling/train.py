"""Search the candidate classifiers (step 11) and assemble the fitted lead model.

A seeded randomized search picks each candidate's hyperparameters by stratified
cross-validation on the training rows' model matrix, and refits the best setting on all of
them. The search spaces come from ``params.yaml``.

The preprocessing is unsupervised (clipping bounds, means, ranges, modes, levels). The features
stage fits it once on the training rows, and the searches cross-validate the classifier on its
output. Refitting it inside every fold gives the same cross-validation scores on this data
(both candidates, to the last digit) and doubles the search time, so it is not done.
The lead model is then one Pipeline: that fitted preprocessing and the chosen classifier.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lead_conversion_prediction.config import (
    LogisticRegressionParams,
    Params,
    RandInt,
    SearchDimension,
    Uniform,
)
from lead_conversion_prediction.exceptions import ConfigError

PREPROCESS = "preprocess"
CLASSIFIER = "classifier"

# Penalties each solver accepts (scikit-learn's table); other pairs are left out of the space.
SOLVER_PENALTIES: dict[str, frozenset[str]] = {
    "lbfgs": frozenset({"l2", "none"}),
    "newton-cg": frozenset({"l2", "none"}),
    "newton-cholesky": frozenset({"l2", "none"}),
    "sag": frozenset({"l2", "none"}),
    "liblinear": frozenset({"l1", "l2"}),
    "saga": frozenset({"l1", "l2", "elasticnet", "none"}),
}


@dataclass
class SearchResult:
    """One searched candidate: its refitted classifier and how the search scored it."""

    name: str
    classifier: Any
    best_params: dict[str, Any]
    cv_scores: list[float]
    settings: list[dict[str, Any]]
    seconds: float

    @property
    def cv_mean(self) -> float:
        return float(np.mean(self.cv_scores))

    @property
    def cv_std(self) -> float:
        return float(np.std(self.cv_scores))


def to_distributions(space: dict[str, SearchDimension]) -> dict[str, Any]:
    """Turn the ``params.yaml`` description of a search space into scipy distributions."""
    from scipy.stats import randint, uniform

    distributions: dict[str, Any] = {}
    for name, dimension in space.items():
        if isinstance(dimension, Uniform):
            low, high = dimension.uniform
            distributions[name] = uniform(loc=low, scale=high - low)
        elif isinstance(dimension, RandInt):
            low, high = dimension.randint
            distributions[name] = randint(low, high + 1)
        else:
            distributions[name] = list(dimension)
    return distributions


def logistic_regression_space(params: LogisticRegressionParams) -> list[dict[str, list[Any]]]:
    """Return the valid (solver, penalty, C) settings as scikit-learn's current parameters.

    A penalty is expressed as ``l1_ratio`` (0 for l2, 1 for l1, between for elastic net) and
    "no penalty" as ``C=inf``. Pairs a solver does not support are left out rather than tried
    and scored as failures.
    """
    ratios = {"l2": 0.0, "l1": 1.0, "elasticnet": params.elasticnet_l1_ratio}
    space: list[dict[str, list[Any]]] = []
    for penalty in params.penalty:
        solvers = [s for s in params.solver if penalty in SOLVER_PENALTIES[s]]
        if not solvers:
            continue
        setting: dict[str, list[Any]] = {"solver": solvers}
        if penalty == "none":
            setting["C"] = [math.inf]
        else:
            setting["C"] = sorted(params.C)
            setting["l1_ratio"] = [ratios[penalty]]
        space.append(setting)
    if not space:
        raise ConfigError("train.logistic_regression: no solver supports any listed penalty")
    return space


def build_candidate(name: str, params: Params) -> tuple[Any, Any, int, int]:
    """Return ``(classifier, search space, n_iter, cv folds)`` of the named candidate."""
    train = params.train
    if name == "xgboost_rf":
        from xgboost import XGBRFClassifier

        classifier: Any = XGBRFClassifier(random_state=train.random_state, n_jobs=1)
        xgb = train.xgboost_rf
        space: Any = to_distributions(xgb.space)
        n_iter, folds = xgb.n_iter, xgb.cv_folds
    elif name == "logistic_regression":
        from sklearn.linear_model import LogisticRegression

        logistic = train.logistic_regression
        classifier = LogisticRegression(
            max_iter=logistic.max_iter, random_state=train.random_state
        )
        space = logistic_regression_space(logistic)
        n_iter, folds = logistic.n_iter, logistic.cv_folds
    elif name == "calibrated_logistic_regression":
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.linear_model import LogisticRegression

        calibrated = train.calibrated_logistic_regression
        base = LogisticRegression(max_iter=calibrated.max_iter, random_state=train.random_state)
        classifier = CalibratedClassifierCV(
            base, method=calibrated.method, cv=calibrated.calibration_folds
        )
        space = [
            {f"estimator__{key}": values for key, values in setting.items()}
            for setting in logistic_regression_space(calibrated)
        ]
        n_iter, folds = calibrated.n_iter, calibrated.cv_folds
    elif name == "hist_gradient_boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier

        boosting = train.hist_gradient_boosting
        classifier = HistGradientBoostingClassifier(
            early_stopping=False, random_state=train.random_state
        )
        space = to_distributions(boosting.space)
        n_iter, folds = boosting.n_iter, boosting.cv_folds
    else:
        raise ConfigError(f"train.candidates: unknown candidate '{name}'")
    return classifier, space, n_iter, folds


def check_metric(metric: str) -> None:
    """Raise :class:`ConfigError` unless ``metric`` is a scikit-learn scorer name."""
    from sklearn.metrics import get_scorer_names

    if metric not in get_scorer_names():
        raise ConfigError(f"train.metric: '{metric}' is not a scikit-learn scorer name")


def search_candidate(name: str, X: pd.DataFrame, y: pd.Series, params: Params) -> SearchResult:
    """Run the seeded randomized search of one candidate on the model matrix ``X``."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import RandomizedSearchCV, StratifiedKFold

    check_metric(params.train.metric)
    classifier, space, n_iter, folds = build_candidate(name, params)
    search = RandomizedSearchCV(
        classifier,
        space,
        n_iter=n_iter,
        scoring=params.train.metric,
        cv=StratifiedKFold(n_splits=folds, shuffle=True, random_state=params.train.random_state),
        random_state=params.train.random_state,
        n_jobs=params.train.n_jobs,
        error_score="raise",
    )
    started = time.perf_counter()
    with warnings.catch_warnings():
        # A few solver settings stop at max_iter on some folds; the CV score already says so.
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X, y)
    seconds = time.perf_counter() - started
    results = search.cv_results_
    best = int(search.best_index_)
    return SearchResult(
        name=name,
        classifier=search.best_estimator_,
        best_params=_plain(search.best_params_),
        cv_scores=[float(results[f"split{fold}_test_score"][best]) for fold in range(folds)],
        settings=[
            {
                "params": _plain(results["params"][i]),
                "cv_mean": float(results["mean_test_score"][i]),
                "cv_std": float(results["std_test_score"][i]),
                "rank": int(results["rank_test_score"][i]),
            }
            for i in range(len(results["params"]))
        ],
        seconds=seconds,
    )


def search_candidates(
    X: pd.DataFrame,
    y: pd.Series,
    params: Params,
    pool: Executor | None = None,
    meanwhile: Callable[[], object] | None = None,
) -> list[SearchResult]:
    """Search every candidate listed in ``train.candidates``; results keep that order.

    With a process ``pool``, the searches run there while ``meanwhile`` runs here.
    """
    names = params.train.candidates
    if pool is None:
        results = [search_candidate(name, X, y, params) for name in names]
        if meanwhile is not None:
            meanwhile()
        return results
    futures = [pool.submit(search_candidate, name, X, y, params) for name in names]
    if meanwhile is not None:
        meanwhile()
    return [future.result() for future in futures]


@contextmanager
def search_pool(log_level: str = "INFO") -> Iterator[Executor]:
    """Yield a one-process pool that starts importing the training libraries at once."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(log_level,),
    )
    try:
        pool.submit(_import_libraries)
        yield pool
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _start_worker(log_level: str) -> None:
    """Set up a worker: our log format, and a quick exit (the parent waits for it)."""
    import atexit
    import gc

    from lead_conversion_prediction.utils.logging import configure_logging

    configure_logging(log_level)
    # Spare the final garbage collection of every loaded module's objects at exit.
    atexit.register(gc.freeze)


def _import_libraries() -> None:
    """Warm a worker: import what the searches and the report need before they are asked."""
    import importlib

    for module in (
        "sklearn.linear_model",
        "sklearn.model_selection",
        "xgboost",
        "sklearn.inspection",
        "scipy.stats",
        "pandera.pandas",
    ):
        importlib.import_module(module)
    # Drawing one small figure loads the fonts the report's figures need.
    from io import BytesIO

    from matplotlib.figure import Figure

    figure = Figure(figsize=(1, 1))
    figure.add_subplot().set_title("warm")
    figure.savefig(BytesIO(), format="png")


def assemble_model(preprocessor: Any, classifier: Any) -> Any:
    """Return the lead model: the fitted preprocessing and a fitted classifier in one Pipeline."""
    from sklearn.pipeline import Pipeline

    return Pipeline([(PREPROCESS, preprocessor), (CLASSIFIER, classifier)])


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    """Make parameter values plain JSON-friendly Python scalars (``inf`` as a string)."""
    plain: dict[str, Any] = {}
    for key, value in params.items():
        item = value.item() if isinstance(value, np.generic) else value
        if isinstance(item, float) and not math.isfinite(item):
            item = str(item)
        plain[key] = item
    return plain
