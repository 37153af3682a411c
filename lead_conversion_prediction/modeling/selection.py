"""Choosing between models: the best candidate of a run, and whether a model beats the champion.

A run's candidates are compared on the training rows alone: each one, as it ships (its searched
setting, calibrated or not), is cross-validated on the same seeded stratified folds, and the
highest mean score of the selection metric wins. The holdout rows are not an argument here, so
they cannot choose; they stay for the evaluation, the registry and the promotion.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from lead_conversion_prediction.exceptions import ConfigError


def select_best(scores: Mapping[str, float]) -> str:
    """Return the name with the highest score; a tie goes to the name listed first."""
    if not scores:
        raise ConfigError("train.candidates: no candidates to select from")
    best = next(iter(scores))
    for name, score in scores.items():
        if score > scores[best]:
            best = name
    return best


def cross_validated(
    classifiers: Mapping[str, Any],
    X: pd.DataFrame,
    y: pd.Series,
    metric: str,
    folds: int,
    seed: int,
) -> tuple[dict[str, list[float]], dict[str, np.ndarray]]:
    """Each classifier's score per fold on the training rows ``X``, ``y``, and its out-of-fold
    probabilities: a fresh copy of it (same parameters, calibration included) fitted on the
    other folds, scored by the scikit-learn scorer ``metric`` (as ``cross_val_score`` does).
    Every classifier sees the same stratified folds, shuffled with ``seed``."""
    import warnings

    from sklearn.base import clone
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import get_scorer
    from sklearn.model_selection import StratifiedKFold

    splits = list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(X, y))
    scorer = get_scorer(metric)
    scores: dict[str, list[float]] = {}
    probabilities: dict[str, np.ndarray] = {}
    with warnings.catch_warnings():
        # As in the searches: a solver stopping at max_iter on a fold shows in its score.
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, classifier in classifiers.items():
            scores[name], probability = [], np.empty(len(y), dtype=np.float64)
            for fit_rows, test_rows in splits:
                fitted = clone(classifier).fit(X.iloc[fit_rows], y.iloc[fit_rows])
                held_out, outcome = X.iloc[test_rows], y.iloc[test_rows]
                scores[name].append(float(scorer(fitted, held_out, outcome)))
                probability[test_rows] = fitted.predict_proba(held_out)[:, 1]
            probabilities[name] = probability
    return scores, probabilities


def select_by_cross_validation(scores: Mapping[str, list[float]]) -> str:
    """The candidate with the highest mean score over the selection folds (ties: the first
    listed)."""
    return select_best({name: float(np.mean(values)) for name, values in scores.items()})


def is_better(score: float, champion_score: float | None) -> bool:
    """True when there is no champion, or ``score`` beats it strictly."""
    return champion_score is None or score > champion_score
