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
    """The training rows' inputs and the holdout rows' predicted probabilities."""

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
    inner = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1], method="inverted_cdf")
    # An edge at the minimum would open a bin no training value falls below.
    return [float(edge) for edge in np.unique(inner) if edge > values.min()]


def bin_counts(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """How many of ``values`` (no missing) fall in each bin of ``edges``."""
    index = np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="right")
    return np.bincount(index, minlength=len(edges) + 1)


def level_texts(values: pd.Series) -> pd.Series:
    """A categorical column's values as level names: ``3``, ``true``, ``signup``; missing as NA."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.map({True: "true", False: "false"}).astype("string")
    if pd.api.types.is_float_dtype(values.dtype):
        whole = values.dropna()
        if (whole == whole.round()).all():
            return values.astype("Int64").astype("string")
    return values.astype("string")


def level_counts(values: pd.Series) -> tuple[dict[str, int], int]:
    """The count of each level of a categorical column, and of its missing values."""
    texts = level_texts(values)
    counts = texts.value_counts(dropna=True)
    return {str(level): int(count) for level, count in counts.items()}, int(texts.isna().sum())


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
    leads: pd.DataFrame, converted: pd.Series, holdout_probability: np.ndarray
) -> ReferenceProfile:
    """Profile the training rows' inputs (typed by the data contract) and the probabilities
    the model gives the holdout rows."""
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
        prediction=numeric_profile(holdout_probability),
    )
