"""Reasons per lead: contributions add up to the margin, and map back to the raw inputs."""

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from lead_conversion_prediction.config import FeatureParams
from lead_conversion_prediction.exceptions import ConfigError
from lead_conversion_prediction.features import build_preprocessor
from lead_conversion_prediction.modeling.explain import (
    explain,
    explain_matrix,
    input_membership,
    input_of,
    margin,
    reference_row,
    top_reasons,
)
from lead_conversion_prediction.modeling.train import assemble_model
from lead_conversion_prediction.schema import features_and_target, validate_leads
from tests.support import fit_small_model

INPUTS = ("purchases", "time_spent", "n_visits", "customer_group", "onboarding")


def small_xgboost_model(make_leads: Callable[..., pd.DataFrame]) -> tuple[Any, pd.DataFrame]:
    from xgboost import XGBClassifier

    X, y = features_and_target(validate_leads(make_leads(n=300, seed=4), "leads.csv"))
    preprocessor = build_preprocessor(FeatureParams()).fit(X)
    classifier = XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1, random_state=0)
    classifier.set_params(monotone_constraints="(1,0,1)")
    classifier.fit(preprocessor.transform(X), y)
    return assemble_model(preprocessor, classifier), X


def test_tree_contributions_add_up_to_the_margin(make_leads: Callable[..., pd.DataFrame]) -> None:
    model, X = small_xgboost_model(make_leads)
    contributions = explain(model, X)
    assert contributions.inputs == INPUTS
    expected = margin(model[-1], model[:-1].transform(X))
    np.testing.assert_allclose(contributions.margin, expected, atol=1e-4)
    assert np.ptp(contributions.base) == 0  # one base value: the expected margin


def test_a_scoring_models_bare_array_is_explained_as_its_frame(
    make_leads: Callable[..., pd.DataFrame],
) -> None:
    from lead_conversion_prediction.scoring.model import hand_arrays

    model, X = small_xgboost_model(make_leads)
    expected = explain(model, X)
    hand_arrays(model)  # as scoring loads it: the preprocessing hands XGBoost an array
    matrix = model[:-1].transform(X)
    assert isinstance(matrix, np.ndarray)
    got = explain_matrix(model, matrix)
    assert got.inputs == expected.inputs
    np.testing.assert_array_equal(got.values, expected.values)


def test_linear_contributions_are_relative_to_the_typical_lead(
    make_leads: Callable[..., pd.DataFrame],
) -> None:
    model = fit_small_model()
    X, _ = features_and_target(validate_leads(make_leads(n=40, seed=8), "leads.csv"))
    contributions = explain(model, X)
    np.testing.assert_allclose(
        contributions.margin, model[-1].decision_function(model[:-1].transform(X)), atol=1e-9
    )
    typical = pd.DataFrame({name: [np.nan] for name in INPUTS}, dtype="float64")
    np.testing.assert_allclose(explain(model, typical).values, 0.0, atol=1e-12)
    reference = reference_row(model[:-1])
    assert reference.shape == (12,) and set(reference[3:]) <= {0.0, 1.0}


def test_a_calibrated_model_explains_its_classifiers_margin(
    make_leads: Callable[..., pd.DataFrame],
) -> None:
    from sklearn.calibration import CalibratedClassifierCV

    model = fit_small_model()
    X, y = features_and_target(validate_leads(make_leads(n=200, seed=1), "leads.csv"))
    calibrated = CalibratedClassifierCV(model[-1], method="sigmoid", ensemble=False)
    calibrated.fit(model[:-1].transform(X), y)
    wrapped = assemble_model(model[:-1], calibrated)
    contributions = explain(wrapped, X)
    base = calibrated.calibrated_classifiers_[0].estimator
    np.testing.assert_allclose(
        contributions.margin, base.decision_function(model[:-1].transform(X)), atol=1e-9
    )


def test_model_columns_map_back_to_their_raw_inputs() -> None:
    assert input_of("customer_group_7", INPUTS) == "customer_group"
    assert input_of("onboarding_True", INPUTS) == "onboarding"
    assert input_of("n_visits", INPUTS) == "n_visits"
    with pytest.raises(ConfigError, match="comes from none of the inputs"):
        input_of("source_li", INPUTS)
    membership = input_membership(["purchases", "customer_group_2", "customer_group_3"], INPUTS)
    assert membership.tolist() == [[1, 0, 0, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 1, 0]]


def test_the_top_reasons_are_the_largest_in_absolute_value() -> None:
    values = np.array([[0.1, -0.5, 0.3], [0.2, 0.2, -0.2]])
    codes, contributions = top_reasons(values, 2)
    assert codes.tolist() == [[1, 2], [0, 1]]  # ties keep the inputs' order
    assert contributions.tolist() == [[-0.5, 0.3], [0.2, 0.2]]
    for k in (0, 4):
        with pytest.raises(ConfigError, match=f"--explain {k}: give 1 to 3"):
            top_reasons(values, k)


def test_the_lookup_tables_give_xgboosts_own_shap_values(
    make_leads: Callable[..., pd.DataFrame],
) -> None:
    from lead_conversion_prediction.modeling.explain import (
        build_tree_tables,
        trees_of,
        xgboost_contributions,
    )

    model, X = small_xgboost_model(make_leads)
    booster = trees_of(model[-1])
    rows = model[:-1].transform(X).to_numpy(np.float32)
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
