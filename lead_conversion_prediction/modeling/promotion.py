"""The promotion rule: a challenger takes the champion alias only with a real lead.

Both models are scored on the same evaluation set, which neither trained on: the holdout rows
of the split, identified by their md5 and recorded on every version. The lead of the
challenger over the champion on the promotion metric is measured on paired bootstrap
resamples of those rows; it is real when the lower end of its interval is above the margin.
Everything here is pure: the stages fetch the models and write the decision.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

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
