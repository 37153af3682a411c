"""Score a fitted model on held-out rows: the metrics every run reports."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

METRIC_NAMES = ("accuracy", "f1_weighted", "roc_auc", "pr_auc", "brier")


def positive_probability(model: Any, X: pd.DataFrame) -> np.ndarray:
    """Return the model's probability of the positive class (converted), within [0, 1]."""
    probabilities = np.asarray(model.predict_proba(X))[:, 1]
    # Regression objectives of XGBoost can stray slightly outside [0, 1].
    return np.clip(probabilities.astype(np.float64), 0.0, 1.0)


def compute_metrics(
    y_true: np.ndarray | pd.Series, probability: np.ndarray, threshold: float = 0.5
) -> dict[str, float]:
    """Return accuracy, weighted F1, ROC-AUC, PR-AUC and Brier score; labels are p > threshold."""
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        brier_score_loss,
        f1_score,
        roc_auc_score,
    )

    truth = np.asarray(y_true).astype(int)
    predicted = (probability > threshold).astype(int)
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "f1_weighted": float(f1_score(truth, predicted, average="weighted")),
        "roc_auc": float(roc_auc_score(truth, probability)),
        "pr_auc": float(average_precision_score(truth, probability)),
        "brier": float(brier_score_loss(truth, probability)),
    }


def holdout_score(model: Any, X: pd.DataFrame, y: pd.Series, metric: str) -> float:
    """Score a fitted model with the named scikit-learn scorer (the selection metric)."""
    from sklearn.metrics import get_scorer

    return float(get_scorer(metric)(model, X, y))


def evaluate_model(model: Any, X: pd.DataFrame, y: pd.Series, metric: str) -> dict[str, Any]:
    """Return the holdout metrics of a fitted model and its score on the selection metric."""
    metrics = compute_metrics(y, positive_probability(model, X))
    return {"metrics": metrics, "score": holdout_score(model, X, y, metric)}
