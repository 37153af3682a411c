"""The reference profile: what the training rows and the model's scores looked like.

``lcp train`` writes it beside the model (``models/reference_profile.json``, a member of the
model set) and registration logs it with the model, so every batch can be compared with the
rows the model learned from. Numeric inputs keep quantile bin edges (10 for PSI, 100 for the
KS statistic) and the training counts per bin; categorical inputs their level counts; every
input its missing count. The predicted probability is profiled the same way, from the holdout
rows (never the rows the model was fitted on).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from lead_conversion_prediction.modeling.artifacts import Artifact
from lead_conversion_prediction.schema import CONTINUOUS_FEATURES

PROFILE_VERSION = 1
PSI_BINS = 10
KS_BINS = 100
# The inputs profiled: the model's continuous inputs, binned; its categorical ones and the
# lead's source (which the model was trained on one level of), by level.
NUMERIC_INPUTS = CONTINUOUS_FEATURES
CATEGORICAL_INPUTS = ("customer_group", "onboarding", "source")
PREDICTION = "prediction"


class Bins(Artifact):
    """Counts of values per bin: bin ``i`` holds ``edges[i-1] <= x < edges[i]``."""

    edges: list[float]
    counts: list[int]


class NumericProfile(Artifact):
    """A numeric input (or the prediction) on some rows: its bins, missing count and mean."""

    rows: int
    missing: int
    mean: float | None
    psi: Bins
    ks: Bins


class CategoricalProfile(Artifact):
    """A categorical input on some rows: the count of each level, and of missing values."""

    rows: int
    missing: int
    levels: dict[str, int]


class ReferenceProfile(Artifact):
    """The training rows' inputs and the model's probabilities on them."""

    profile_version: int = PROFILE_VERSION
    rows: int
    conversion_rate: float
    numeric: dict[str, NumericProfile]
    categorical: dict[str, CategoricalProfile]
    prediction: NumericProfile
    prediction_rows: Literal["holdout", "out_of_fold"] = "holdout"


def quantile_edges(values: np.ndarray, bins: int) -> list[float]:
    """The inner cut points of ``bins`` quantile bins of ``values``: values of the data, so
    whole numbers cut at whole numbers (ties merged, so there may be fewer bins)."""
    if len(values) == 0:
        return []
    # k / bins, each correctly rounded: the deciles' levels are exactly among the percentiles'.
    levels = np.arange(1, bins) / bins
    inner = np.quantile(values, levels, method="inverted_cdf")
    # An edge at the minimum would open a bin no training value falls below.
    return [float(edge) for edge in np.unique(inner) if edge > values.min()]


def bin_counts(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """How many of ``values`` (no missing) fall in each bin of ``edges``."""
    index = np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="right")
    return np.bincount(index, minlength=len(edges) + 1)


def level_text(value: object) -> str:
    """A categorical value as its level's name: ``3`` (from 3 or 3.0), ``true``, ``signup``."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def level_counts(values: pd.Series) -> tuple[dict[str, int], int]:
    """The count of each level of a categorical column, and of its missing values.

    The values are counted as they are typed, and only the few levels found are named: a
    chunk of a million rows costs one hash count, not a million conversions to text.
    """
    levels: dict[str, int] = {}
    for value, count in values.value_counts(dropna=True).items():
        name = level_text(value)
        levels[name] = levels.get(name, 0) + int(count)
    return levels, int(values.isna().sum())


def numeric_profile(values: np.ndarray) -> NumericProfile:
    """Profile one numeric input, or the predictions, on the reference rows."""
    values = np.asarray(values, dtype=np.float64)
    present = values[~np.isnan(values)]
    psi, ks = quantile_edges(present, PSI_BINS), quantile_edges(present, KS_BINS)
    return NumericProfile(
        rows=len(values),
        missing=int(len(values) - len(present)),
        mean=float(present.mean()) if len(present) else None,
        psi=Bins(edges=psi, counts=bin_counts(present, psi).tolist()),
        ks=Bins(edges=ks, counts=bin_counts(present, ks).tolist()),
    )


def build_profile(
    leads: pd.DataFrame, converted: pd.Series, probability: np.ndarray
) -> ReferenceProfile:
    """Profile the training rows' inputs (typed by the data contract) and the probabilities
    the model gives them."""
    numeric = {
        name: numeric_profile(leads[name].astype("float64").to_numpy())
        for name in NUMERIC_INPUTS
        if name in leads
    }
    categorical = {}
    for name in CATEGORICAL_INPUTS:
        if name in leads:
            levels, missing = level_counts(leads[name])
            categorical[name] = CategoricalProfile(rows=len(leads), missing=missing, levels=levels)
    return ReferenceProfile(
        rows=len(leads),
        conversion_rate=float(np.mean(converted)),
        numeric=numeric,
        categorical=categorical,
        prediction=numeric_profile(probability),
    )
