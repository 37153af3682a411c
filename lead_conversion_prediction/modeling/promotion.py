"""The promotion rule: a challenger takes the champion alias only when it is better, and no
worse.

Both models are scored on the same evaluation set, which neither trained on: the holdout rows
of the split, identified by their md5 and recorded on every version. The challenger's lead
over the champion is measured on paired bootstrap resamples of those rows (the same resamples
for every metric), on the ranking metric (ROC-AUC) and on the proper scoring rule (log-loss).
It is promoted only when it leads on one of them, the lower end of the lead's interval above
the margin, and is no worse on the other: the most it may lose there (the lower end of its
lead, negated) is within that metric's tolerance. A model that ranks better with broken
probabilities is refused; so is one with better probabilities that ranks worse.

The first champion has no champion to beat: it must beat the base-rate model (the training
conversion rate for every lead) on the scoring rule, the lower end of its lead above zero,
and pass the validator's check of its classifier.

Everything here is pure: the stages fetch the versions and the models' scores, and carry out
the decision.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lead_conversion_prediction.config import PromotionParams
from lead_conversion_prediction.modeling.artifacts import Interval, ValidationReport
from lead_conversion_prediction.modeling.evaluate import (
    LOWER_IS_BETTER,
    bootstrap_draws,
    compute_metrics,
    percentile_interval,
)
from lead_conversion_prediction.modeling.registry import COMPLETE
from lead_conversion_prediction.schema import ID_COLUMN, MODEL_INPUT_COLUMNS, TARGET


@dataclass(frozen=True)
class Lead:
    """The challenger against another model on one metric: both scores, and the interval of
    the challenger's lead (positive when it is better, whatever the metric's sense)."""

    metric: str
    challenger: float
    other: float
    lead: Interval

    def verdict(self, margin: float) -> str:
        """``ahead`` when the lead's interval lies above the margin, ``worse`` when it lies
        wholly below zero, ``within the noise`` when it straddles zero (``the same`` when it
        is zero alone: the same ranks, say)."""
        low, high = self.lead.low, self.lead.high
        if low > margin:
            return "ahead"
        if low > 0:
            return "ahead, not above the margin"
        if high < 0:
            return "worse"
        return "the same" if low == high == 0 else "within the noise"

    def loss(self) -> float:
        """The most the challenger may lose on this metric: the lead's lower end, negated."""
        return max(0.0, -self.lead.low)

    def describe(self, margin: float, against: str = "") -> str:
        """Both scores, the lead's interval and its verdict."""
        return (
            f"{self.metric} {self.challenger:.4f} against {against}{self.other:.4f}, lead "
            f"{self.lead.low:+.4f} to {self.lead.high:+.4f} ({self.verdict(margin)})"
        )


def leads_on_resamples(
    y: np.ndarray | pd.Series,
    challenger: np.ndarray,
    other: np.ndarray,
    metrics: tuple[str, ...],
    params: PromotionParams,
    threshold: float,
) -> tuple[Lead, ...]:
    """The challenger's lead over ``other`` on each metric, on the same paired resamples."""
    draws = bootstrap_draws(
        y,
        {"challenger": challenger, "other": other},
        threshold,
        params.resamples,
        params.random_state,
    )
    scores = {
        name: compute_metrics(y, probability, threshold)
        for name, probability in (("challenger", challenger), ("other", other))
    }
    leads = []
    for metric in metrics:
        sense = -1.0 if metric in LOWER_IS_BETTER else 1.0
        lead = sense * (draws["challenger"][metric] - draws["other"][metric])
        leads.append(
            Lead(
                metric=metric,
                challenger=scores["challenger"][metric],
                other=scores["other"][metric],
                lead=percentile_interval(lead, params.confidence),
            )
        )
    return tuple(leads)


@dataclass(frozen=True)
class Comparison:
    """The challenger against the champion on the evaluation set: its lead on the ranking
    metric and on the scoring rule, with the rule's margin and tolerances."""

    ranking: Lead
    scoring: Lead
    margin: float
    tolerance: Mapping[str, float]

    def pairs(self) -> tuple[tuple[Lead, Lead], ...]:
        """Each metric with the other one."""
        return (self.ranking, self.scoring), (self.scoring, self.ranking)

    def allowed(self, metric: str) -> float:
        """The most the challenger may lose on ``metric``: its tolerance (0 when not given)."""
        return self.tolerance.get(metric, 0.0)

    def no_worse(self, lead: Lead) -> bool:
        """Whether the most the challenger may lose on ``lead``'s metric is within tolerance."""
        return lead.loss() <= self.allowed(lead.metric)

    @property
    def real(self) -> bool:
        """True when the challenger leads on one metric and is no worse on the other."""
        return any(
            lead.lead.low > self.margin and self.no_worse(other) for lead, other in self.pairs()
        )

    def outcome(self, challenger: int, champion: int) -> str:
        """Whether ``challenger`` is promoted over ``champion``, and why, in a few words."""
        ahead = [(lead, other) for lead, other in self.pairs() if lead.lead.low > self.margin]
        for lead, other in ahead:
            if self.no_worse(other):
                return (
                    f"promoted version {challenger}: it leads on {lead.metric} and is no worse "
                    f"on {other.metric}"
                )
        if ahead:
            lead, other = ahead[0]
            return (
                f"refused: version {challenger} leads version {champion} on {lead.metric} but "
                f"may be worse on {other.metric} by up to {other.loss():.4f}, beyond its "
                f"tolerance {self.allowed(other.metric):g}"
            )
        verdicts = {
            lead.metric: lead.verdict(self.margin) for lead in (self.ranking, self.scoring)
        }
        worse = [metric for metric, verdict in verdicts.items() if verdict == "worse"]
        if worse:
            return f"refused: version {challenger} is worse than version {champion} on " + (
                " and ".join(worse)
            )
        if set(verdicts.values()) == {"the same"}:
            return f"refused: version {challenger} scores the same as version {champion}"
        if set(verdicts.values()) <= {"within the noise", "the same"}:
            return (
                f"refused: version {challenger}'s lead over version {champion} is within the noise"
            )
        return (
            f"refused: version {challenger}'s lead over version {champion} is not above the "
            f"margin {self.margin:g}"
        )

    def summary(self) -> str:
        """Both metrics: the scores, the lead's interval and its verdict; then the rule."""
        tolerances = ", ".join(
            f"{lead.metric} {self.allowed(lead.metric):g}" for lead in (self.ranking, self.scoring)
        )
        ranking, scoring = (
            lead.describe(self.margin, "the champion's ") for lead in (self.ranking, self.scoring)
        )
        return f"{ranking}; {scoring} (margin {self.margin:g}; tolerance {tolerances})"


def compare(
    y: np.ndarray | pd.Series,
    challenger: np.ndarray,
    champion: np.ndarray,
    params: PromotionParams,
    threshold: float,
) -> Comparison:
    """Score both models' probabilities on the same rows and measure the challenger's lead on
    the ranking metric and on the scoring rule."""
    ranking, scoring = leads_on_resamples(
        y, challenger, champion, (params.metric, params.scoring_rule), params, threshold
    )
    return Comparison(ranking, scoring, params.margin, dict(params.tolerance.items()))


@dataclass(frozen=True)
class FirstChampionCheck:
    """What a first champion shows on the evaluation set: its lead on the scoring rule over the
    base-rate model, and the course contract's check of its classifier."""

    base_rate: float  # the training rows' conversion rate
    lead: Lead
    validation: ValidationReport


def compare_with_base_rate(
    y: np.ndarray | pd.Series,
    probability: np.ndarray,
    base_rate: float,
    params: PromotionParams,
    threshold: float,
) -> Lead:
    """The model's lead on the scoring rule over the base-rate model, which gives every lead
    the training conversion rate, on paired resamples of the rows."""
    base = np.full(len(probability), base_rate, dtype=np.float64)
    (lead,) = leads_on_resamples(y, probability, base, (params.scoring_rule,), params, threshold)
    return lead


def evaluation_set_md5(leads: pd.DataFrame) -> str:
    """The md5 of an evaluation set: its leads' ids, model inputs and outcomes, by id."""
    columns = [ID_COLUMN, *MODEL_INPUT_COLUMNS, TARGET]
    canonical = leads.loc[:, columns].sort_values(ID_COLUMN).to_csv(index=False)
    return hashlib.md5(canonical.encode(), usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class Version:
    """A registered version as the rule sees it: its number, its registration's state, and the
    evaluation set and promotion metric it was recorded with."""

    number: int
    registration: str
    evaluation_set_md5: str | None
    promotion_metric: str | None

    @classmethod
    def of(cls, version: Any, registration: str) -> Version:
        """The facts of an MLflow model version (its tags) and its registration's state."""
        tags: Mapping[str, str] = version.tags
        return cls(
            number=int(version.version),
            registration=registration,
            evaluation_set_md5=tags.get("evaluation_set_md5"),
            promotion_metric=tags.get("promotion_metric"),
        )


@dataclass(frozen=True)
class Decision:
    """Whether the challenger takes the champion alias, and why."""

    promoted: bool
    reason: str


def decide(
    champion: Version | None,
    challenger: Version,
    evaluation_set_md5: str,
    metric: str,
    release: bool,
    scores: Callable[[], Comparison],
    first: Callable[[], FirstChampionCheck],
) -> Decision:
    """The register stage's decision for a newly registered version: a complete version that
    beats the base rate and keeps the course contract becomes the first champion; on the
    release path a challenger better, and no worse, than the champion replaces it.

    ``scores`` compares both models on the evaluation set, and ``first`` checks a would-be
    first champion there; each is called only when the rule needs it.
    """
    number = challenger.number
    if challenger.registration != COMPLETE:
        why = f"version {number}'s registration is {challenger.registration}"
        return Decision(False, f"{why}: it cannot be champion")
    if champion is None:
        return admit(challenger, evaluation_set_md5, first)
    if champion.number == number:
        return Decision(False, f"version {number} is the champion already")
    if not release:
        return Decision(
            False,
            f"version {number} is the challenger; the champion stays version "
            f"{champion.number} (compare and promote with 'lcp promote')",
        )
    return judge(champion, challenger, evaluation_set_md5, metric, scores)


def admit(
    challenger: Version, evaluation_set_md5: str, first: Callable[[], FirstChampionCheck]
) -> Decision:
    """Whether ``challenger`` may be the first champion: recorded with this evaluation set, a
    real lead over the base-rate model on the scoring rule, and the course contract kept."""
    number = challenger.number
    elsewhere = evaluated_elsewhere(challenger, "the challenger", evaluation_set_md5)
    if elsewhere is not None:
        return elsewhere
    check = first()
    lead = check.lead.describe(0.0, "the base-rate model's ")
    rate = f"the training conversion rate {check.base_rate:.4f} for every lead"
    if check.lead.lead.low <= 0:
        return Decision(
            False,
            f"refused: version {number} cannot be the first champion: it does not beat the "
            f"base-rate model ({rate}): {lead}",
        )
    validation = check.validation
    if not validation.passed:
        return Decision(
            False,
            f"refused: version {number} cannot be the first champion: it fails the course "
            f"contract: {'; '.join(validation.problems)}",
        )
    return Decision(
        True,
        f"version {number} is the first champion: it beats the base-rate model ({rate}): "
        f"{lead}; the course contract holds (accuracy {validation.accuracy:.4f}, at least "
        f"{validation.min_accuracy:g})",
    )


def evaluated_elsewhere(version: Version, who: str, here: str) -> Decision | None:
    """A refusal when ``version`` was evaluated on another evaluation set than ``here``."""
    if version.evaluation_set_md5 == here:
        return None
    return Decision(
        False,
        f"refused: {who} (version {version.number}) was evaluated on another evaluation set "
        f"({str(version.evaluation_set_md5)[:8]}, here {here[:8]}): it may have trained on "
        "rows this comparison would score; compare on the same split",
    )


def judge(
    champion: Version,
    challenger: Version,
    evaluation_set_md5: str,
    metric: str,
    scores: Callable[[], Comparison],
) -> Decision:
    """Whether ``challenger`` is better, and no worse, than ``champion`` on this evaluation
    set; both must have been recorded with this evaluation set and promotion metric."""
    for who, version in (("the challenger", challenger), ("the champion", champion)):
        elsewhere = evaluated_elsewhere(version, who, evaluation_set_md5)
        if elsewhere is not None:
            return elsewhere
        if version.promotion_metric != metric:
            return Decision(
                False,
                f"refused: {who} (version {version.number}) was recorded with promotion metric "
                f"'{version.promotion_metric}', not '{metric}'",
            )
    comparison = scores()
    outcome = comparison.outcome(challenger.number, champion.number)
    return Decision(comparison.real, f"{outcome}: {comparison.summary()}")
