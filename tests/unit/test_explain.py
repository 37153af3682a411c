"""Reasons per lead: contributions add up to the log-odds of the model's probability, for
every candidate, calibrated or not, and map back to the raw inputs."""

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from lead_conversion_prediction.config import PROJ_ROOT, FeatureParams, load_params
from lead_conversion_prediction.exceptions import ConfigError
from lead_conversion_prediction.features import build_preprocessor
from lead_conversion_prediction.modeling.calibration import log_odds_classifier, platt_scaling
from lead_conversion_prediction.modeling.candidates import (
    CANDIDATES,
    build_candidate,
    candidate_sections,
)
from lead_conversion_prediction.modeling.evaluate import positive_probability
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
from lead_conversion_prediction.scoring.score import score_leads
from tests.support import fit_small_model, make_raw_leads

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


def signal_leads(n: int = 400, seed: int = 4) -> pd.DataFrame:
    """Raw leads whose outcome follows their visits and onboarding, with noise."""
    leads = make_raw_leads(n=n, seed=seed)
    noise = np.random.default_rng(seed).normal(0, 3, n)
    converted = leads["n_visits"] + 3 * leads["onboarding"] + noise > 12
    return leads.assign(lead_indicator=converted.astype(float))


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Histogram boosting's OpenMP threads crawl on a machine whose cores are busy."""
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def candidate_models() -> tuple[dict[str, Any], pd.DataFrame]:
    """Every candidate the project can choose, as params.yaml sets it up, fitted on a small
    frame: as searched (``name``), and Platt-scaled as calibration makes it (``name+sigmoid``)."""
    from sklearn.base import clone
    from sklearn.calibration import CalibratedClassifierCV

    train = load_params(PROJ_ROOT / "params.yaml").train
    sections = candidate_sections(train.model_copy(update={"candidates": list(CANDIDATES)}))
    leads = signal_leads()
    X, y = features_and_target(validate_leads(leads, "leads.csv"))
    preprocessor = build_preprocessor(FeatureParams()).fit(X)
    matrix = preprocessor.transform(X)
    models: dict[str, Any] = {}
    for name in CANDIDATES:
        estimator = build_candidate(name, sections[name], seed=0).estimator
        models[name] = assemble_model(preprocessor, clone(estimator).fit(matrix, y))
        scaled = log_odds_classifier(estimator)
        calibrated = CalibratedClassifierCV(scaled, method="sigmoid", cv=3, ensemble=False)
        models[f"{name}+sigmoid"] = assemble_model(preprocessor, calibrated.fit(matrix, y))
    return models, leads


def logit(p: pd.Series) -> np.ndarray:
    return np.asarray(np.log(p) - np.log1p(-p))


@pytest.mark.parametrize("calibrated", [False, True], ids=["as searched", "sigmoid"])
@pytest.mark.parametrize("name", list(CANDIDATES))
def test_every_candidates_reasons_add_up_to_the_log_odds_of_its_probability(
    candidate_models: tuple[dict[str, Any], pd.DataFrame], name: str, calibrated: bool
) -> None:
    models, leads = candidate_models
    model = models[f"{name}+sigmoid" if calibrated else name]
    X, _ = features_and_target(validate_leads(leads, "leads.csv"))
    contributions = explain(model, X)
    assert np.abs(contributions.values).max() > 0.05  # the reasons say something
    # The explained log-odds are the model's own: its probability, its margin.
    np.testing.assert_allclose(
        contributions.probability, positive_probability(model, X), atol=1e-6
    )
    np.testing.assert_allclose(
        contributions.margin, margin(model[-1], model[:-1].transform(X)), atol=1e-5
    )
    # What lcp predict --explain 5 writes: the base plus every contribution is logit(p).
    scores = score_leads(model, validate_leads(leads, "leads.csv"), 0.5, explain=5)
    added = scores["base_log_odds"] + sum(scores[f"reason_{i}_contribution"] for i in range(1, 6))
    np.testing.assert_allclose(added, logit(scores["conversion_probability"]), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", list(CANDIDATES))
def test_a_calibrated_models_contributions_are_its_classifiers_scaled_by_the_slope(
    candidate_models: tuple[dict[str, Any], pd.DataFrame], name: str
) -> None:
    models, leads = candidate_models
    model = models[f"{name}+sigmoid"]
    X, _ = features_and_target(validate_leads(leads, "leads.csv"))
    classifier, slope, intercept = platt_scaling(model[-1])
    assert slope > 0 and (slope, intercept) != (1.0, 0.0)
    uncalibrated = explain(assemble_model(model[:-1], classifier), X)
    calibrated = explain(model, X)
    np.testing.assert_allclose(calibrated.values, slope * uncalibrated.values, rtol=1e-9)
    np.testing.assert_allclose(calibrated.base, slope * uncalibrated.base + intercept, rtol=1e-9)


def test_a_model_calibrated_on_its_probability_is_not_explained() -> None:
    from sklearn.calibration import CalibratedClassifierCV
    from xgboost import XGBClassifier

    X, y = features_and_target(validate_leads(signal_leads(n=120), "leads.csv"))
    preprocessor = build_preprocessor(FeatureParams()).fit(X)
    matrix = preprocessor.transform(X)
    xgboost = XGBClassifier(n_estimators=5, n_jobs=1)
    on_probability = CalibratedClassifierCV(xgboost, cv=2, ensemble=False)
    isotonic = CalibratedClassifierCV(fit_small_model()[-1], method="isotonic", ensemble=False)
    averaged = CalibratedClassifierCV(log_odds_classifier(xgboost), cv=2, ensemble=True)
    problems = {
        "not its log-odds": on_probability.fit(matrix, y),
        "not by Platt scaling": isotonic.fit(matrix, y),
        "averages 2 calibrated classifiers": averaged.fit(matrix, y),
    }
    for problem, classifier in problems.items():
        with pytest.raises(
            ConfigError, match=f"cannot explain this calibrated model: .*{problem}"
        ):
            explain(assemble_model(preprocessor, classifier), X)


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
