"""Score a fitted model on held-out rows: the metrics every run reports, with their uncertainty.

Point estimates come from scikit-learn. Their 95% intervals come from a seeded percentile
bootstrap of the holdout rows; to draw a thousand resamples in milliseconds the metrics are
recomputed on all resamples at once with numpy (the same definitions as scikit-learn's, which
the tests check on the original sample, ties included).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lead_conversion_prediction.modeling.artifacts import Interval

METRIC_NAMES = (
    "accuracy",
    "precision",
    "recall",
    "f1_weighted",
    "roc_auc",
    "pr_auc",
    "brier",
    "ece",
    "log_loss",
)
LOWER_IS_BETTER = frozenset({"brier", "ece", "log_loss"})
# The scikit-learn scorers that are one of these metrics, and the sign that makes it a score.
SCORER_METRICS: dict[str, tuple[str, int]] = {
    "accuracy": ("accuracy", 1),
    "precision": ("precision", 1),
    "recall": ("recall", 1),
    "f1_weighted": ("f1_weighted", 1),
    "roc_auc": ("roc_auc", 1),
    "average_precision": ("pr_auc", 1),
    "neg_brier_score": ("brier", -1),
    "neg_log_loss": ("log_loss", -1),
}
ECE_BINS = 10
_EPS = float(np.finfo(np.float64).eps)


def positive_probability(model: Any, X: pd.DataFrame) -> np.ndarray:
    """Return the model's probability of the positive class (converted), within [0, 1]."""
    if X is not None and len(X) == 0:  # scikit-learn refuses to transform no rows
        return np.zeros(0)
    probabilities = np.asarray(model.predict_proba(X))[:, 1]
    # Regression objectives of XGBoost can stray slightly outside [0, 1].
    return np.clip(probabilities.astype(np.float64), 0.0, 1.0)


def compute_metrics(
    y_true: np.ndarray | pd.Series, probability: np.ndarray, threshold: float
) -> dict[str, float]:
    """Return every metric of ``METRIC_NAMES``; labels are 1 where p > threshold.

    Precision and recall are those of the converting class.
    """
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        brier_score_loss,
        f1_score,
        log_loss,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    truth = np.asarray(y_true).astype(int)
    predicted = (probability > threshold).astype(int)
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "precision": float(precision_score(truth, predicted, zero_division=0)),
        "recall": float(recall_score(truth, predicted, zero_division=0)),
        "f1_weighted": float(f1_score(truth, predicted, average="weighted")),
        "roc_auc": float(roc_auc_score(truth, probability)),
        "pr_auc": float(average_precision_score(truth, probability)),
        "brier": float(brier_score_loss(truth, probability)),
        "ece": expected_calibration_error(truth, probability),
        "log_loss": float(log_loss(truth, probability, labels=[0, 1])),
    }


def calibration_bin(probability: np.ndarray, bins: int = ECE_BINS) -> np.ndarray:
    """The equal-width probability bin of each score: [0, 0.1), [0.1, 0.2), ... [0.9, 1]."""
    return np.minimum((np.asarray(probability) * bins).astype(np.int64), bins - 1)


def calibration_table(
    y: np.ndarray | pd.Series, probability: np.ndarray, bins: int = ECE_BINS
) -> pd.DataFrame:
    """Per equal-width probability bin (:func:`calibration_bin`, the bins of the ECE): its
    lower ``edge``, its ``rows``, their ``predicted`` mean probability and ``observed``
    conversion rate (NaN in an empty bin)."""
    truth = np.asarray(y).astype(np.float64)
    probability = np.asarray(probability, dtype=np.float64)
    which = calibration_bin(probability, bins)
    rows = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        predicted = np.bincount(which, weights=probability, minlength=bins) / rows
        observed = np.bincount(which, weights=truth, minlength=bins) / rows
    return pd.DataFrame(
        {
            "edge": np.arange(bins) / bins,
            "rows": rows,
            "predicted": predicted,
            "observed": observed,
        }
    )


def expected_calibration_error(
    y: np.ndarray | pd.Series, probability: np.ndarray, bins: int = ECE_BINS
) -> float:
    """Expected calibration error: over equal-width probability bins, the share of rows in
    the bin times the gap between its mean predicted probability and its conversion rate."""
    table = calibration_table(y, probability, bins).query("rows > 0")
    gaps = table["rows"] * (table["predicted"] - table["observed"])
    return float(gaps.abs().sum() / table["rows"].sum())


def metrics_on_resamples(
    y: np.ndarray, probability: np.ndarray, threshold: float
) -> dict[str, np.ndarray]:
    """Every metric of ``METRIC_NAMES`` for each row of 2-D ``y`` and ``probability``.

    Row r of both arrays is one sample (a bootstrap resample); returns one value per row.
    """
    from scipy.stats import rankdata

    y = y.astype(bool)
    p = probability.astype(np.float64)
    n = y.shape[1]
    positives = y.sum(axis=1)
    negatives = n - positives
    predicted = p > threshold
    tp = (predicted & y).sum(axis=1)
    fp = (predicted & ~y).sum(axis=1)
    fn = (~predicted & y).sum(axis=1)
    tn = n - tp - fp - fn
    with np.errstate(divide="ignore", invalid="ignore"):
        f1_positive = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        f1_negative = np.where(2 * tn + fn + fp > 0, 2 * tn / (2 * tn + fn + fp), 0.0)
        ranks = rankdata(p, axis=1)
        roc_auc = ((ranks * y).sum(axis=1) - positives * (positives + 1) / 2) / (
            positives * negatives
        )
        clipped = np.clip(p, _EPS, 1 - _EPS)
        # Per resample and bin, the sum of (probability - outcome): one bincount for all rows.
        cells = np.arange(p.shape[0])[:, None] * ECE_BINS + calibration_bin(p)
        gaps = np.bincount(
            cells.ravel(), weights=(p - y).ravel(), minlength=p.shape[0] * ECE_BINS
        ).reshape(p.shape[0], ECE_BINS)
        return {
            "accuracy": (tp + tn) / n,
            "precision": np.where(tp + fp > 0, tp / (tp + fp), 0.0),
            "recall": np.where(positives > 0, tp / positives, 0.0),
            "f1_weighted": (positives * f1_positive + negatives * f1_negative) / n,
            "roc_auc": roc_auc,
            "pr_auc": _average_precision(y, p, positives),
            "brier": ((p - y) ** 2).mean(axis=1),
            "ece": np.abs(gaps).sum(axis=1) / n,
            "log_loss": -(y * np.log(clipped) + ~y * np.log(1 - clipped)).mean(axis=1),
        }


def _average_precision(y: np.ndarray, p: np.ndarray, positives: np.ndarray) -> np.ndarray:
    """scikit-learn's average precision, row by row: each positive adds the precision at the
    lowest score of its tie group, divided by the number of positives."""
    order = np.argsort(-p, axis=1, kind="stable")
    scores = np.take_along_axis(p, order, axis=1)
    hits = np.take_along_axis(y, order, axis=1)
    tp = np.cumsum(hits, axis=1)
    precision = tp / np.arange(1, p.shape[1] + 1)
    ends = np.ones_like(hits)
    ends[:, :-1] = scores[:, 1:] != scores[:, :-1]
    position = np.where(ends, np.arange(p.shape[1]), p.shape[1] - 1)
    group_end = np.minimum.accumulate(position[:, ::-1], axis=1)[:, ::-1]
    precision_at_end = np.take_along_axis(precision, group_end, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        result: np.ndarray = (hits * precision_at_end).sum(axis=1) / positives
    return result


def bootstrap_draws(
    y: np.ndarray | pd.Series,
    probabilities: dict[str, np.ndarray],
    threshold: float,
    resamples: int = 1000,
    seed: int = 42,
) -> dict[str, dict[str, np.ndarray]]:
    """Every metric of each model on the same ``resamples`` bootstrap resamples of the rows.

    Drawing the rows once for all models makes their values paired: a difference between two
    models is measured on the same rows in every resample.
    """
    truth = np.asarray(y).astype(int)
    rows = _resample_rows(len(truth), resamples, seed)
    return {
        name: metrics_on_resamples(truth[rows], probability[rows], threshold)
        for name, probability in probabilities.items()
    }


def percentile_interval(draws: np.ndarray, confidence: float = 0.95) -> Interval:
    """The central ``confidence`` share of the draws (missing draws left out)."""
    tail = 100 * (1 - confidence) / 2
    low, high = np.nanpercentile(draws, [tail, 100 - tail])
    return Interval(low=float(low), high=float(high))


def difference_interval(
    y: np.ndarray | pd.Series,
    first: np.ndarray,
    second: np.ndarray,
    metric: str,
    threshold: float,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 42,
) -> Interval:
    """Percentile interval of ``metric(first) - metric(second)`` on paired resamples."""
    draws = bootstrap_draws(y, {"first": first, "second": second}, threshold, resamples, seed)
    return percentile_interval(draws["first"][metric] - draws["second"][metric], confidence)


def _resample_rows(n: int, resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def holdout_score(model: Any, X: pd.DataFrame, y: pd.Series, metric: str) -> float:
    """Score a fitted model with the named scikit-learn scorer (the selection metric)."""
    from sklearn.metrics import get_scorer

    return float(get_scorer(metric)(model, X, y))


def evaluate_model(
    model: Any, X: pd.DataFrame, y: pd.Series, metric: str, threshold: float
) -> tuple[dict[str, float], float]:
    """Return the holdout metrics of a fitted model (labels above ``threshold``) and its score
    on the selection metric."""
    return (
        compute_metrics(y, positive_probability(model, X), threshold),
        holdout_score(model, X, y, metric),
    )
