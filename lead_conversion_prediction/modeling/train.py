"""Search the candidate classifiers (step 11) and assemble the fitted lead model.

A seeded randomized search picks each candidate's hyperparameters by stratified
cross-validation on the training rows' model matrix, and refits the best setting on all of
them; the result is then calibrated where that helps (``modeling/calibration.py``). The
candidates and their spaces come from ``modeling/candidates.py`` and ``params.yaml``; the
choice between them is ``modeling/selection.py``'s, on the rows :func:`selection_sample` gives.
(``train.n_jobs`` above 1 runs fits in worker processes. Not in threads: liblinear draws from
one random state per process, so concurrent fits would change each other's results.)

The preprocessing is unsupervised (clipping bounds, means, ranges, modes, levels). The features
stage fits it once on the training rows, and the searches cross-validate the classifier on its
output. Refitting it inside every fold gives the same cross-validation scores on this data
(both candidates, to the last digit) and doubles the search time, so it is not done.
The lead model is then one Pipeline: that fitted preprocessing and the chosen classifier.

On many training rows (above ``train.scale.rows_above``) each search runs on a stratified
sample of ``train.scale.search_rows`` rows with a capped budget (``search_budget``), the
calibration is chosen on that sample, and only the chosen setting is fitted on all rows: the
search then costs the same at any size, and the rest grows as the rows do. At or below that
size nothing changes: the searches run as their sections say, on every row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from loguru import logger

from lead_conversion_prediction.config import ScaleParams, TrainParams
from lead_conversion_prediction.exceptions import ConfigError
from lead_conversion_prediction.modeling.artifacts import (
    CalibrationCheck,
    SearchBudget,
    SearchSetting,
    plain_params,
)
from lead_conversion_prediction.modeling.calibration import calibrate_where_it_helps
from lead_conversion_prediction.modeling.candidates import build_candidate, candidate_sections

PREPROCESS = "preprocess"
CLASSIFIER = "classifier"


@dataclass
class SearchResult:
    """One searched candidate: its refitted (maybe calibrated) classifier, how the search
    scored it (on the candidate's own folds), the calibration check, and the columns it is
    constrained to increase in (None: it cannot be)."""

    name: str
    classifier: Any
    best_params: dict[str, Any]
    cv_scores: list[float]
    settings: list[SearchSetting]
    calibration: CalibrationCheck
    seconds: float
    budget: SearchBudget
    monotone_increasing: tuple[str, ...] | None = None

    @property
    def cv_mean(self) -> float:
        return float(np.mean(self.cv_scores))

    @property
    def cv_std(self) -> float:
        return float(np.std(self.cv_scores))


def check_metric(metric: str) -> None:
    """Raise :class:`ConfigError` unless ``metric`` is a scikit-learn scorer name."""
    from sklearn.metrics import get_scorer_names

    if metric not in get_scorer_names():
        raise ConfigError(f"train.metric: '{metric}' is not a scikit-learn scorer name")


def search_budget(rows: int, n_iter: int, cv_folds: int, scale: ScaleParams) -> SearchBudget:
    """The search a candidate gets on ``rows`` training rows, given its section's ``n_iter``
    and ``cv_folds``: those, on every row, up to ``scale.rows_above`` rows; above, at most
    ``scale.max_n_iter`` settings and ``scale.max_cv_folds`` folds on ``scale.search_rows``
    rows."""
    if rows <= scale.rows_above:
        return SearchBudget(
            rows=rows, search_rows=rows, n_iter=n_iter, cv_folds=cv_folds, scaled=False
        )
    return SearchBudget(
        rows=rows,
        search_rows=min(rows, scale.search_rows),
        n_iter=min(n_iter, scale.max_n_iter),
        cv_folds=min(cv_folds, scale.max_cv_folds),
        scaled=True,
    )


def search_sample(
    X: pd.DataFrame, y: pd.Series, rows: int, seed: int
) -> tuple[pd.DataFrame, pd.Series]:
    """A seeded sample of ``rows`` rows stratified by the target (all rows if not fewer)."""
    from sklearn.model_selection import train_test_split

    if rows >= len(y):
        return X, y
    X_sample, _, y_sample, _ = train_test_split(
        X, y, train_size=rows, stratify=y, random_state=seed
    )
    return X_sample, y_sample


def selection_sample(
    X: pd.DataFrame, y: pd.Series, params: TrainParams
) -> tuple[pd.DataFrame, pd.Series]:
    """The training rows the candidates are compared on: all of them, or above
    ``train.scale.rows_above`` the stratified sample the searches see (the same seed and size,
    so the same rows), which keeps the comparison's cost that of the searches at any size."""
    if len(y) <= params.scale.rows_above:
        return X, y
    return search_sample(X, y, params.scale.search_rows, params.random_state)


def search_candidate(
    name: str, X: pd.DataFrame, y: pd.Series, params: TrainParams
) -> SearchResult:
    """Run the seeded randomized search of one candidate on the model matrix ``X`` (or a sample
    of it, on many rows: ``search_budget``), then calibrate its best classifier where that
    helps."""
    import warnings

    from sklearn.base import clone
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import RandomizedSearchCV, StratifiedKFold

    check_metric(params.metric)
    section = candidate_sections(params)[name]
    candidate = build_candidate(name, section, params.random_state)
    budget = search_budget(len(y), candidate.n_iter, candidate.cv_folds, params.scale)
    X_search, y_search = X, y
    if budget.scaled:
        X_search, y_search = search_sample(X, y, budget.search_rows, params.random_state)
    search = RandomizedSearchCV(
        candidate.estimator,
        candidate.space,
        n_iter=budget.n_iter,
        scoring=params.metric,
        cv=StratifiedKFold(
            n_splits=budget.cv_folds, shuffle=True, random_state=params.random_state
        ),
        random_state=params.random_state,
        n_jobs=params.n_jobs,
        error_score="raise",
        refit=not budget.scaled,  # on many rows the chosen setting is fitted on all of them
    )
    logger.info(
        "train: searching {}: {} settings x {} folds on {:,} rows",
        name,
        budget.n_iter,
        budget.cv_folds,
        budget.search_rows,
    )
    started = time.perf_counter()
    with warnings.catch_warnings():
        # A few solver settings stop at max_iter on some folds; the CV score already says so.
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X_search, y_search)
        if budget.scaled:
            chosen = clone(candidate.estimator).set_params(**search.best_params_)
            if type(chosen).__module__.startswith("xgboost"):
                chosen.set_params(n_jobs=params.scale.n_jobs)
            classifier, calibration = calibrate_where_it_helps(
                chosen,
                X,
                y,
                params.calibration,
                params.random_state,
                sample=(X_search, y_search),
                holdout=params.scale.calibration_holdout,
            )
        else:
            classifier, calibration = calibrate_where_it_helps(
                search.best_estimator_, X, y, params.calibration, params.random_state
            )
    seconds = time.perf_counter() - started
    results = search.cv_results_
    best = int(search.best_index_)
    return SearchResult(
        name=name,
        classifier=classifier,
        best_params=plain_params(search.best_params_),
        cv_scores=[
            float(results[f"split{fold}_test_score"][best]) for fold in range(budget.cv_folds)
        ],
        settings=[
            SearchSetting(
                params=plain_params(results["params"][i]),
                cv_mean=float(results["mean_test_score"][i]),
                cv_std=float(results["std_test_score"][i]),
                rank=int(results["rank_test_score"][i]),
            )
            for i in range(len(results["params"]))
        ],
        calibration=calibration,
        seconds=seconds,
        budget=budget,
        monotone_increasing=candidate.monotone_increasing,
    )


def search_candidates(X: pd.DataFrame, y: pd.Series, params: TrainParams) -> list[SearchResult]:
    """Search every candidate listed in ``train.candidates``; results keep that order."""
    return [search_candidate(name, X, y, params) for name in params.candidates]


def assemble_model(preprocessor: Any, classifier: Any) -> Any:
    """Return the lead model: the fitted preprocessing and a fitted classifier in one Pipeline."""
    from sklearn.pipeline import Pipeline

    return Pipeline([(PREPROCESS, preprocessor), (CLASSIFIER, classifier)])
