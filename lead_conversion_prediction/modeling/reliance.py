"""What the model relies on: each raw input alone, and the best one as a model of its own.

Each input of the model (``schema.MODEL_INPUT_COLUMNS``) is turned into a score of the leads
with what the training rows say of it alone: a number by its value, turned round where it
falls as the training rows convert (a missing value gets the training mean); a category by its
level's conversion rate on the training rows (a missing or unseen level gets the overall rate).
The input whose score has the highest ROC-AUC on the training rows becomes a baseline model: an
isotonic regression of the outcome on that score, fitted on the training rows. On the holdout
rows the baseline's metrics are set beside the chosen model's, with paired bootstrap intervals
of their differences. Where the model ranks no better than the one input, that input carries
it, and when it is measured, relative to the outcome, decides whether the model can be trusted
on new leads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lead_conversion_prediction.config import EvaluateParams
from lead_conversion_prediction.modeling.artifacts import Interval, Reliance, SingleInput
from lead_conversion_prediction.modeling.evaluate import (
    bootstrap_draws,
    compute_metrics,
    percentile_interval,
)
from lead_conversion_prediction.schema import CATEGORICAL_FEATURES, MODEL_INPUT_COLUMNS

# The input the report's figure sets the model's probability against.
FIGURE_INPUT = "n_visits"
BY_VALUE = "its value"
BY_VALUE_REVERSED = "its value, reversed"
BY_LEVEL = "its level's conversion rate (training rows)"


@dataclass(frozen=True)
class SingleInputScore:
    """One input's score of the leads, learned from the training rows alone."""

    name: str
    scored_by: str
    fill: float = 0.0
    rates: dict[str, float] = field(default_factory=dict)
    base_rate: float = 0.0

    def score(self, X: pd.DataFrame) -> np.ndarray:
        """The score of each row of ``X``: higher where the training rows converted more."""
        values = X[self.name]
        if self.scored_by == BY_LEVEL:
            levels = _levels(values).map(self.rates)
            return np.asarray(levels.astype("float64").fillna(self.base_rate), dtype=np.float64)
        numbers = np.asarray(values.astype("float64").fillna(self.fill), dtype=np.float64)
        return -numbers if self.scored_by == BY_VALUE_REVERSED else numbers


def _levels(values: pd.Series) -> pd.Series:
    """A category's levels as text, so that 4, "4" and True, "True" are one level each."""
    return values.astype("string")


def fit_single_input(name: str, X: pd.DataFrame, y: pd.Series) -> SingleInputScore:
    """The score of input ``name``, learned from the training rows ``X``, ``y``."""
    from sklearn.metrics import roc_auc_score

    truth = np.asarray(y).astype(int)
    if name in CATEGORICAL_FEATURES:
        rates = pd.Series(truth, index=X.index).groupby(_levels(X[name])).mean()
        return SingleInputScore(
            name,
            BY_LEVEL,
            rates={str(level): float(rate) for level, rate in rates.items()},
            base_rate=float(truth.mean()),
        )
    numbers = X[name].astype("float64")
    fill = float(numbers.mean()) if numbers.notna().any() else 0.0
    auc = roc_auc_score(truth, numbers.fillna(fill))
    return SingleInputScore(name, BY_VALUE if auc >= 0.5 else BY_VALUE_REVERSED, fill=fill)


def measure_reliance(
    train: tuple[pd.DataFrame, pd.Series],
    holdout: tuple[pd.DataFrame, pd.Series],
    model_probability: np.ndarray,
    threshold: float,
    params: EvaluateParams,
) -> Reliance:
    """Each input's ROC-AUC alone on the training and holdout rows, and the best one's isotonic
    fit (training rows) beside the chosen model's holdout ``model_probability``."""
    from sklearn.isotonic import IsotonicRegression
    from sklearn.metrics import roc_auc_score

    (X_train, y_train), (X_test, y_test) = train, holdout
    truth_train, truth_test = np.asarray(y_train).astype(int), np.asarray(y_test).astype(int)
    scores = {name: fit_single_input(name, X_train, y_train) for name in MODEL_INPUT_COLUMNS}
    inputs = {
        name: SingleInput(
            scored_by=score.scored_by,
            train_roc_auc=round(float(roc_auc_score(truth_train, score.score(X_train))), 6),
            holdout_roc_auc=round(float(roc_auc_score(truth_test, score.score(X_test))), 6),
        )
        for name, score in scores.items()
    }
    best = max(inputs, key=lambda name: inputs[name].train_roc_auc)  # ties: the first listed
    isotonic = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
    isotonic.fit(scores[best].score(X_train), truth_train)
    baseline = np.asarray(isotonic.predict(scores[best].score(X_test)), dtype=np.float64)
    draws = bootstrap_draws(
        truth_test,
        {"model": model_probability, "baseline": baseline},
        threshold,
        params.resamples,
        params.random_state,
    )
    model = compute_metrics(truth_test, model_probability, threshold)
    alone = compute_metrics(truth_test, baseline, threshold)
    return Reliance(
        inputs=inputs,
        baseline_input=best,
        baseline={key: round(value, 6) for key, value in alone.items()},
        baseline_ci={
            key: _rounded(percentile_interval(values, params.confidence))
            for key, values in draws["baseline"].items()
        },
        model_minus_baseline={key: round(model[key] - alone[key], 6) for key in alone},
        model_minus_baseline_ci={
            key: _rounded(
                percentile_interval(
                    draws["model"][key] - draws["baseline"][key], params.confidence
                )
            )
            for key in alone
        },
    )


def _rounded(interval: Interval) -> Interval:
    return Interval(low=round(interval.low, 6), high=round(interval.high, 6))


def share_by_value(values: np.ndarray, y: np.ndarray, probability: np.ndarray) -> pd.DataFrame:
    """Per distinct value of an input (missing values left out): its rows, the share of them
    that converted, and the model's mean probability for them, in the value's order."""
    frame = pd.DataFrame(
        {
            "value": np.asarray(values, dtype=np.float64),
            "converted": np.asarray(y, dtype=np.float64),
            "probability": np.asarray(probability, dtype=np.float64),
        }
    ).dropna(subset=["value"])
    grouped = frame.groupby("value", sort=True)
    return pd.DataFrame(
        {
            "rows": grouped.size(),
            "converted_share": grouped["converted"].mean(),
            "mean_probability": grouped["probability"].mean(),
        }
    ).reset_index()


def describe_reliance(reliance: Reliance, confidence: float) -> str:
    """The model card's verdict on the chosen model against its best single input."""
    name = f"`{reliance.baseline_input}`"
    lead = reliance.model_minus_baseline["roc_auc"]
    interval = reliance.model_minus_baseline_ci["roc_auc"]
    measured = (
        f"The model's ROC-AUC lead over the isotonic fit on {name} alone is {lead:+.4f} "
        f"({confidence:.0%} interval {interval.low:+.4f} to {interval.high:+.4f})"
    )
    if not reliance.matched:
        return (
            f"The model ranks leads better than its best single input, {name}. {measured}: "
            "the interval is above zero, so the other inputs add to it."
        )
    if interval.high < 0:
        finding = (
            f"**{name} alone ranks leads better than the model.** {measured}: the interval "
            "lies below zero."
        )
    else:
        finding = (
            f"**{name} alone matches the model.** {measured}: the interval includes zero, so "
            f"on these rows the model ranks leads no better than {name} does by itself."
        )
    return (
        f"{finding} A question for the data's owner: when is {name} measured, relative to "
        "the outcome? If it is counted after signup, up to the conversion, the model reads a "
        "trace of the outcome itself (leakage from the future), and on new signups it will "
        "rank worse than these figures say."
    )
