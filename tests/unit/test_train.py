import math
from collections.abc import Callable
from itertools import product

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from lead_conversion_prediction.config import PROJ_ROOT, FeatureParams, TrainParams, load_params
from lead_conversion_prediction.features import build_preprocessor
from lead_conversion_prediction.modeling.candidates import (
    SOLVER_PENALTIES,
    LogisticRegressionParams,
    RandInt,
    Uniform,
    candidate_sections,
    check_space_bounds,
    logistic_regression_space,
    to_distributions,
)
from lead_conversion_prediction.modeling.train import (
    assemble_model,
    search_candidate,
    search_candidates,
)
from lead_conversion_prediction.schema import features_and_target, validate_leads
from tests.support import small_train_params


@pytest.fixture(scope="module")
def params() -> TrainParams:
    """The project's training parameters with small searches, so the tests stay quick."""
    return small_train_params(load_params(PROJ_ROOT / "params.yaml")).train


@pytest.fixture
def matrix(make_leads: Callable[..., pd.DataFrame]) -> tuple[pd.DataFrame, pd.Series]:
    X, y = features_and_target(validate_leads(make_leads(n=120, seed=3), "leads.csv"))
    return build_preprocessor(FeatureParams()).fit_transform(X), y


def test_the_logistic_space_holds_each_distinct_model_once_with_a_supporting_solver() -> None:
    params = candidate_sections(load_params(PROJ_ROOT / "params.yaml").train)[
        "logistic_regression"
    ]
    space = logistic_regression_space(params)
    settings = [
        dict(zip(s, values, strict=True)) for s in space for values in product(*s.values())
    ]
    ratio_penalty = {0.0: "l2", 1.0: "l1", 0.5: "elasticnet"}
    models = set()
    for setting in settings:
        penalty = "none" if setting["C"] == math.inf else ratio_penalty[setting["l1_ratio"]]
        assert penalty in SOLVER_PENALTIES[setting["solver"]]
        LogisticRegression(**setting)  # a valid estimator for current scikit-learn
        models.add((penalty, setting["C"]))  # what the model is; the solver only finds it
    assert len(models) == len(settings)  # no two settings give the same model
    # one unpenalised setting, and each of l1, l2 and elastic net with every strength
    assert len(settings) == 1 + 3 * len(params.C)
    assert params.n_iter >= len(settings)  # the search tries every one


def test_one_solver_per_penalty_reaches_the_optimum_the_others_reach(
    matrix: tuple[pd.DataFrame, pd.Series],
) -> None:
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    X, y = matrix
    params = LogisticRegressionParams(penalties={"l2": "lbfgs"}, C=[1.0])
    chosen = logistic_regression_space(params)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fits = [
            LogisticRegression(solver=solver, C=1.0, l1_ratio=0.0, max_iter=5000, tol=1e-8)
            .fit(X, y)
            .predict_proba(X)[:, 1]
            for solver in ("newton-cg", "sag", "saga", *chosen["solver"])
        ]
    for other in fits[:-1]:
        np.testing.assert_allclose(other, fits[-1], atol=1e-3)


def test_distributions_cover_the_declared_ranges(params: TrainParams) -> None:
    space = to_distributions(candidate_sections(params)["xgboost_rf"].space)
    depths = space["max_depth"].rvs(size=2000, random_state=0)
    assert set(np.unique(depths)) == set(range(3, 15))
    samples = space["subsample"].rvs(size=2000, random_state=0)
    assert samples.min() >= 0.5 and samples.max() <= 1.0
    rates = to_distributions(candidate_sections(params)["xgboost"].space)["learning_rate"]
    drawn = rates.rvs(size=2000, random_state=0)
    assert drawn.min() >= 0.03 and drawn.max() <= 0.2


def test_a_space_within_the_bounds_is_accepted_and_one_outside_is_refused() -> None:
    bounds = {"subsample": (0.5, 1.0)}
    check_space_bounds({"subsample": Uniform(uniform=(0.5, 1.0))}, bounds)
    check_space_bounds({"max_depth": RandInt(randint=(2, 9))}, bounds)  # not bounded
    for space in (
        {"subsample": Uniform(uniform=(0.4, 1.0))},
        {"subsample": [0.6, 1.2]},
        {"subsample": ["high"]},
    ):
        with pytest.raises(ValueError, match=r"space.subsample: must stay within \[0.5, 1\]"):
            check_space_bounds(space, bounds)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["xgboost_rf", "logistic_regression", "xgboost"])
def test_a_search_is_seeded_and_returns_a_fitted_classifier(
    name: str, params: TrainParams, matrix: tuple[pd.DataFrame, pd.Series]
) -> None:
    X, y = matrix
    first, second = (search_candidate(name, X, y, params) for _ in range(2))
    assert first.best_params == second.best_params
    assert first.cv_scores == second.cv_scores
    np.testing.assert_array_equal(
        first.classifier.predict_proba(X), second.classifier.predict_proba(X)
    )
    assert len(first.cv_scores) == candidate_sections(params)[name].cv_folds
    assert first.calibration == second.calibration
    assert set(first.calibration.cv_log_loss) == {"none", *params.calibration.methods}
    assert max(s.cv_mean for s in first.settings) == pytest.approx(first.cv_mean)


def test_every_listed_candidate_is_searched_in_order(
    params: TrainParams, matrix: tuple[pd.DataFrame, pd.Series]
) -> None:
    X, y = matrix
    assert [result.name for result in search_candidates(X, y, params)] == params.candidates


def test_the_assembled_model_scores_raw_leads(
    params: TrainParams, make_leads: Callable[..., pd.DataFrame]
) -> None:
    X, y = features_and_target(validate_leads(make_leads(n=120, seed=3), "leads.csv"))
    preprocessor = build_preprocessor(FeatureParams()).fit(X)
    result = search_candidate("logistic_regression", preprocessor.transform(X), y, params)
    model = assemble_model(preprocessor, result.classifier)
    probabilities = model.predict_proba(X)[:, 1]
    assert probabilities.shape == (120,) and ((probabilities >= 0) & (probabilities <= 1)).all()
    assert list(model[-1].feature_names_in_) == list(preprocessor.get_feature_names_out())
