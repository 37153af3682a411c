"""Calibrate a searched classifier where that helps, judged on the training rows alone.

Calibration is Platt scaling on the classifier's log-odds: ``p = sigmoid(slope * log_odds +
intercept)``. The log-odds are the decision function of the logistic regression and of
histogram gradient boosting, and XGBoost's output margin. The classifier's out-of-fold
log-odds on the training rows (stratified folds, seeded) are scaled by a calibrator itself
cross-fitted on them, and the log-loss of the result is compared with that of the classifier's
own out-of-fold probabilities. Platt scaling is kept only if it beats them; the classifier is
then wrapped in scikit-learn's ``CalibratedClassifierCV`` (``method="sigmoid"``,
``ensemble=False``: one classifier refitted on all training rows, one calibrator fitted on the
out-of-fold log-odds), which predicts on the same 12 columns. The holdout rows are never seen.

``CalibratedClassifierCV`` scales a classifier's decision function where it has one, else the
positive column of its ``predict_proba``. XGBoost has no decision function, and its probability
is not its log-odds, so the calibrated XGBoost model is the searched setting with the objective
``binary:logitraw``: the same logistic loss, but its ``predict_proba`` column is the margin. Its
``base_score`` is 0 (even odds) rather than the base rate XGBoost would put in a probability's
place; the calibrator's intercept absorbs the difference. Every calibrated model therefore
holds scikit-learn and XGBoost classes only (``model.pkl`` loads where only they are
installed), is refitted as a whole by ``clone`` (cross-validated as it ships), and its log-odds
are the classifier's times the calibrator's slope plus its intercept: its reasons add up
(``modeling/explain.py``). Isotonic calibration is not offered: a step function of the log-odds
cannot be split into contributions that add up to it.

Platt scaling is monotone in the log-odds (a positive slope), so the calibrated model ranks
leads as its classifier does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lead_conversion_prediction.config import CalibrationParams
from lead_conversion_prediction.modeling.artifacts import CalibrationCheck

UNCALIBRATED = "none"
PLATT = "sigmoid"
# XGBoost's objective whose prediction is the margin of the logistic loss, untransformed.
RAW_MARGIN_OBJECTIVE = "binary:logitraw"


def is_xgboost(estimator: Any) -> bool:
    """True for a classifier of the XGBoost library."""
    return type(estimator).__module__.split(".")[0] == "xgboost"


def log_odds_classifier(classifier: Any) -> Any | None:
    """An unfitted copy of ``classifier`` whose calibrated score is its log-odds: itself where
    it has a decision function; an XGBoost model of the logistic loss as ``binary:logitraw``
    (its probability column is then the margin); None when it has no log-odds to scale."""
    from sklearn.base import clone

    if hasattr(classifier, "decision_function"):
        return clone(classifier)
    if is_xgboost(classifier) and classifier.get_params().get("objective") == "binary:logistic":
        return clone(classifier).set_params(objective=RAW_MARGIN_OBJECTIVE, base_score=0.0)
    return None


def scores_log_odds(estimator: Any) -> bool:
    """True when ``CalibratedClassifierCV`` would calibrate ``estimator``'s log-odds."""
    if hasattr(estimator, "decision_function"):
        return True
    return is_xgboost(estimator) and estimator.get_params().get("objective") == (
        RAW_MARGIN_OBJECTIVE
    )


def out_of_fold_scores(classifier: Any, X: pd.DataFrame, y: pd.Series, folds: Any) -> np.ndarray:
    """Out-of-fold scores as ``CalibratedClassifierCV`` calibrates them: the decision function
    where the classifier has one, else the positive column of ``predict_proba``."""
    from sklearn.model_selection import cross_val_predict

    method = "decision_function" if hasattr(classifier, "decision_function") else "predict_proba"
    scores = cross_val_predict(classifier, X, y, cv=folds, method=method)
    return np.asarray(scores if scores.ndim == 1 else scores[:, 1], dtype=np.float64)


def cross_fitted_calibration(
    log_odds: np.ndarray, y: np.ndarray, method: str, folds: Any
) -> np.ndarray:
    """Calibrated probabilities of every row, each from a calibrator fitted on the other folds."""
    calibrated = np.empty(len(log_odds), dtype=np.float64)
    for fit_rows, apply_rows in folds.split(log_odds.reshape(-1, 1), y):
        calibrator = fit_calibrator(log_odds[fit_rows], y[fit_rows], method)
        calibrated[apply_rows] = apply_calibrator(calibrator, log_odds[apply_rows])
    return calibrated


def fit_calibrator(log_odds: np.ndarray, y: np.ndarray, method: str = PLATT) -> Any:
    """Platt scaling: a logistic regression on the log-odds, without a penalty."""
    from sklearn.linear_model import LogisticRegression

    if method != PLATT:
        raise ValueError(f"unknown calibration method '{method}' (known: {PLATT})")
    return LogisticRegression(C=np.inf).fit(log_odds.reshape(-1, 1), y)


def apply_calibrator(calibrator: Any, log_odds: np.ndarray) -> np.ndarray:
    return np.asarray(calibrator.predict_proba(log_odds.reshape(-1, 1))[:, 1])


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
    the same parameters inside ``CalibratedClassifierCV`` (as ``log_odds_classifier`` gives
    it). With ``sample`` (some of the rows of ``X`` and ``y``, as a search on many rows sees
    them), the choice is made on the sample alone, and ``classifier`` (then only its parameters
    count) is fitted on all rows of ``X``, calibrated or not as chosen. With ``holdout`` as well
    (a share of the rows), a calibrated classifier is fitted once, on the other rows, and its
    calibrator on that stratified share: one fit instead of one per fold and a refit, for a
    classifier that sees slightly fewer rows.
    """
    from sklearn.base import clone
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedKFold

    def uncalibrated() -> Any:
        return clone(classifier).fit(X, y) if sample is not None else classifier

    scaled = log_odds_classifier(classifier)
    if not params.methods or scaled is None:
        return uncalibrated(), CalibrationCheck(method=UNCALIBRATED, cv_log_loss={})
    X_check, y_check = sample if sample is not None else (X, y)
    truth = np.asarray(y_check).astype(int)
    folds = StratifiedKFold(n_splits=params.cv_folds, shuffle=True, random_state=seed)
    log_odds = out_of_fold_scores(scaled, X_check, y_check, folds)
    if hasattr(classifier, "decision_function"):  # the same model: its own log-odds
        probability = 1.0 / (1.0 + np.exp(-log_odds))
    else:
        probability = out_of_fold_scores(clone(classifier), X_check, y_check, folds)
    losses = {UNCALIBRATED: _log_loss(log_loss, truth, probability)}
    for method in params.methods:
        calibrated = cross_fitted_calibration(log_odds, truth, method, folds)
        losses[method] = _log_loss(log_loss, truth, calibrated)
    best = min(losses, key=lambda name: losses[name])  # a tie keeps the first: uncalibrated
    if best != UNCALIBRATED and fit_calibrator(log_odds, truth, best).coef_[0, 0] <= 0:
        best = UNCALIBRATED  # a scaling that would reverse the ranking is no calibration
    check = CalibrationCheck(method=best, cv_log_loss=losses)
    if best == UNCALIBRATED:
        return uncalibrated(), check
    if sample is not None and holdout is not None:
        from sklearn.model_selection import StratifiedShuffleSplit

        split = StratifiedShuffleSplit(n_splits=1, test_size=holdout, random_state=seed)
        held_out = CalibratedClassifierCV(scaled, method=best, cv=split, ensemble=True)
        return held_out.fit(X, y), check
    calibrated_classifier = CalibratedClassifierCV(scaled, method=best, cv=folds, ensemble=False)
    return calibrated_classifier.fit(X, y), check


def _log_loss(log_loss: Any, truth: np.ndarray, probability: np.ndarray) -> float:
    return round(float(log_loss(truth, np.clip(probability, 1e-15, 1 - 1e-15))), 6)


def base_classifiers(classifier: Any) -> list[Any]:
    """The fitted classifiers whose scores a model calibrates; the model itself if it does not."""
    calibrated = getattr(classifier, "calibrated_classifiers_", None)
    if calibrated is None:
        return [classifier]
    return [part.estimator for part in calibrated]


def platt_scaling(classifier: Any) -> tuple[Any, float, float]:
    """The classifier whose log-odds a model scales, and the calibrator's slope and intercept:
    the model itself with (1, 0), or a ``CalibratedClassifierCV``'s one classifier and its
    sigmoid's. Models whose probability is no linear function of a classifier's log-odds
    (isotonic, several calibrators averaged, a sigmoid of a probability) raise
    ``ValueError`` saying why."""
    parts = getattr(classifier, "calibrated_classifiers_", None)
    if parts is None:
        return classifier, 1.0, 0.0
    if len(parts) != 1:
        raise ValueError(f"it averages {len(parts)} calibrated classifiers")
    part = parts[0]
    if part.method != PLATT:
        raise ValueError(f"it is calibrated by {part.method}, not by Platt scaling")
    if not scores_log_odds(part.estimator):
        raise ValueError("it is calibrated on its classifier's probability, not its log-odds")
    calibrator = part.calibrators[0]
    # scikit-learn's sigmoid: p = 1 / (1 + exp(a * score + b))
    return part.estimator, -float(calibrator.a_), -float(calibrator.b_)
