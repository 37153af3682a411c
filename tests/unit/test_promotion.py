from collections.abc import Callable

import numpy as np
import pytest

from lead_conversion_prediction.config import PromotionParams
from lead_conversion_prediction.exceptions import ConfigError
from lead_conversion_prediction.modeling.artifacts import Interval
from lead_conversion_prediction.modeling.promotion import (
    Comparison,
    Version,
    compare,
    decide,
    evaluation_set_md5,
)
from lead_conversion_prediction.schema import validate_leads


@pytest.fixture(scope="module")
def outcomes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 600)
    strong = np.clip(0.25 * y + 0.75 * rng.random(600), 0, 1)
    weak = rng.random(600)
    return y, strong, weak


def test_a_real_lead_is_real_and_noise_is_not(
    outcomes: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    y, strong, weak = outcomes
    params = PromotionParams(metric="roc_auc", resamples=400)
    better = compare(y, strong, weak, params, threshold=0.5)
    assert better.real and better.lead.low > 0 and better.challenger > better.champion
    jitter = np.clip(strong + np.random.default_rng(1).normal(0, 0.01, len(y)), 0, 1)
    same = compare(y, jitter, strong, params, threshold=0.5)
    assert not same.real and same.lead.low <= 0 <= same.lead.high
    assert not compare(y, weak, strong, params, threshold=0.5).real
    strict = PromotionParams(metric="roc_auc", resamples=400, margin=better.lead.low + 0.01)
    assert not compare(y, strong, weak, strict, threshold=0.5).real


def test_a_lower_score_is_a_lead_on_a_metric_where_lower_is_better(
    outcomes: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    y, strong, weak = outcomes
    for metric in ("brier", "log_loss"):
        comparison = compare(y, strong, weak, PromotionParams(metric=metric), threshold=0.5)
        assert comparison.challenger < comparison.champion and comparison.real


def test_the_promotion_metric_must_be_one_the_bootstrap_knows(
    outcomes: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    y, strong, weak = outcomes
    with pytest.raises(ConfigError, match=r"promotion\.metric: 'auc'"):
        compare(y, strong, weak, PromotionParams(metric="auc"), threshold=0.5)


def test_the_evaluation_set_md5_names_its_rows_whatever_their_order(
    make_leads: object,
) -> None:
    leads = validate_leads(make_leads(n=30), "leads.csv")  # type: ignore[operator]
    digest = evaluation_set_md5(leads)
    assert evaluation_set_md5(leads.sample(frac=1, random_state=3)) == digest
    assert evaluation_set_md5(leads.iloc[1:]) != digest
    changed = leads.assign(purchases=leads["purchases"] + 1)
    assert evaluation_set_md5(changed) != digest
    assert evaluation_set_md5(leads.assign(customer_code="other")) == digest


def version(number: int, state: str = "complete", evaluation_set: str = "e" * 32) -> Version:
    return Version(number, state, evaluation_set, "roc_auc")


def no_scores() -> Comparison:
    raise AssertionError("the rule decided without the models' scores")


def scores(low: float) -> Callable[[], Comparison]:
    lead = Interval(low=low, high=low + 0.1)
    return lambda: Comparison("roc_auc", 0.8, 0.7, lead, margin=0.0)


@pytest.mark.parametrize(
    ("champion", "challenger", "release", "promoted", "reason"),
    [
        (None, version(1), False, True, "version 1 is the first champion"),
        (None, version(1, "in progress"), False, False, "registration is in progress"),
        (version(1), version(1), True, False, "version 1 is the champion already"),
        (version(1), version(2), False, False, "the champion stays version 1"),
        (version(1, evaluation_set="f" * 32), version(2), True, False, "another evaluation"),
    ],
)
def test_the_champion_moves_only_by_the_rule_without_scoring_when_it_need_not(
    champion: Version | None, challenger: Version, release: bool, promoted: bool, reason: str
) -> None:
    decision = decide(champion, challenger, "e" * 32, "roc_auc", release, no_scores)
    assert decision.promoted is promoted and reason in decision.reason


def test_on_the_release_path_a_real_lead_promotes_and_noise_does_not() -> None:
    real = decide(version(1), version(2), "e" * 32, "roc_auc", True, scores(0.05))
    assert real.promoted and real.reason.startswith("promoted version 2: roc_auc 0.8000")
    noise = decide(version(1), version(2), "e" * 32, "roc_auc", True, scores(-0.05))
    assert not noise.promoted and "within the noise" in noise.reason
