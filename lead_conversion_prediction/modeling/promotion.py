"""The promotion rule: a challenger takes the champion alias only with a real lead.

Both models are scored on the same evaluation set, which neither trained on: the holdout rows
of the split, identified by their md5 and recorded on every version. The lead of the
challenger over the champion on the promotion metric is measured on paired bootstrap
resamples of those rows; it is real when the lower end of its interval is above the margin.
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
from lead_conversion_prediction.exceptions import ConfigError
from lead_conversion_prediction.modeling.artifacts import Interval
from lead_conversion_prediction.modeling.evaluate import (
    LOWER_IS_BETTER,
    METRIC_NAMES,
    bootstrap_draws,
    compute_metrics,
    percentile_interval,
)
from lead_conversion_prediction.modeling.registry import COMPLETE
from lead_conversion_prediction.schema import ID_COLUMN, MODEL_INPUT_COLUMNS, TARGET


@dataclass(frozen=True)
class Comparison:
    """The challenger against the champion on the evaluation set, on the promotion metric."""

    metric: str
    challenger: float
    champion: float
    lead: Interval  # challenger better than champion: positive, whatever the metric's sense
    margin: float

    @property
    def real(self) -> bool:
        """True when the lower end of the lead's interval is above the margin."""
        return self.lead.low > self.margin

    def summary(self) -> str:
        """One line: both scores and the lead's interval."""
        return (
            f"{self.metric} {self.challenger:.4f} against the champion's {self.champion:.4f}, "
            f"lead {self.lead.low:+.4f} to {self.lead.high:+.4f} (margin {self.margin:g})"
        )


def check_metric(metric: str) -> None:
    """Raise :class:`ConfigError` unless the promotion metric can be bootstrapped."""
    if metric not in METRIC_NAMES:
        raise ConfigError(f"promotion.metric: '{metric}' is not one of {', '.join(METRIC_NAMES)}")


def compare(
    y: np.ndarray | pd.Series,
    challenger: np.ndarray,
    champion: np.ndarray,
    params: PromotionParams,
    threshold: float,
) -> Comparison:
    """Score both models' probabilities on the same rows and measure the challenger's lead."""
    check_metric(params.metric)
    draws = bootstrap_draws(
        y,
        {"challenger": challenger, "champion": champion},
        threshold,
        params.resamples,
        params.random_state,
    )
    sense = -1.0 if params.metric in LOWER_IS_BETTER else 1.0
    lead = sense * (draws["challenger"][params.metric] - draws["champion"][params.metric])
    scores = {
        name: compute_metrics(y, probability, threshold)[params.metric]
        for name, probability in (("challenger", challenger), ("champion", champion))
    }
    return Comparison(
        metric=params.metric,
        challenger=scores["challenger"],
        champion=scores["champion"],
        lead=percentile_interval(lead, params.confidence),
        margin=params.margin,
    )


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
) -> Decision:
    """The register stage's decision for a newly registered version: the first complete version
    becomes champion; on the release path a challenger with a real lead replaces it.

    ``scores`` compares both models on the evaluation set; it is called only when the rule
    needs their scores.
    """
    number = challenger.number
    if challenger.registration != COMPLETE:
        why = f"version {number}'s registration is {challenger.registration}"
        return Decision(False, f"{why}: it cannot be champion")
    if champion is None:
        return Decision(True, f"version {number} is the first champion")
    if champion.number == number:
        return Decision(False, f"version {number} is the champion already")
    if not release:
        return Decision(
            False,
            f"version {number} is the challenger; the champion stays version "
            f"{champion.number} (compare and promote with 'lcp promote')",
        )
    return judge(champion, challenger, evaluation_set_md5, metric, scores)


def judge(
    champion: Version,
    challenger: Version,
    evaluation_set_md5: str,
    metric: str,
    scores: Callable[[], Comparison],
) -> Decision:
    """Whether ``challenger``'s lead over ``champion`` on this evaluation set is real; both must
    have been recorded with this evaluation set and promotion metric."""
    here = evaluation_set_md5
    for who, version in (("the challenger", challenger), ("the champion", champion)):
        label = f"{who} (version {version.number})"
        if version.evaluation_set_md5 != here:
            return Decision(
                False,
                f"refused: {label} was evaluated on another evaluation set "
                f"({str(version.evaluation_set_md5)[:8]}, here {here[:8]}): it may have "
                "trained on rows this comparison would score; compare on the same split",
            )
        if version.promotion_metric != metric:
            return Decision(
                False,
                f"refused: {label} was recorded with promotion metric "
                f"'{version.promotion_metric}', not '{metric}'",
            )
    comparison = scores()
    if comparison.real:
        return Decision(True, f"promoted version {challenger.number}: {comparison.summary()}")
    return Decision(
        False,
        f"refused: version {challenger.number}'s lead over version {champion.number} is within "
        f"the noise: {comparison.summary()}",
    )
