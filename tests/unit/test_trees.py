"""Tree models as XGBoost Boosters: histogram boosting's trees give its own log-odds, and the
lookup tables give XGBoost's own SHAP values."""

from typing import Any

import numpy as np
import pandas as pd
import pytest

from lead_conversion_prediction.config import FeatureParams
from lead_conversion_prediction.features import build_preprocessor
from lead_conversion_prediction.modeling.trees import (
    build_tree_tables,
    hist_gradient_booster,
    tree_tables,
    trees_of,
    xgboost_contributions,
)
from lead_conversion_prediction.schema import features_and_target, validate_leads
from tests.support import make_raw_leads


def model_matrix(n: int = 300, seed: int = 4) -> tuple[pd.DataFrame, pd.Series]:
    """The model matrix of small raw leads, whose outcome follows their visits."""
    leads = make_raw_leads(n=n, seed=seed)
    noise = np.random.default_rng(seed).normal(0, 3, n)
    leads["lead_indicator"] = (leads["n_visits"] + noise > 10).astype(float)
    X, y = features_and_target(validate_leads(leads, "leads.csv"))
    return build_preprocessor(FeatureParams()).fit(X).transform(X), y


def small_xgboost(matrix: pd.DataFrame, y: pd.Series) -> Any:
    from xgboost import XGBClassifier

    classifier = XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1, random_state=0)
    return classifier.set_params(monotone_constraints="(1,0,1)").fit(matrix, y)


def test_histogram_boostings_trees_give_its_own_log_odds_and_shap_values() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from xgboost import DMatrix

    matrix, y = model_matrix()
    model = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(matrix, y)
    rows = matrix.to_numpy(np.float64)
    # rows on a split threshold and next to it: x <= t goes left, as in scikit-learn
    nodes = model._predictors[0][0].nodes
    split = int(np.flatnonzero(nodes["is_leaf"] == 0)[0])
    feature, threshold = int(nodes["feature_idx"][split]), float(nodes["num_threshold"][split])
    edges = np.repeat(rows[:1], 3, axis=0)
    edges[:, feature] = [threshold, np.nextafter(threshold, -np.inf), threshold + 1e-3]
    rows = np.vstack([rows, edges])
    booster = hist_gradient_booster(model)
    converted = booster.predict(DMatrix(rows.astype(np.float32)), output_margin=True)
    frame = pd.DataFrame(rows, columns=matrix.columns)
    np.testing.assert_allclose(converted, model.decision_function(frame), atol=1e-5)
    values, base = xgboost_contributions(booster, rows.astype(np.float32))
    np.testing.assert_allclose(values.sum(axis=1) + base, converted, atol=1e-5)
    tables = tree_tables(model)
    assert tables is not None
    np.testing.assert_allclose(tables.contributions(rows.astype(np.float32)), values, atol=1e-5)


def test_the_lookup_tables_give_xgboosts_own_shap_values() -> None:
    matrix, y = model_matrix()
    booster = trees_of(small_xgboost(matrix, y))
    rows = matrix.to_numpy(np.float32)
    tables = build_tree_tables(booster)
    assert tables is not None
    expected, base = xgboost_contributions(booster, rows)
    np.testing.assert_allclose(tables.contributions(rows), expected, atol=1e-5)
    assert tables.base == pytest.approx(base[0])
    # rows on a threshold, just below it, and outside the training range
    edges = np.repeat(rows[:1], 3, axis=0)
    threshold = tables.tables[0].thresholds[0][0]
    feature = tables.tables[0].features[0]
    edges[:, feature] = [threshold, np.nextafter(threshold, np.float32(-1)), 1e6]
    np.testing.assert_allclose(
        tables.contributions(edges), xgboost_contributions(booster, edges)[0], atol=1e-5
    )
    assert build_tree_tables(booster, max_cells=2) is None  # too fine a grid: row by row


def test_the_tables_sum_the_rounds_in_float64_to_the_margin() -> None:
    """XGBoost sums its trees in float32; round by round, the tables keep the log-odds exact
    to well within 1e-6 of the trees' own float64 sum."""
    import json

    from xgboost import DMatrix

    matrix, y = model_matrix()
    classifier = small_xgboost(matrix, y)
    booster = trees_of(classifier)
    tables = tree_tables(classifier)
    assert tables is not None
    rows = matrix.to_numpy(np.float32)
    leaves = booster.predict(
        DMatrix(rows, feature_names=booster.feature_names), pred_leaf=True
    ).astype(np.int64)
    model = json.loads(booster.save_raw(raw_format="json"))["learner"]
    trees = model["gradient_booster"]["model"]["trees"]
    base_score = float(model["learner_model_param"]["base_score"].strip("[]"))
    exact = np.full(len(rows), np.log(base_score) - np.log1p(-base_score))
    for number, tree in enumerate(trees):
        exact = exact + np.asarray(tree["split_conditions"], np.float64)[leaves[:, number]]
    explained = tables.base + tables.contributions(rows).sum(axis=1)
    np.testing.assert_allclose(explained, exact, rtol=0, atol=1e-6)
