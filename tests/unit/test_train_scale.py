"""Searches on many rows: the budget rule, the sample it searches on, the fit on all rows."""

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from lead_conversion_prediction.config import (
    PROJ_ROOT,
    CalibrationParams,
    FeatureParams,
    ScaleParams,
    TrainParams,
    load_params,
)
from lead_conversion_prediction.features import build_preprocessor
from lead_conversion_prediction.modeling.calibration import calibrate_where_it_helps
from lead_conversion_prediction.modeling.candidates import build_candidate, candidate_sections
from lead_conversion_prediction.modeling.train import (
    search_budget,
    search_candidate,
    search_sample,
)
from lead_conversion_prediction.schema import features_and_target, validate_leads
from tests.support import small_train_params

REAL_TRAINING_ROWS = 2_496  # the real data's training rows (the product spec, step 10)
SCALE = ScaleParams(rows_above=1_000, search_rows=400, max_n_iter=4, max_cv_folds=3)


def test_up_to_the_threshold_every_search_runs_as_its_section_says() -> None:
    for rows in (1, 500, 1_000):
        budget = search_budget(rows, n_iter=15, cv_folds=4, scale=SCALE)
        assert not budget.scaled
        assert (budget.rows, budget.search_rows, budget.n_iter, budget.cv_folds) == (
            rows,
            rows,
            15,
            4,
        )


def test_above_the_threshold_the_search_is_capped_and_runs_on_a_sample() -> None:
    budget = search_budget(1_001, n_iter=15, cv_folds=4, scale=SCALE)
    assert budget.scaled
    assert (budget.rows, budget.search_rows, budget.n_iter, budget.cv_folds) == (1_001, 400, 4, 3)
    # A cap never raises what the section asks for.
    small = search_budget(50_000, n_iter=2, cv_folds=2, scale=SCALE)
    assert (small.search_rows, small.n_iter, small.cv_folds) == (400, 2, 2)
    # A sample is never larger than the rows there are.
    wide = ScaleParams(rows_above=100, search_rows=5_000)
    assert search_budget(300, 10, 3, wide).search_rows == 300


def test_the_search_costs_the_same_at_any_size_above_the_threshold() -> None:
    def work(rows: int) -> int:
        budget = search_budget(rows, n_iter=15, cv_folds=4, scale=SCALE)
        return budget.search_rows * budget.n_iter * budget.cv_folds

    costs = [work(rows) for rows in (1_001, 10_000, 100_000, 1_000_000, 10_000_000)]
    assert len(set(costs)) == 1
    assert costs[0] < work(1_000)


def test_the_real_data_is_searched_exactly_as_the_sections_say() -> None:
    params = load_params(PROJ_ROOT / "params.yaml").train
    assert params.scale.rows_above >= REAL_TRAINING_ROWS
    for name in params.candidates:
        section = candidate_sections(params)[name]
        budget = search_budget(REAL_TRAINING_ROWS, section.n_iter, section.cv_folds, params.scale)
        assert not budget.scaled
        assert (budget.search_rows, budget.n_iter, budget.cv_folds) == (
            REAL_TRAINING_ROWS,
            section.n_iter,
            section.cv_folds,
        )


@pytest.fixture
def matrix(make_leads: Callable[..., pd.DataFrame]) -> tuple[pd.DataFrame, pd.Series]:
    X, y = features_and_target(validate_leads(make_leads(n=1_500, seed=7), "leads.csv"))
    return build_preprocessor(FeatureParams()).fit_transform(X), y.astype("int64")


def test_the_search_sample_is_seeded_stratified_and_drawn_from_the_rows(
    matrix: tuple[pd.DataFrame, pd.Series],
) -> None:
    X, y = matrix
    X_sample, y_sample = search_sample(X, y, 400, seed=3)
    assert len(X_sample) == len(y_sample) == 400
    assert X_sample.index.equals(y_sample.index)
    assert set(X_sample.index) <= set(X.index)
    pd.testing.assert_frame_equal(X_sample, X.loc[X_sample.index])
    assert y_sample.mean() == pytest.approx(y.mean(), abs=1 / 400)
    again, _ = search_sample(X, y, 400, seed=3)
    assert again.index.equals(X_sample.index)
    everything, _ = search_sample(X, y, len(y), seed=3)
    assert everything is X


def scaled_params(scale: ScaleParams) -> TrainParams:
    params = small_train_params(load_params(PROJ_ROOT / "params.yaml")).train
    return params.model_copy(update={"scale": scale})


def test_a_scaled_search_uses_its_budget_and_fits_the_choice_on_every_row(
    matrix: tuple[pd.DataFrame, pd.Series],
) -> None:
    from sklearn.base import clone

    X, y = matrix
    uncalibrated = CalibrationParams(methods=[])  # the classifier as fitted, to compare
    params = scaled_params(SCALE).model_copy(update={"calibration": uncalibrated})
    result = search_candidate("logistic_regression", X, y, params)
    assert result.budget.scaled
    assert (result.budget.rows, result.budget.search_rows) == (1_500, 400)
    assert len(result.settings) == min(3, SCALE.max_n_iter)
    assert len(result.cv_scores) == 3
    classifier = result.classifier
    # The chosen setting, fitted on all 1,500 rows: the same as fitting it directly.
    candidate = build_candidate(
        "logistic_regression", candidate_sections(params)["logistic_regression"], 42
    )
    direct = clone(candidate.estimator).set_params(**classifier.get_params()).fit(X, y)
    np.testing.assert_allclose(classifier.coef_, direct.coef_)
    assert classifier.n_features_in_ == X.shape[1]
    again = search_candidate("logistic_regression", X, y, params)
    assert again.best_params == result.best_params
    assert again.cv_scores == result.cv_scores


def test_a_search_at_the_threshold_is_not_scaled(matrix: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = matrix
    params = scaled_params(ScaleParams(rows_above=1_500, search_rows=400))
    result = search_candidate("xgboost", X, y, params)
    assert not result.budget.scaled
    section = candidate_sections(params)["xgboost"]
    assert len(result.settings) == section.n_iter
    assert len(result.cv_scores) == section.cv_folds


def test_calibration_is_chosen_on_the_sample_and_fitted_on_every_row(
    matrix: tuple[pd.DataFrame, pd.Series],
) -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = matrix
    sample = search_sample(X, y, 400, seed=1)
    unfitted = LogisticRegression(C=0.01)
    model, check = calibrate_where_it_helps(
        unfitted, X, y, CalibrationParams(methods=["sigmoid"]), seed=1, sample=sample
    )
    _, same_check = calibrate_where_it_helps(
        LogisticRegression(C=0.01).fit(*sample), *sample, CalibrationParams(), seed=1
    )
    assert check == same_check  # the choice depends on the sample alone
    assert not hasattr(unfitted, "coef_")  # the given estimator is left unfitted
    fitted = model.calibrated_classifiers_[0].estimator if check.method != "none" else model
    direct = LogisticRegression(C=0.01).fit(X, y)
    np.testing.assert_allclose(fitted.coef_, direct.coef_)
    plain, nothing = calibrate_where_it_helps(
        unfitted, X, y, CalibrationParams(methods=[]), seed=1, sample=sample
    )
    assert nothing.method == "none"
    np.testing.assert_allclose(plain.coef_, direct.coef_)


def test_on_many_rows_a_calibrated_classifier_is_fitted_once_beside_a_held_out_share() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedShuffleSplit

    from lead_conversion_prediction.modeling.calibration import base_classifiers
    from tests.unit.test_calibration import squeezed_rows

    X, y = squeezed_rows(n=2_000)
    sample = search_sample(X, y, 500, seed=1)
    squeezed = LogisticRegression(C=0.002)  # probabilities too close to 0.5: calibrated
    model, check = calibrate_where_it_helps(
        squeezed, X, y, CalibrationParams(), seed=1, sample=sample, holdout=0.1
    )
    assert check.method == "sigmoid"
    (fitted,) = base_classifiers(model)
    rest, held_out = next(
        StratifiedShuffleSplit(n_splits=1, test_size=0.1, random_state=1).split(X, y)
    )
    assert len(rest) == 1_800 and len(held_out) == 200
    direct = LogisticRegression(C=0.002).fit(X.iloc[rest], y.iloc[rest])
    np.testing.assert_allclose(fitted.coef_, direct.coef_)
    squeezed_top = direct.predict_proba(X)[:, 1].max()
    assert model.predict_proba(X)[:, 1].max() > squeezed_top  # the calibrator widened them
