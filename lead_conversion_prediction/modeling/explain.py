"""Reasons per lead: each raw input's signed contribution to the model's log-odds.

Contributions are in log-odds and add up, with a base value, to the log-odds of the model's
probability: ``base + sum(contributions) == logit(p)`` for every row.

- Trees (XGBoost, and histogram gradient boosting written as XGBoost trees): SHAP values from
  XGBoost itself (``Booster.predict(..., pred_contribs=True)``, path-dependent TreeSHAP),
  looked up in tables for speed (``modeling/trees.py``). The base is the model's expected
  margin over the training rows.
- Linear models: coefficient x (value - reference value) on each model column, where the
  reference is the typical training lead the preprocessing imputes for a row with every input
  missing (mean purchases, time and visits; the most common customer group and onboarding).
  The base is the margin of that reference lead.
- A calibrated model (``CalibratedClassifierCV``, Platt scaling of its classifier's log-odds,
  ``modeling/calibration.py``): its log-odds are the classifier's times the calibrator's slope
  plus its intercept, so the classifier's contributions are scaled by the slope and the
  intercept is added to the base. A model whose probability is no such function of the
  log-odds (an isotonic calibration, a sigmoid of a probability, several calibrators averaged,
  as models calibrated before this was so may be) is refused: its reasons would not add up.

The 12 model columns are mapped back to the raw inputs they come from (``customer_group_2`` ...
``customer_group_9`` to ``customer_group``, ``onboarding_True`` to ``onboarding``) and their
contributions summed, which SHAP values and linear terms both allow.

:attr:`Contributions.probability` is the model's probability computed from the explained
log-odds in float64. It differs from XGBoost's own float32 ``predict_proba`` by the float32
rounding of that sum only (about 1e-7), and keeps ``logit(p)`` equal to the base plus the
contributions well within 1e-6 where a float32 probability near 0 or 1 could not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lead_conversion_prediction.exceptions import ConfigError
from lead_conversion_prediction.modeling.calibration import is_xgboost, platt_scaling
from lead_conversion_prediction.modeling.trees import (
    is_tree_model,
    tree_tables,
    trees_of,
    xgboost_contributions,
)


@dataclass(frozen=True)
class Contributions:
    """Each row's contribution of every raw input to the log-odds, and the base value."""

    inputs: tuple[str, ...]
    values: np.ndarray  # (rows, inputs), log-odds
    base: np.ndarray  # (rows,), log-odds

    @property
    def margin(self) -> np.ndarray:
        """The log-odds the contributions explain: base plus their sum."""
        return np.asarray(self.base + self.values.sum(axis=1))

    @property
    def probability(self) -> np.ndarray:
        """The model's probability of conversion, from the explained log-odds."""
        from scipy.special import expit

        return np.asarray(expit(self.margin), dtype=np.float64)


def explain(model: Any, X: pd.DataFrame) -> Contributions:
    """The contributions of each raw input of ``X`` to the lead model's log-odds.

    ``model`` is the lead Pipeline (preprocessing, then classifier); ``X`` holds raw inputs.
    """
    return explain_matrix(model, model[:-1].transform(X))


def explain_matrix(model: Any, matrix: pd.DataFrame | np.ndarray) -> Contributions:
    """:func:`explain` for rows already turned into the model matrix by ``model[:-1]``: a
    frame, or the bare array that a scoring model's preprocessing hands XGBoost
    (``scoring.model.hand_arrays``), its columns then named by the preprocessing."""
    preprocessor, classifier = model[:-1], model[-1]
    if not isinstance(matrix, pd.DataFrame):
        matrix = pd.DataFrame(matrix, columns=preprocessor.get_feature_names_out())
    columns = [str(name) for name in matrix.columns]
    inputs = tuple(str(name) for name in preprocessor.feature_names_in_)
    values, base = column_contributions(classifier, matrix, preprocessor)
    return Contributions(inputs, values @ input_membership(columns, inputs), base)


def column_contributions(
    classifier: Any, matrix: pd.DataFrame, preprocessor: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Contributions of each model column to the model's log-odds, and the base value: the
    classifier's, scaled by a calibrator's slope, its intercept added to the base."""
    estimator, slope, intercept = log_odds_scaling(classifier)
    values, base = _contributions(estimator, matrix, preprocessor)
    return values * slope, base * slope + intercept


def log_odds_scaling(classifier: Any) -> tuple[Any, float, float]:
    """The classifier whose log-odds a model scales, and the slope and intercept."""
    try:
        return platt_scaling(classifier)
    except ValueError as problem:
        raise ConfigError(
            f"cannot explain this calibrated model: {problem}, so reasons would not add up to "
            "its log-odds; train it again (lcp train)"
        ) from None


def _contributions(
    estimator: Any, matrix: pd.DataFrame, preprocessor: Any
) -> tuple[np.ndarray, np.ndarray]:
    if is_tree_model(estimator):
        values = matrix.to_numpy(np.float32)
        tables = tree_tables(estimator)
        if tables is not None and not np.isnan(values).any():
            return tables.contributions(values), np.full(len(values), tables.base)
        return xgboost_contributions(trees_of(estimator), values)
    if hasattr(estimator, "coef_") and np.ndim(estimator.coef_) == 2:
        coefficients = np.asarray(estimator.coef_[0], dtype=np.float64)
        reference = reference_row(preprocessor)
        values = (matrix.to_numpy(np.float64) - reference) * coefficients
        base = float(estimator.intercept_[0]) + float(reference @ coefficients)
        return values, np.full(len(matrix), base)
    raise ConfigError(
        f"cannot explain a {type(estimator).__name__}: reasons are given for tree models "
        "(XGBoost, histogram gradient boosting) and linear models"
    )


def reference_row(preprocessor: Any) -> np.ndarray:
    """The model columns of a lead whose every input is missing: the imputed typical lead."""
    inputs = list(preprocessor.feature_names_in_)
    missing = pd.DataFrame({name: [np.nan] for name in inputs}, dtype="float64")
    row: np.ndarray = np.asarray(preprocessor.transform(missing), dtype=np.float64)[0]
    return row


def margin(classifier: Any, matrix: pd.DataFrame) -> np.ndarray:
    """The model's log-odds on the model matrix, as its classifier computes them: XGBoost's
    output margin or the decision function, scaled as a calibrated model scales them."""
    estimator, slope, intercept = log_odds_scaling(classifier)
    if is_xgboost(estimator):
        raw = estimator.predict(matrix, output_margin=True)
    else:
        raw = estimator.decision_function(matrix)
    return np.asarray(raw, dtype=np.float64) * slope + intercept


def input_of(column: str, inputs: tuple[str, ...]) -> str:
    """The raw input a model column comes from: itself, or the input it one-hot encodes."""
    matches = [name for name in inputs if column == name or column.startswith(f"{name}_")]
    if not matches:
        raise ConfigError(f"model column '{column}' comes from none of the inputs {inputs}")
    return max(matches, key=len)


def input_membership(columns: list[str], inputs: tuple[str, ...]) -> np.ndarray:
    """A (columns, inputs) 0/1 matrix: which raw input each model column comes from."""
    membership = np.zeros((len(columns), len(inputs)))
    for row, column in enumerate(columns):
        membership[row, inputs.index(input_of(column, inputs))] = 1.0
    return membership


def top_reasons(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` inputs with the largest absolute contribution of each row, largest first
    (ties in input order): their positions in the inputs, and their contributions."""
    if not 1 <= k <= values.shape[1]:
        raise ConfigError(f"--explain {k}: give 1 to {values.shape[1]} (the model's inputs)")
    order = np.argsort(-np.abs(values), axis=1, kind="stable")[:, :k]
    return order.astype(np.int8), np.take_along_axis(values, order, axis=1)
