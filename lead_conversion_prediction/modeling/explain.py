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

TreeSHAP costs each row a walk over every leaf of every tree, which on a million leads takes
minutes. But a tree's SHAP values for a row depend only on which side of each of the tree's
splits the row falls: on the interval its value falls in between the tree's thresholds, for
each feature the tree uses. So :class:`TreeTables` asks XGBoost once for the SHAP values of one
representative row per cell of that grid, boosting round by round (rounds that split on the
same features share one grid), and a lead's values are then looked up in each table and added
(``TREE_TABLE_CELLS`` bounds a table; a model whose rounds need larger ones, such as a forest
of a hundred trees in one round, is explained row by row).
"""

from __future__ import annotations

import threading
import weakref
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
    """Contributions of each model column to the (uncalibrated) margin, and the base value."""
    parts = [_contributions(c, matrix, preprocessor) for c in base_classifiers(classifier)]
    values = np.mean([part[0] for part in parts], axis=0)
    base = np.mean([part[1] for part in parts], axis=0)
    return values, base


def _contributions(
    estimator: Any, matrix: pd.DataFrame, preprocessor: Any
) -> tuple[np.ndarray, np.ndarray]:
    if is_xgboost(estimator):
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


def xgboost_contributions(booster: Any, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """XGBoost's own SHAP values of every row, and the base value."""
    from xgboost import DMatrix

    names = booster.feature_names
    shap = booster.predict(DMatrix(values, feature_names=names), pred_contribs=True)
    shap = np.asarray(shap, dtype=np.float64)
    return shap[:, :-1], shap[:, -1]


TREE_TABLE_CELLS = 1 << 16


@dataclass(frozen=True)
class CellTable:
    """SHAP values of some boosting rounds for each cell of their features' threshold grid."""

    features: np.ndarray  # the model columns the rounds split on
    thresholds: tuple[np.ndarray, ...]  # per feature, its sorted float32 split thresholds
    strides: np.ndarray  # cell = sum(interval number * stride)
    values: np.ndarray  # (cells, features) SHAP values summed over the rounds

    def cells(self, rows: np.ndarray) -> np.ndarray:
        """The cell each row falls in (XGBoost goes left when value < threshold)."""
        cell = np.zeros(len(rows), dtype=np.int64)
        for feature, thresholds, stride in zip(
            self.features, self.thresholds, self.strides, strict=True
        ):
            cell += np.searchsorted(thresholds, rows[:, feature], side="right") * stride
        return cell


@dataclass(frozen=True)
class TreeTables:
    """A tree model's SHAP values as lookup tables over its split grids (module docstring)."""

    tables: tuple[CellTable, ...]
    columns: int
    base: float

    def contributions(self, rows: np.ndarray) -> np.ndarray:
        """The SHAP values of each row (float32 model columns), as XGBoost computes them."""
        values = np.zeros((len(rows), self.columns))
        for table in self.tables:
            values[:, table.features] += table.values[table.cells(rows)]
        return values


_TABLES: weakref.WeakKeyDictionary[Any, TreeTables | None] = weakref.WeakKeyDictionary()
_TABLES_LOCK = threading.Lock()


def tree_tables(estimator: Any) -> TreeTables | None:
    """The lookup tables of a fitted XGBoost model, built once; None if they would be too big."""
    with _TABLES_LOCK:
        if estimator not in _TABLES:
            _TABLES[estimator] = build_tree_tables(trees_of(estimator))
        return _TABLES[estimator]


def build_tree_tables(booster: Any, max_cells: int = TREE_TABLE_CELLS) -> TreeTables | None:
    """Group the booster's rounds by the features they split on and tabulate their SHAP
    values on the grid of their thresholds; None when a round alone needs too many cells."""
    import json

    booster = booster.copy()
    booster.set_param({"nthread": 1})  # many tiny predictions: threads cost more than they give
    model = json.loads(booster.save_raw(raw_format="json"))
    trees = model["learner"]["gradient_booster"]["model"]["trees"]
    per_round = len(trees) // max(booster.num_boosted_rounds(), 1)
    columns = int(model["learner"]["learner_model_param"]["num_feature"])
    groups: list[tuple[dict[int, set[float]], list[int]]] = []
    for round_number in range(booster.num_boosted_rounds()):
        splits: dict[int, set[float]] = {}
        for tree in trees[round_number * per_round : (round_number + 1) * per_round]:
            for left, feature, threshold in zip(
                tree["left_children"], tree["split_indices"], tree["split_conditions"], strict=True
            ):
                if left != -1:
                    splits.setdefault(int(feature), set()).add(float(np.float32(threshold)))
        if not splits:
            continue  # a lone leaf: it moves the base value only
        if _grid_size(splits) > max_cells:
            return None
        group = next(
            (
                g
                for g in groups
                if set(g[0]) == set(splits) and _grid_size(_merged(g[0], splits)) <= max_cells
            ),
            None,
        )
        if group is None:
            groups.append(({f: set(t) for f, t in splits.items()}, [round_number]))
        else:
            for feature, thresholds in splits.items():
                group[0][feature] |= thresholds
            group[1].append(round_number)
    tables = tuple(_tabulate(booster, splits, rounds, columns) for splits, rounds in groups)
    _, base = xgboost_contributions(booster, np.zeros((1, columns), dtype=np.float32))
    return TreeTables(tables, columns, float(base[0]))


def _grid_size(splits: dict[int, set[float]]) -> int:
    size = 1
    for thresholds in splits.values():
        size *= len(thresholds) + 1
    return size


def _merged(first: dict[int, set[float]], second: dict[int, set[float]]) -> dict[int, set[float]]:
    return {feature: first[feature] | second.get(feature, set()) for feature in first}


def _tabulate(
    booster: Any, splits: dict[int, set[float]], rounds: list[int], columns: int
) -> CellTable:
    """One representative row per grid cell, and the rounds' SHAP values for it."""
    from xgboost import DMatrix

    features = np.array(sorted(splits), dtype=np.int64)
    thresholds = tuple(np.array(sorted(splits[f]), dtype=np.float32) for f in features)
    sizes = np.array([len(t) + 1 for t in thresholds], dtype=np.int64)
    strides = np.cumprod(np.concatenate([[1], sizes[:-1]])).astype(np.int64)
    cells = np.arange(int(np.prod(sizes)))
    rows = np.zeros((len(cells), columns), dtype=np.float32)
    for feature, points, size, stride in zip(features, thresholds, sizes, strides, strict=True):
        # interval 0 lies below the first threshold; interval i >= 1 starts at threshold i
        below = points[0] - np.float32(max(1.0, abs(float(points[0]))))
        representatives = np.concatenate([[below], points]).astype(np.float32)
        rows[:, feature] = representatives[(cells // stride) % size]
    grid = DMatrix(rows, feature_names=booster.feature_names, nthread=1)
    values = np.zeros((len(cells), len(features)))
    for round_number in rounds:
        shap = booster[round_number : round_number + 1].predict(grid, pred_contribs=True)
        values += np.asarray(shap, dtype=np.float64)[:, features]
    return CellTable(features, thresholds, strides, values)


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
