from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.special import expit

from lead_conversion_prediction.config import PROJ_ROOT, PromotionParams, load_params
from lead_conversion_prediction.exceptions import ConfigError
from lead_conversion_prediction.modeling.artifacts import Interval, ValidationReport
from lead_conversion_prediction.modeling.promotion import (
    Comparison,
    FirstChampionCheck,
    Lead,
    Version,
    compare,
    compare_with_base_rate,
    decide,
    evaluation_set_md5,
)
from lead_conversion_prediction.schema import validate_leads

PARAMS = PromotionParams(resamples=300)


class Leads:
    """Outcomes drawn from known probabilities, and models of known quality on them."""

    def __init__(self, n: int = 1000, seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        seen, unseen = rng.normal(0, 1.5, n), rng.normal(0, 1.0, n)
        self.calibrated = expit(seen + unseen)  # the true probability: ranks best, honest
        self.y = (rng.random(n) < self.calibrated).astype(int)
        # Knows only part of the cause; its probit-like shrinkage keeps it roughly calibrated.
        self.weaker = expit(seen / np.sqrt(1 + np.pi / 8))
        # The same ranks as the truth, with its probabilities pushed to 0 and 1.
        self.overconfident = expit(6 * (seen + unseen))
        # The same ranks as the truth, with its probabilities squeezed towards one half.
        self.squeezed = 0.5 + (self.calibrated - 0.5) * 0.2
        self.jittered = np.clip(self.calibrated + rng.normal(0, 0.01, n), 0, 1)


@pytest.fixture(scope="module")
def leads() -> Leads:
    return Leads()


def test_a_squeezed_champion_that_ranks_the_same_is_replaced(leads: Leads) -> None:
    comparison = compare(leads.y, leads.calibrated, leads.squeezed, PARAMS, threshold=0.5)
    assert comparison.ranking.lead == Interval(low=0.0, high=0.0)  # a monotone squeeze
    assert comparison.scoring.lead.low > 0
    assert comparison.real
    reason = comparison.outcome(2, 1)
    assert reason == "promoted version 2: it leads on log_loss and is no worse on roc_auc"
    summary = comparison.summary()
    assert "roc_auc" in summary and "log_loss" in summary and "(the same)" in summary


def test_a_better_ranking_model_with_broken_probabilities_is_refused(leads: Leads) -> None:
    comparison = compare(leads.y, leads.overconfident, leads.weaker, PARAMS, threshold=0.5)
    assert comparison.ranking.lead.low > 0 and comparison.scoring.lead.high < 0
    assert not comparison.real
    reason = comparison.outcome(2, 1)
    assert reason.startswith("refused: version 2 leads version 1 on roc_auc but may be worse")
    assert f"by up to {-comparison.scoring.lead.low:.4f}, beyond its tolerance 0.01" in reason


def test_a_clearly_worse_challenger_is_refused_as_worse(leads: Leads) -> None:
    comparison = compare(leads.y, leads.weaker, leads.calibrated, PARAMS, threshold=0.5)
    assert comparison.ranking.lead.high < 0 and comparison.scoring.lead.high < 0
    assert not comparison.real
    assert comparison.outcome(2, 1) == (
        "refused: version 2 is worse than version 1 on roc_auc and log_loss"
    )
    assert "(worse)" in comparison.summary() and "noise" not in comparison.summary()


def test_within_the_noise_is_said_only_of_an_interval_that_straddles_zero(leads: Leads) -> None:
    comparison = compare(leads.y, leads.jittered, leads.calibrated, PARAMS, threshold=0.5)
    for lead in (comparison.ranking, comparison.scoring):
        assert lead.lead.low < 0 < lead.lead.high
        assert lead.verdict(0.0) == "within the noise"
    assert not comparison.real
    assert "is within the noise" in comparison.outcome(2, 1)


def test_a_lead_must_clear_the_margin(leads: Leads) -> None:
    lead = compare(leads.y, leads.calibrated, leads.squeezed, PARAMS, threshold=0.5).scoring
    strict = PARAMS.model_copy(update={"margin": lead.lead.low + 0.01})
    comparison = compare(leads.y, leads.calibrated, leads.squeezed, strict, threshold=0.5)
    assert not comparison.real
    assert comparison.scoring.verdict(strict.margin) == "ahead, not above the margin"
    assert "is not above the margin" in comparison.outcome(2, 1)


def test_the_other_metrics_loss_may_reach_its_tolerance_but_not_more() -> None:
    def comparison(loss: float) -> Comparison:
        ranking = Lead("roc_auc", 0.9, 0.8, Interval(low=0.02, high=0.08))
        scoring = Lead("log_loss", 0.41, 0.40, Interval(low=-loss, high=0.01))
        return Comparison(ranking, scoring, 0.0, {"roc_auc": 0.005, "log_loss": 0.01})

    assert comparison(0.01).real
    assert not comparison(0.0101).real
    strict = Comparison(comparison(0.0).ranking, comparison(0.001).scoring, 0.0, {})
    assert not strict.real  # a tolerance not given is 0


def test_the_scoring_rule_and_the_ranking_metric_come_from_params(leads: Leads) -> None:
    params = PARAMS.model_copy(
        update={
            "metric": "pr_auc",
            "scoring_rule": "brier",
            "tolerance": {"pr_auc": 0.0, "brier": 0.0},
        }
    )
    comparison = compare(leads.y, leads.calibrated, leads.weaker, params, threshold=0.5)
    assert (comparison.ranking.metric, comparison.scoring.metric) == ("pr_auc", "brier")
    assert comparison.scoring.challenger < comparison.scoring.other  # lower Brier: better
    assert comparison.scoring.lead.low > 0 and comparison.real


def test_a_model_beats_the_base_rate_only_with_a_real_lead_in_log_loss(leads: Leads) -> None:
    rate = float(leads.y.mean())
    model = compare_with_base_rate(leads.y, leads.weaker, rate, PARAMS, threshold=0.5)
    assert model.metric == "log_loss" and model.lead.low > 0
    noise = np.random.default_rng(3).random(len(leads.y))
    guess = compare_with_base_rate(leads.y, noise, rate, PARAMS, threshold=0.5)
    assert guess.lead.high < 0 and guess.verdict(0.0) == "worse"


def write_params(root: Path, **promotion: object) -> Path:
    settings = yaml.safe_load((PROJ_ROOT / "params.yaml").read_text())
    settings["promotion"].update(promotion)
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


@pytest.mark.parametrize(
    ("promotion", "key"),
    [
        ({"tolerance": {"roc_auc": -0.001, "log_loss": 0.01}}, "promotion.tolerance.roc_auc"),
        ({"margin": 1.0}, "promotion.margin"),
        ({"margin": -0.01}, "promotion.margin"),
        ({"metric": "log_loss"}, "promotion.metric"),
    ],
)
def test_a_promotion_rule_that_cannot_be_met_is_refused_naming_its_key(
    tmp_path: Path, promotion: dict[str, object], key: str
) -> None:
    path = write_params(tmp_path, **promotion)
    with pytest.raises(ConfigError, match=key) as refused:
        load_params(path)
    assert "\n" not in str(refused.value) and str(path) in str(refused.value)


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


def no_check() -> FirstChampionCheck:
    raise AssertionError("the rule decided without checking the first champion")


def scores(low: float) -> Callable[[], Comparison]:
    ranking = Lead("roc_auc", 0.8, 0.7, Interval(low=low, high=low + 0.1))
    scoring = Lead("log_loss", 0.40, 0.41, Interval(low=-0.001, high=0.02))
    tolerance = {"roc_auc": 0.005, "log_loss": 0.01}
    return lambda: Comparison(ranking, scoring, 0.0, tolerance)


def validation(accuracy: float, min_accuracy: float = 0.75) -> ValidationReport:
    problems = [f"accuracy {accuracy:.4f} is below {min_accuracy}"] * (accuracy < min_accuracy)
    return ValidationReport(
        rows=441,
        accuracy=accuracy,
        min_accuracy=min_accuracy,
        first_predictions=[0, 1, 0, 1, 1],
        expected_first=None,
        passed=not problems,
        problems=problems,
    )


def first_check(low: float, accuracy: float = 0.8) -> Callable[[], FirstChampionCheck]:
    lead = Lead("log_loss", 0.38, 0.69, Interval(low=low, high=low + 0.05))
    return lambda: FirstChampionCheck(0.4683, lead, validation(accuracy))


@pytest.mark.parametrize(
    ("champion", "challenger", "release", "promoted", "reason"),
    [
        (None, version(1, "in progress"), False, False, "registration is in progress"),
        (None, version(1, evaluation_set="f" * 32), False, False, "another evaluation set"),
        (version(1), version(1), True, False, "version 1 is the champion already"),
        (version(1), version(2), False, False, "the champion stays version 1"),
        (version(1, evaluation_set="f" * 32), version(2), True, False, "another evaluation"),
    ],
)
def test_the_champion_moves_only_by_the_rule_without_scoring_when_it_need_not(
    champion: Version | None, challenger: Version, release: bool, promoted: bool, reason: str
) -> None:
    decision = decide(champion, challenger, "e" * 32, "roc_auc", release, no_scores, no_check)
    assert decision.promoted is promoted and reason in decision.reason


def test_on_the_release_path_a_real_lead_promotes_and_noise_does_not() -> None:
    real = decide(version(1), version(2), "e" * 32, "roc_auc", True, scores(0.05), no_check)
    assert real.promoted
    assert real.reason.startswith("promoted version 2: it leads on roc_auc and is no worse on")
    assert "roc_auc 0.8000 against the champion's 0.7000, lead +0.0500 to +0.1500" in real.reason
    noise = decide(version(1), version(2), "e" * 32, "roc_auc", True, scores(-0.05), no_check)
    assert not noise.promoted and "within the noise" in noise.reason


def test_the_first_champion_beats_the_base_rate_and_keeps_the_course_contract() -> None:
    first = decide(None, version(1), "e" * 32, "roc_auc", False, no_scores, first_check(0.25))
    assert first.promoted
    assert first.reason.startswith("version 1 is the first champion: it beats the base-rate")
    assert "(the training conversion rate 0.4683 for every lead): log_loss 0.3800" in first.reason
    assert "the course contract holds (accuracy 0.8000, at least 0.75)" in first.reason


@pytest.mark.parametrize(
    ("check", "reason"),
    [
        (first_check(-0.01), "it does not beat the base-rate model"),
        (first_check(0.0), "it does not beat the base-rate model"),
        (first_check(0.25, accuracy=0.7), "it fails the course contract: accuracy 0.7000"),
    ],
)
def test_a_first_champion_below_the_base_rate_or_the_course_contract_is_refused(
    check: Callable[[], FirstChampionCheck], reason: str
) -> None:
    decision = decide(None, version(1), "e" * 32, "roc_auc", False, no_scores, check)
    assert not decision.promoted
    assert decision.reason.startswith("refused: version 1 cannot be the first champion")
    assert reason in decision.reason
