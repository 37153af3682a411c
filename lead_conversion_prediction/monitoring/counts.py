"""The counts a batch is compared on: per bin of the reference, per level, missing.

Every drift statistic is computed from these counts, and counts add up: the chunks of a large
file, or the partitions of a Spark job, merge into exactly the counts of the whole batch, so
the statistics of the whole come out whichever way it was cut. The predicted probabilities
are also summed per hundredth of a percent (``FINE_BINS``): the expected number of
converters and the expected ROC-AUC follow from those sums.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import pandas as pd
from pydantic import Field

from lead_conversion_prediction.modeling.artifacts import Artifact
from lead_conversion_prediction.monitoring.profile import (
    ReferenceProfile,
    bin_counts,
    level_counts,
)

FINE_BINS = 1000


class NumericCounts(Artifact):
    """A numeric input of the batch in the reference's bins, with its sum for the mean."""

    rows: int = 0
    missing: int = 0
    total: float = 0.0
    psi: list[int]
    ks: list[int]

    def merge(self, other: NumericCounts) -> NumericCounts:
        return NumericCounts(
            rows=self.rows + other.rows,
            missing=self.missing + other.missing,
            total=self.total + other.total,
            psi=_add(self.psi, other.psi),
            ks=_add(self.ks, other.ks),
        )


class CategoricalCounts(Artifact):
    """A categorical input of the batch: the count of each level and of missing values."""

    rows: int = 0
    missing: int = 0
    levels: dict[str, int] = Field(default_factory=dict)

    def merge(self, other: CategoricalCounts) -> CategoricalCounts:
        levels = dict(self.levels)
        for level, count in other.levels.items():
            levels[level] = levels.get(level, 0) + count
        return CategoricalCounts(
            rows=self.rows + other.rows, missing=self.missing + other.missing, levels=levels
        )


class PredictionCounts(NumericCounts):
    """The predicted probabilities: binned like an input, and summed per fine bin as the
    expected converters (``positive``) and non-converters (``negative``) they imply."""

    positive: list[float]
    negative: list[float]

    def merge(self, other: NumericCounts) -> PredictionCounts:
        assert isinstance(other, PredictionCounts)
        merged = super().merge(other)
        return PredictionCounts(
            **dict(merged),
            positive=[a + b for a, b in zip(self.positive, other.positive, strict=True)],
            negative=[a + b for a, b in zip(self.negative, other.negative, strict=True)],
        )


class BatchCounts(Artifact):
    """The counts of a batch of leads against a reference profile."""

    rows: int = 0
    numeric: dict[str, NumericCounts] = Field(default_factory=dict)
    categorical: dict[str, CategoricalCounts] = Field(default_factory=dict)
    prediction: PredictionCounts | None = None

    def merge(self, other: BatchCounts) -> BatchCounts:
        """The counts of both parts of a batch."""
        return BatchCounts(
            rows=self.rows + other.rows,
            numeric=_merge_each(self.numeric, other.numeric),
            categorical=_merge_each(self.categorical, other.categorical),
            prediction=(
                other.prediction
                if self.prediction is None
                else self.prediction
                if other.prediction is None
                else self.prediction.merge(other.prediction)
            ),
        )


Counts = TypeVar("Counts", NumericCounts, CategoricalCounts)


def count_batch(
    profile: ReferenceProfile, leads: pd.DataFrame | None, probability: np.ndarray | None
) -> BatchCounts:
    """Count a part of a batch: its typed inputs (those present; none for a file of scores)
    and its probabilities."""
    if leads is None:
        leads = pd.DataFrame(index=pd.RangeIndex(0 if probability is None else len(probability)))
    numeric = {}
    for name, reference in profile.numeric.items():
        if name in leads:
            values = leads[name].astype("float64").to_numpy()
            numeric[name] = _numeric_counts(values, reference.psi.edges, reference.ks.edges)
    categorical = {}
    for name in profile.categorical:
        if name in leads:
            levels, missing = level_counts(leads[name])
            categorical[name] = CategoricalCounts(rows=len(leads), missing=missing, levels=levels)
    prediction = None
    if probability is not None:
        p = np.asarray(probability, dtype=np.float64)
        binned = _numeric_counts(p, profile.prediction.psi.edges, profile.prediction.ks.edges)
        fine = np.minimum((p * FINE_BINS).astype(np.int64), FINE_BINS - 1)
        prediction = PredictionCounts(
            **dict(binned),
            positive=np.bincount(fine, weights=p, minlength=FINE_BINS).tolist(),
            negative=np.bincount(fine, weights=1 - p, minlength=FINE_BINS).tolist(),
        )
    return BatchCounts(
        rows=len(leads), numeric=numeric, categorical=categorical, prediction=prediction
    )


def merge_all(parts: list[BatchCounts]) -> BatchCounts:
    """The counts of every part, merged in order."""
    whole = BatchCounts()
    for part in parts:
        whole = whole.merge(part)
    return whole


def _numeric_counts(values: np.ndarray, psi: list[float], ks: list[float]) -> NumericCounts:
    present = values[~np.isnan(values)]
    fine = bin_counts(present, ks)
    # The deciles are among the percentiles (both are values of the same training rows), so
    # each KS bin lies in one PSI bin: its counts add up to the PSI counts, one search saved.
    nested = set(psi) <= set(ks)
    starts = np.searchsorted(psi, [-np.inf, *ks], side="right") if nested else None
    coarse = (
        np.bincount(starts, weights=fine, minlength=len(psi) + 1).astype(np.int64)
        if starts is not None
        else bin_counts(present, psi)
    )
    return NumericCounts(
        rows=len(values),
        missing=int(len(values) - len(present)),
        total=float(present.sum()),
        psi=coarse.tolist(),
        ks=fine.tolist(),
    )


def _add(a: list[int], b: list[int]) -> list[int]:
    return [x + y for x, y in zip(a, b, strict=True)]


def _merge_each(a: dict[str, Counts], b: dict[str, Counts]) -> dict[str, Counts]:
    merged = dict(a)
    for name, counts in b.items():
        merged[name] = merged[name].merge(counts) if name in merged else counts
    return merged
