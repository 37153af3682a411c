"""The trees of a fitted tree model as an XGBoost Booster, and their SHAP values, fast.

XGBoost models give their own trees. Histogram gradient boosting's trees (scikit-learn) are
written into a Booster of the same log-odds: each split ``x <= t`` becomes XGBoost's
``x < c``, ``c`` the next float32 above ``t``'s (XGBoost compares float32 values: the two agree
but on values within a float32 rounding of ``t`` and not equal to it), each node's sample count
its cover, the baseline its base score. XGBoost then gives the SHAP values
of either (``Booster.predict(..., pred_contribs=True)``, path-dependent TreeSHAP).

TreeSHAP costs each row a walk over every leaf of every tree, which on a million leads takes
minutes. But a tree's SHAP values for a row depend only on which side of each of the tree's
splits the row falls: on the interval its value falls in between the tree's thresholds, for
each feature the tree uses. So :class:`TreeTables` asks XGBoost once for the SHAP values of one
representative row per cell of that grid, boosting round by round (rounds that split on the
same features share one grid), and a lead's values are then looked up in each table and added
(``TREE_TABLE_CELLS`` bounds a table; a model whose rounds need larger ones, such as a forest
of a hundred trees in one round, is explained row by row). Round by round, the values are
summed in float64: a lead's base plus its values is the model's log-odds without the rounding
of XGBoost's float32 sum over the trees.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

TREE_TABLE_CELLS = 1 << 16
_ROOT_PARENT = 2147483647  # XGBoost's parent of a tree's root


def is_tree_model(estimator: Any) -> bool:
    """True for a model whose trees :func:`trees_of` gives: XGBoost, histogram boosting."""
    return hasattr(estimator, "get_booster") or _is_hist_gradient_boosting(estimator)


def _is_hist_gradient_boosting(estimator: Any) -> bool:
    return hasattr(estimator, "_predictors") and hasattr(estimator, "_baseline_prediction")


def trees_of(estimator: Any) -> Any:
    """The fitted trees of a tree model as a fresh Booster, on every core.

    A fresh copy, because an XGBoost estimator's own Booster may hold parameters set after
    training (such as ``n_jobs`` at scoring time, which re-sends its monotone constraints in a
    form the Booster refuses when it configures itself again).
    """
    import os

    booster = _model(estimator)[0].copy()
    booster.set_param({"nthread": os.cpu_count() or 1})
    return booster


def tree_tables(estimator: Any) -> TreeTables | None:
    """The lookup tables of a fitted tree model, built once; None if they would be too big."""
    return _model(estimator)[1]


_MODELS: weakref.WeakKeyDictionary[Any, tuple[Any, TreeTables | None]] = (
    weakref.WeakKeyDictionary()
)
_MODELS_LOCK = threading.Lock()


def _model(estimator: Any) -> tuple[Any, TreeTables | None]:
    """The estimator's Booster and lookup tables, built once per estimator."""
    from xgboost import Booster

    with _MODELS_LOCK:
        if estimator not in _MODELS:
            if hasattr(estimator, "get_booster"):
                booster = Booster(model_file=estimator.get_booster().save_raw())
            else:
                booster = hist_gradient_booster(estimator)
            _MODELS[estimator] = (booster, build_tree_tables(booster))
        return _MODELS[estimator]


def hist_gradient_booster(estimator: Any) -> Any:
    """A fitted binary ``HistGradientBoostingClassifier``'s trees as an XGBoost Booster whose
    margin is the classifier's decision function (numeric splits only)."""
    import json

    import xgboost as xgb

    if estimator.n_trees_per_iteration_ != 1 or getattr(estimator, "_preprocessor", None):
        raise ValueError("only a binary model without categorical splits converts")
    columns = int(estimator.n_features_in_)
    template = xgb.train(
        {"objective": "binary:logitraw", "base_score": 0.0, "max_depth": 1, "nthread": 1},
        xgb.DMatrix(np.zeros((2, columns)), label=[0.0, 1.0]),
        num_boost_round=1,
    )
    model = json.loads(template.save_raw(raw_format="json"))
    trees = [_tree(p.nodes, number, columns) for number, (p,) in enumerate(estimator._predictors)]
    booster = model["learner"]["gradient_booster"]["model"]
    booster["trees"] = trees
    booster["tree_info"] = [0] * len(trees)
    booster["iteration_indptr"] = list(range(len(trees) + 1))
    booster["gbtree_model_param"] = {"num_parallel_tree": "1", "num_trees": str(len(trees))}
    baseline = float(np.asarray(estimator._baseline_prediction).ravel()[0])
    model["learner"]["learner_model_param"]["base_score"] = f"[{baseline:.9E}]"
    return xgb.Booster(model_file=bytearray(json.dumps(model).encode()))


def _tree(nodes: np.ndarray, number: int, columns: int) -> dict[str, Any]:
    """One histogram tree in XGBoost's JSON form."""
    if nodes["is_categorical"].any():
        raise ValueError("a categorical split does not convert")
    nodes = nodes[_breadth_first(nodes)]  # XGBoost's order: siblings side by side
    leaf = nodes["is_leaf"].astype(bool)
    first_child = np.cumsum(np.where(leaf, 0, 2)) - np.where(leaf, 0, 2) + 1
    left = np.where(leaf, -1, first_child)
    right = np.where(leaf, -1, first_child + 1)
    parents = np.full(len(nodes), _ROOT_PARENT, dtype=np.int64)
    parents[left[~leaf]] = np.flatnonzero(~leaf)
    parents[right[~leaf]] = np.flatnonzero(~leaf)
    # x <= t goes left: in float32, x at most t's float32 (a threshold is often a data value)
    above = np.nextafter(nodes["num_threshold"].astype(np.float32), np.float32(np.inf))
    return {
        "base_weights": nodes["value"].tolist(),
        "categories": [],
        "categories_nodes": [],
        "categories_segments": [],
        "categories_sizes": [],
        "default_left": nodes["missing_go_to_left"].astype(int).tolist(),
        "id": number,
        "left_children": left.tolist(),
        "loss_changes": np.where(leaf, 0.0, nodes["gain"]).tolist(),
        "parents": parents.tolist(),
        "right_children": right.tolist(),
        "split_conditions": np.where(leaf, nodes["value"], above.astype(np.float64)).tolist(),
        "split_indices": np.where(leaf, 0, nodes["feature_idx"]).astype(int).tolist(),
        "split_type": [0] * len(nodes),
        "sum_hessian": nodes["count"].astype(np.float64).tolist(),
        "tree_param": {
            "num_deleted": "0",
            "num_feature": str(columns),
            "num_nodes": str(len(nodes)),
            "size_leaf_vector": "1",
        },
    }


def _breadth_first(nodes: np.ndarray) -> np.ndarray:
    """The tree's nodes from the root down, level by level, each node's children together."""
    order = [0]
    for node in order:  # grows as it goes
        if not nodes["is_leaf"][node]:
            order += [int(nodes["left"][node]), int(nodes["right"][node])]
    return np.array(order, dtype=np.int64)


def xgboost_contributions(booster: Any, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """XGBoost's own SHAP values of every row, and the base value."""
    from xgboost import DMatrix

    names = booster.feature_names
    shap = booster.predict(DMatrix(values, feature_names=names), pred_contribs=True)
    shap = np.asarray(shap, dtype=np.float64)
    return shap[:, :-1], shap[:, -1]


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
