"""Calibrate a searched classifier where that helps, judged on the training rows alone.

The classifier's out-of-fold scores on the training rows (stratified folds, seeded) are
calibrated by each method in turn, the calibrator itself cross-fitted on those scores, and the
log-loss of the results is compared with that of the uncalibrated probabilities. The method
with the lowest log-loss is kept only if it beats them; the classifier is then wrapped in
scikit-learn's ``CalibratedClassifierCV`` (``ensemble=False``: one classifier refitted on all
training rows, one calibrator fitted on the out-of-fold scores), which predicts on the same 12
columns. The holdout rows are never seen.

Both methods are monotone in the classifier's score, so the calibrated model ranks leads as
the classifier does (isotonic calibration may merge neighbouring scores into ties).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lead_conversion_prediction.config import CalibrationParams
from lead_conversion_prediction.modeling.artifacts import CalibrationCheck

UNCALIBRATED = "none"


def classifier_scores(classifier: Any, X: pd.DataFrame, y: pd.Series, folds: Any) -> np.ndarray:
    """Out-of-fold scores the calibrator is fitted on: the decision function where the
    classifier has one (as ``CalibratedClassifierCV`` uses), else the positive probability."""
    from sklearn.base import clone
    from sklearn.model_selection import cross_val_predict

    method = "decision_function" if hasattr(classifier, "decision_function") else "predict_proba"
    scores = cross_val_predict(clone(classifier), X, y, cv=folds, method=method)
    return np.asarray(scores if scores.ndim == 1 else scores[:, 1], dtype=np.float64)


def score_probability(classifier: Any, scores: np.ndarray) -> np.ndarray:
    """The uncalibrated probability behind ``scores`` (a decision function is a log-odds)."""
    if hasattr(classifier, "decision_function"):
        return np.asarray(1.0 / (1.0 + np.exp(-scores)))
    return scores


def cross_fitted_calibration(
    scores: np.ndarray, y: np.ndarray, method: str, folds: Any
) -> np.ndarray:
    """Calibrated probabilities of every row, each from a calibrator fitted on the other folds."""
    calibrated = np.empty(len(scores), dtype=np.float64)
    for fit_rows, apply_rows in folds.split(scores.reshape(-1, 1), y):
        calibrator = fit_calibrator(scores[fit_rows], y[fit_rows], method)
        calibrated[apply_rows] = apply_calibrator(calibrator, scores[apply_rows])
    return calibrated


def fit_calibrator(scores: np.ndarray, y: np.ndarray, method: str) -> Any:
    """Platt scaling (a logistic regression on the score) or isotonic regression."""
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        return IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(scores, y)
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=np.inf).fit(scores.reshape(-1, 1), y)


def apply_calibrator(calibrator: Any, scores: np.ndarray) -> np.ndarray:
    if hasattr(calibrator, "predict_proba"):
        return np.asarray(calibrator.predict_proba(scores.reshape(-1, 1))[:, 1])
    return np.asarray(calibrator.predict(scores), dtype=np.float64)


def calibrate_where_it_helps(
    classifier: Any,
    X: pd.DataFrame,
    y: pd.Series,
    params: CalibrationParams,
    seed: int,
    sample: tuple[pd.DataFrame, pd.Series] | None = None,
    holdout: float | None = None,
) -> tuple[Any, CalibrationCheck]:
    """Return the classifier, calibrated if that lowers its cross-validated log-loss, and the
    log-loss of each option.

    ``classifier`` is the search's refitted best estimator; a calibrated one is refitted with
    the same parameters inside ``CalibratedClassifierCV``. With ``sample`` (some of the rows of
    ``X`` and ``y``, as a search on many rows sees them), the choice is made on the sample
    alone, and ``classifier`` (then only its parameters count) is fitted on all rows of ``X``,
    calibrated or not as chosen. With ``holdout`` as well (a share of the rows), a calibrated
    classifier is fitted once, on the other rows, and its calibrator on that stratified share:
    one fit instead of one per fold and a refit, for a classifier that sees slightly fewer rows.
    """
    from sklearn.base import clone
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedKFold

    if not params.methods:
        if sample is not None:
            classifier = clone(classifier).fit(X, y)
        return classifier, CalibrationCheck(method=UNCALIBRATED, cv_log_loss={})
    X_check, y_check = sample if sample is not None else (X, y)
    truth = np.asarray(y_check).astype(int)
    folds = StratifiedKFold(n_splits=params.cv_folds, shuffle=True, random_state=seed)
    scores = classifier_scores(classifier, X_check, y_check, folds)
    losses = {UNCALIBRATED: _log_loss(log_loss, truth, score_probability(classifier, scores))}
    for method in params.methods:
        calibrated = cross_fitted_calibration(scores, truth, method, folds)
        losses[method] = _log_loss(log_loss, truth, calibrated)
    best = min(losses, key=lambda name: losses[name])  # a tie keeps the first: uncalibrated
    check = CalibrationCheck(method=best, cv_log_loss=losses)
    if best == UNCALIBRATED:
        if sample is not None:
            classifier = clone(classifier).fit(X, y)
        return classifier, check
    if sample is not None and holdout is not None:
        from sklearn.model_selection import StratifiedShuffleSplit

        split = StratifiedShuffleSplit(n_splits=1, test_size=holdout, random_state=seed)
        held_out = CalibratedClassifierCV(clone(classifier), method=best, cv=split, ensemble=True)
        return held_out.fit(X, y), check
    calibrated_classifier = CalibratedClassifierCV(
        clone(classifier), method=best, cv=folds, ensemble=False
    )
    return calibrated_classifier.fit(X, y), check


def _log_loss(log_loss: Any, truth: np.ndarray, probability: np.ndarray) -> float:
    return round(float(log_loss(truth, np.clip(probability, 1e-15, 1 - 1e-15))), 6)


def base_classifiers(classifier: Any) -> list[Any]:
    """The fitted classifiers whose scores a model calibrates; the model itself if it does not."""
    calibrated = getattr(classifier, "calibrated_classifiers_", None)
    if calibrated is None:
        return [classifier]
    return [part.estimator for part in calibrated]
