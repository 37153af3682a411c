"""Reasons per lead: each raw input's signed contribution to the model's log-odds.

Contributions are in log-odds (the classifier's margin) and add up, with a base value, to it:
``base + sum(contributions) == margin`` for every row.

- XGBoost trees: SHAP values from XGBoost itself (``Booster.predict(..., pred_contribs=True)``,
  path-dependent TreeSHAP). The base is the model's expected margin over the training rows.
- Linear models: coefficient x (value - reference value) on each model column, where the
  reference is the typical training lead the preprocessing imputes for a row with every input
  missing (mean purchases, time and visits; the most common customer group and onboarding).
  The base is the margin of that reference lead.
- A calibrated model (``CalibratedClassifierCV``): the contributions explain its classifier's
  uncalibrated margin (averaged over the classifiers if it holds several). The calibration is
  monotone, so a contribution that raises the margin never lowers the calibrated probability.

The 12 model columns are mapped back to the raw inputs they come from (``customer_group_2`` ...
``customer_group_9`` to ``customer_group``, ``onboarding_True`` to ``onboarding``) and their
contributions summed, which SHAP values and linear terms both allow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lead_conversion_prediction.exceptions import ConfigError
from lead_conversion_prediction.modeling.calibration import base_classifiers


@dataclass(frozen=True)
class Contributions:
    """Each row's contribution of every raw input to the margin, and the base value."""

    inputs: tuple[str, ...]
    values: np.ndarray  # (rows, inputs), log-odds
    base: np.ndarray  # (rows,), log-odds

    @property
    def margin(self) -> np.ndarray:
        """The margin the contributions explain: base plus their sum."""
        return np.asarray(self.base + self.values.sum(axis=1))


def is_xgboost(estimator: Any) -> bool:
    return type(estimator).__module__.split(".")[0] == "xgboost"


def explain(model: Any, X: pd.DataFrame) -> Contributions:
    """The contributions of each raw input of ``X`` to the lead model's margin.

    ``model`` is the lead Pipeline (preprocessing, then classifier); ``X`` holds raw inputs.
    """
    preprocessor, classifier = model[:-1], model[-1]
    matrix = preprocessor.transform(X)
    columns = [str(name) for name in matrix.columns]
    inputs = tuple(str(name) for name in preprocessor.feature_names_in_)
    values, base = column_contributions(classifier, matrix, preprocessor)
    return Contributions(inputs, values @ input_membership(columns, inputs), base)


def column_contributions(
    classifier: Any, matrix: pd.DataFrame, preprocessor: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Contributions of each model column to the (uncalibrated) margin, and the base value."""
    parts = [_contributions(c, matrix, preprocessor) for c in base_classifiers(classifier)]
    values = np.mean([part[0] for part in parts], axis=0)
    base = np.mean([part[1] for part in parts], axis=0)
    return values, base


def _contributions(
    estimator: Any, matrix: pd.DataFrame, preprocessor: Any
) -> tuple[np.ndarray, np.ndarray]:
    if is_xgboost(estimator):
        from xgboost import DMatrix

        shap = trees_of(estimator).predict(DMatrix(matrix), pred_contribs=True)
        shap = shap.astype(np.float64)
        return shap[:, :-1], shap[:, -1]
    if hasattr(estimator, "coef_") and np.ndim(estimator.coef_) == 2:
        coefficients = np.asarray(estimator.coef_[0], dtype=np.float64)
        reference = reference_row(preprocessor)
        values = (matrix.to_numpy(np.float64) - reference) * coefficients
        base = float(estimator.intercept_[0]) + float(reference @ coefficients)
        return values, np.full(len(matrix), base)
    raise ConfigError(
        f"cannot explain a {type(estimator).__name__}: reasons are given for XGBoost and "
        "linear models"
    )


def trees_of(estimator: Any) -> Any:
    """The fitted trees of an XGBoost model as a fresh Booster.

    A fresh copy, because the estimator's own Booster may hold parameters set after training
    (such as ``n_jobs`` at scoring time, which re-sends its monotone constraints in a form the
    Booster refuses when it configures itself again).
    """
    import os

    from xgboost import Booster

    booster = Booster(model_file=estimator.get_booster().save_raw())
    booster.set_param({"nthread": os.cpu_count() or 1})
    return booster


def reference_row(preprocessor: Any) -> np.ndarray:
    """The model columns of a lead whose every input is missing: the imputed typical lead."""
    inputs = list(preprocessor.feature_names_in_)
    missing = pd.DataFrame({name: [np.nan] for name in inputs}, dtype="float64")
    row: np.ndarray = np.asarray(preprocessor.transform(missing), dtype=np.float64)[0]
    return row


def margin(classifier: Any, matrix: pd.DataFrame) -> np.ndarray:
    """The classifier's uncalibrated margin (log-odds) on the model matrix."""
    margins = []
    for estimator in base_classifiers(classifier):
        if is_xgboost(estimator):
            margins.append(estimator.predict(matrix, output_margin=True))
        else:
            margins.append(estimator.decision_function(matrix))
    return np.asarray(np.mean(margins, axis=0), dtype=np.float64)


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
