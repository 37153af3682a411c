from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from lead_conversion_prediction.config import EvaluateParams
from lead_conversion_prediction.modeling.artifacts import (
    CandidateResult,
    Reliance,
    SelectionRule,
    TrainingSummary,
)
from lead_conversion_prediction.modeling.reliance import (
    BY_LEVEL,
    BY_VALUE,
    BY_VALUE_REVERSED,
    describe_reliance,
    fit_single_input,
    measure_reliance,
    share_by_value,
)
from lead_conversion_prediction.modeling.report import (
    CardContext,
    build_metrics,
    render_model_card,
)
from lead_conversion_prediction.schema import MODEL_INPUT_COLUMNS

PARAMS = EvaluateParams(resamples=200, random_state=7)
OWNER_QUESTION = "when is `{}` measured, relative to the outcome?"
Decide = Callable[[pd.DataFrame], tuple[pd.Series, np.ndarray]]


def leads(n: int, seed: int) -> pd.DataFrame:
    """Model inputs of ``n`` leads, each drawn independently."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "purchases": rng.integers(0, 10, n).astype(float),
            "time_spent": rng.uniform(10, 200, n),
            "n_visits": rng.integers(1, 20, n).astype(float),
            "customer_group": rng.integers(1, 10, n),
            "onboarding": rng.random(n) < 0.5,
        }
    )


def visits_decide(X: pd.DataFrame) -> tuple[pd.Series, np.ndarray]:
    """The outcome is n_visits above 8, and the model's probability follows n_visits alone."""
    y = (X["n_visits"] > 8).astype(int)
    return y, 1 / (1 + np.exp(-(X["n_visits"].to_numpy() - 8.5)))


def two_inputs_decide(X: pd.DataFrame) -> tuple[pd.Series, np.ndarray]:
    """The outcome needs both many visits and many purchases; the model sees both."""
    signal = (X["n_visits"] - 10) / 9 + (X["purchases"] - 4.5) / 4.5
    return (signal > 0).astype(int), 1 / (1 + np.exp(-8 * signal.to_numpy()))


def reliance_of(decide: Decide, seed: int = 1) -> Reliance:
    X_train, X_test = leads(400, seed), leads(300, seed + 100)
    y_train, _ = decide(X_train)
    y_test, probability = decide(X_test)
    return measure_reliance((X_train, y_train), (X_test, y_test), probability, 0.5, PARAMS)


def test_an_input_that_decides_the_outcome_alone_matches_the_model_and_the_card_asks() -> None:
    reliance = reliance_of(visits_decide)
    assert reliance.baseline_input == "n_visits"
    assert reliance.inputs["n_visits"].holdout_roc_auc == pytest.approx(1.0)
    assert reliance.matched
    sentence = describe_reliance(reliance, 0.95)
    assert "**`n_visits` alone matches the model.**" in sentence
    assert OWNER_QUESTION.format("n_visits") in sentence


def test_an_input_that_does_not_decide_alone_leaves_the_model_ahead_and_asks_nothing() -> None:
    reliance = reliance_of(two_inputs_decide)
    assert reliance.baseline_input in {"n_visits", "purchases"}
    assert reliance.model_minus_baseline_ci["roc_auc"].low > 0
    assert not reliance.matched
    sentence = describe_reliance(reliance, 0.95)
    assert "ranks leads better than its best single input" in sentence
    assert "matches" not in sentence and "data's owner" not in sentence


def test_every_input_is_scored_alone_and_noise_scores_near_chance() -> None:
    reliance = reliance_of(visits_decide)
    assert list(reliance.inputs) == list(MODEL_INPUT_COLUMNS)
    for name in ("time_spent", "customer_group", "onboarding"):
        assert 0.35 < reliance.inputs[name].holdout_roc_auc < 0.65, name
    assert set(reliance.baseline) == set(reliance.model_minus_baseline_ci)


def test_a_category_is_scored_by_its_levels_training_rate_and_an_unseen_level_by_the_base() -> (
    None
):
    X = pd.DataFrame({"customer_group": [1, 1, 2, 2, 2, 3], "onboarding": [True] * 6})
    y = pd.Series([1, 1, 0, 0, 1, 0])
    score = fit_single_input("customer_group", X, y)
    assert score.scored_by == BY_LEVEL
    new = pd.DataFrame({"customer_group": [2, 1, 9]})
    np.testing.assert_allclose(score.score(new), [1 / 3, 1.0, 0.5])


def test_a_number_that_lowers_conversion_is_scored_turned_round() -> None:
    X = pd.DataFrame({"time_spent": [1.0, 2.0, 3.0, 4.0, np.nan]})
    y = pd.Series([1, 1, 0, 0, 1])
    score = fit_single_input("time_spent", X, y)
    assert score.scored_by == BY_VALUE_REVERSED
    np.testing.assert_allclose(score.score(X), [-1, -2, -3, -4, -2.5])  # missing: the mean
    rising = fit_single_input("time_spent", X, 1 - y)
    assert rising.scored_by == BY_VALUE


def test_the_share_of_converters_is_counted_per_value() -> None:
    table = share_by_value(
        np.array([1.0, 1.0, 2.0, np.nan, 2.0, 2.0]),
        np.array([0, 1, 1, 1, 1, 0]),
        np.array([0.2, 0.4, 0.6, 0.9, 0.8, 0.7]),
    )
    assert table["value"].tolist() == [1.0, 2.0]
    assert table["rows"].tolist() == [2, 3]
    np.testing.assert_allclose(table["converted_share"], [0.5, 2 / 3])
    np.testing.assert_allclose(table["mean_probability"], [0.3, 0.7])


@pytest.mark.parametrize(("decide", "asks"), [(visits_decide, True), (two_inputs_decide, False)])
def test_the_card_section_follows_the_data(decide: Decide, asks: bool) -> None:
    X_test = leads(300, 101)
    y, probability = decide(X_test)
    summary = TrainingSummary(
        metric="neg_log_loss",
        selection=SelectionRule(metric="neg_log_loss", folds=5, seed=42, rows=400),
        selected="model",
        rows_train=400,
        candidates={
            "model": CandidateResult(
                best_params={}, cv=[-0.3], cv_mean=-0.3, cv_std=0.0, settings=[]
            )
        },
    )
    metrics = build_metrics(
        y.to_numpy(),
        {"model": probability},
        summary,
        0.5,
        PARAMS,
        {"model": -0.3},
        reliance_of(decide),
    )
    card = render_model_card(
        metrics,
        CardContext(
            source_url="https://example.org/raw.csv",
            raw_md5="0" * 32,
            min_date="2024-01-01",
            max_date="2024-01-31",
            lead_source="signup",
            rows_raw=700,
            rows_clean=700,
            columns=["n_visits"],
            best_params={},
            monotone={"model": ["purchases", "n_visits"], "linear": None},
        ),
    )
    assert "## What the model relies on" in card
    assert f"| `n_visits` | {BY_VALUE} |" in card
    assert ("data's owner" in card) is asks
    assert ("ranks the leads as well as the model" in card) is asks  # the limitation
    assert "- `model` is increasing in `purchases`, `n_visits`." in card
    assert "- `linear` cannot take them" in card
