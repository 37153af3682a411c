"""Score raw leads with the fitted lead model."""

from __future__ import annotations

from typing import Any

import pandas as pd

from lead_conversion_prediction.config import ID_COLUMN, MODEL_INPUT_COLUMNS
from lead_conversion_prediction.modeling.evaluate import positive_probability


def score_leads(model: Any, leads: pd.DataFrame, threshold: float = 0.5) -> pd.DataFrame:
    """Return each lead's conversion probability, label (above ``threshold``) and rank."""
    probability = positive_probability(model, leads.loc[:, list(MODEL_INPUT_COLUMNS)])
    scores = pd.DataFrame(
        {
            ID_COLUMN: leads[ID_COLUMN].to_numpy() if ID_COLUMN in leads else range(len(leads)),
            "conversion_probability": probability,
            "predicted_label": (probability > threshold).astype("int64"),
        }
    )
    order = scores["conversion_probability"].rank(method="first", ascending=False)
    scores["rank"] = order.astype("int64")
    return scores
