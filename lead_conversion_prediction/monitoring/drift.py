"""The drift statistics of a batch against the reference profile, and their status.

Per numeric input (and the predicted probability): the population stability index over the
reference's 10 quantile bins and the two-sample KS statistic at its 100 quantile edges. Per
categorical input: the Jensen-Shannon distance and a chi-square test of the level shares.
Per input: the change in its missing rate and the share of rows with levels the training rows
never had. A statistic is ``warn`` or ``alert`` past its limits (``params.yaml: monitor``);
a p-value alone never alerts: the KS statistic alerts only past its limit *and* with a small
p-value, and not at all on a batch under ``min_rows`` rows, whose tests are weak.
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Literal

import numpy as np
from pydantic import Field

from lead_conversion_prediction.config import Limits, MonitorParams
from lead_conversion_prediction.modeling.artifacts import Artifact
from lead_conversion_prediction.monitoring.counts import (
    BatchCounts,
    CategoricalCounts,
    NumericCounts,
    PredictionCounts,
)
from lead_conversion_prediction.monitoring.profile import (
    PREDICTION,
    CategoricalProfile,
    NumericProfile,
    ReferenceProfile,
)

Status = Literal["ok", "warn", "alert"]
_RANK: dict[Status, int] = {"ok": 0, "warn": 1, "alert": 2}


class Statistic(Artifact):
    """One statistic of one input: its value, p-value where it is a test, limits and status."""

    name: str
    value: float
    p_value: float | None = None
    warn: float | None = None
    alert: float | None = None
    status: Status = "ok"


class Distribution(Artifact):
    """An input's shares per bin or level, in the reference and in the batch (for figures)."""

    labels: list[str]
    reference: list[float]
    batch: list[float]


class InputDrift(Artifact):
    """How one input (or the prediction) of the batch compares with the reference."""

    name: str
    kind: Literal["numeric", "categorical", "prediction"]
    status: Status
    statistics: list[Statistic]
    distribution: Distribution
    missing_rate: float
    reference_missing_rate: float
    unseen_levels: list[str] = Field(default_factory=list)
    note: str = ""

    @property
    def worst(self) -> Statistic:
        """The statistic that decided the status (the first of the worst)."""
        return max(self.statistics, key=lambda s: _RANK[s.status])


class PredictionSummary(Artifact):
    """What the probabilities say before any outcome is known."""

    mean: float
    training_rate: float
    expected_converters: float
    expected_roc_auc: float | None


class DriftReport(Artifact):
    """``drift.json``: a batch against the model's reference profile."""

    model: str
    batch: str
    batch_md5: str
    rows: int
    weak: bool
    status: Status
    alerts: list[str]
    inputs: list[InputDrift]
    prediction: InputDrift | None
    summary: PredictionSummary | None
    limits: MonitorParams

    def alert_lines(self) -> list[str]:
        """One line per input in alert: its name and the statistics past their limit."""
        lines = []
        for item in [*self.inputs, *([self.prediction] if self.prediction else [])]:
            if item.status == "alert":
                past = ", ".join(
                    f"{s.name} {s.value:.3g} (alert at {s.alert:g})"
                    for s in item.statistics
                    if s.status == "alert" and s.alert is not None
                )
                lines.append(f"drift alert: {item.name}: {past}")
        return lines


def drift_report(
    profile: ReferenceProfile,
    counts: BatchCounts,
    params: MonitorParams,
    model: str,
    batch: str,
    batch_md5: str,
) -> DriftReport:
    """Compare a batch's counts with the reference profile."""
    weak = counts.rows < params.min_rows
    inputs: list[InputDrift] = []
    for name, reference in profile.numeric.items():
        if name in counts.numeric:
            inputs.append(numeric_drift(name, reference, counts.numeric[name], params, weak))
    for name, categories in profile.categorical.items():
        if name in counts.categorical:
            inputs.append(categorical_drift(name, categories, counts.categorical[name], params))
    inputs.sort(key=lambda item: (-_RANK[item.status], item.name))
    prediction = summary = None
    if counts.prediction is not None and counts.prediction.rows:
        prediction = numeric_drift(
            PREDICTION, profile.prediction, counts.prediction, params, weak, "prediction"
        )
        summary = prediction_summary(counts.prediction, profile.conversion_rate)
    every = [*inputs, *([prediction] if prediction else [])]
    return DriftReport(
        model=model,
        batch=batch,
        batch_md5=batch_md5,
        rows=counts.rows,
        weak=weak,
        status=max((item.status for item in every), key=_RANK.__getitem__, default="ok"),
        alerts=[item.name for item in every if item.status == "alert"],
        inputs=inputs,
        prediction=prediction,
        summary=summary,
        limits=params,
    )


def numeric_drift(
    name: str,
    reference: NumericProfile,
    batch: NumericCounts,
    params: MonitorParams,
    weak: bool,
    kind: Literal["numeric", "prediction"] = "numeric",
) -> InputDrift:
    """PSI, KS and the missing rate of a numeric input (or the prediction)."""
    ks, p = ks_statistic(reference.ks.counts, batch.ks)
    ks_status = _status(ks, params.ks)
    if weak or p is None or p >= params.p_value:
        ks_status = "ok"  # past its limit by chance alone, as far as the test can tell
    missing_change = _rate(batch.missing, batch.rows) - _rate(reference.missing, reference.rows)
    statistics = [
        _limited("psi", psi(reference.psi.counts, batch.psi, params.psi_floor), params.psi),
        Statistic(
            name="ks",
            value=ks,
            p_value=p,
            warn=params.ks.warn,
            alert=params.ks.alert,
            status=ks_status,
        ),
        _limited("missing_rate_change", abs(missing_change), params.missing_rate),
    ]
    present = batch.rows - batch.missing
    if present:
        statistics.append(Statistic(name="mean", value=batch.total / present))
    return InputDrift(
        name=name,
        kind=kind,
        status=_worst(statistics),
        statistics=statistics,
        distribution=Distribution(
            labels=bin_labels(reference.psi.edges),
            reference=_shares(reference.psi.counts),
            batch=_shares(batch.psi),
        ),
        missing_rate=_rate(batch.missing, batch.rows),
        reference_missing_rate=_rate(reference.missing, reference.rows),
        note="" if present else "no values in the batch",
    )


def categorical_drift(
    name: str, reference: CategoricalProfile, batch: CategoricalCounts, params: MonitorParams
) -> InputDrift:
    """Jensen-Shannon distance, chi-square, unseen levels and missing rate of a category."""
    levels = sorted(set(reference.levels) | set(batch.levels), key=_level_order)
    ref = np.array([reference.levels.get(level, 0) for level in levels], dtype=np.float64)
    new = np.array([batch.levels.get(level, 0) for level in levels], dtype=np.float64)
    unseen = [level for level in levels if level not in reference.levels]
    unseen_rows = int(sum(batch.levels[level] for level in unseen))
    missing_change = _rate(batch.missing, batch.rows) - _rate(reference.missing, reference.rows)
    distance = js_distance(ref, new)
    chi2, p = chi_square(ref, new, params.psi_floor)
    statistics = [
        _limited("js", distance, params.js),
        Statistic(name="chi2", value=chi2, p_value=p),  # a test alone never alerts
        _limited("unseen_share", _rate(unseen_rows, batch.rows), params.unseen_share),
        _limited("missing_rate_change", abs(missing_change), params.missing_rate),
    ]
    return InputDrift(
        name=name,
        kind="categorical",
        status=_worst(statistics),
        statistics=statistics,
        distribution=Distribution(labels=levels, reference=_shares(ref), batch=_shares(new)),
        missing_rate=_rate(batch.missing, batch.rows),
        reference_missing_rate=_rate(reference.missing, reference.rows),
        unseen_levels=unseen,
        note="" if new.sum() else "no values in the batch",
    )


def prediction_summary(prediction: PredictionCounts, training_rate: float) -> PredictionSummary:
    """The mean probability, and the converters and ROC-AUC the probabilities imply."""
    positive = np.asarray(prediction.positive)
    negative = np.asarray(prediction.negative)
    present = prediction.rows - prediction.missing
    return PredictionSummary(
        mean=prediction.total / present if present else math.nan,
        training_rate=training_rate,
        expected_converters=float(positive.sum()),
        expected_roc_auc=expected_roc_auc(positive, negative),
    )


def psi(reference: list[int], batch: list[int], floor: float) -> float:
    """The population stability index of two sets of bin counts; empty bins count ``floor``."""
    r, b = _floored(reference, floor), _floored(batch, floor)
    return float(np.sum((b - r) * np.log(b / r)))


def ks_statistic(reference: list[int], batch: list[int]) -> tuple[float, float | None]:
    """The two-sample KS statistic at the bins' edges, and its asymptotic p-value."""
    from scipy.special import kolmogorov

    n, m = sum(reference), sum(batch)
    if not n or not m:
        return 0.0, None
    gap = np.abs(np.cumsum(reference)[:-1] / n - np.cumsum(batch)[:-1] / m)
    statistic = float(gap.max()) if len(gap) else 0.0
    return statistic, float(kolmogorov(statistic * math.sqrt(n * m / (n + m))))


def js_distance(reference: np.ndarray, batch: np.ndarray) -> float:
    """The Jensen-Shannon distance (base 2, from 0 to 1) of two sets of level counts."""
    from scipy.spatial.distance import jensenshannon

    if not reference.sum() or not batch.sum():
        return 0.0
    return float(jensenshannon(reference, batch, base=2))


def chi_square(reference: np.ndarray, batch: np.ndarray, floor: float) -> tuple[float, float]:
    """Pearson's chi-square of the batch's level counts against the reference's shares."""
    from scipy.stats import chi2

    total = batch.sum()
    if not total or len(batch) < 2:
        return 0.0, 1.0
    expected = _floored(reference, floor) * total
    statistic = float(np.sum((batch - expected) ** 2 / expected))
    return statistic, float(chi2.sf(statistic, len(batch) - 1))


def expected_roc_auc(positive: np.ndarray, negative: np.ndarray) -> float | None:
    """The ROC-AUC expected if the probabilities are right: each lead converts with its
    probability. ``positive`` and ``negative`` are the probabilities' sums (and their
    complements') per fine bin; ties within a bin count a half."""
    pairs = positive.sum() * negative.sum()
    if pairs <= 0:
        return None
    below = np.cumsum(negative) - negative
    return float((np.sum(positive * below) + 0.5 * np.sum(positive * negative)) / pairs)


def bin_labels(edges: list[float]) -> list[str]:
    """Labels of the bins ``edges`` cut: ``< 2``, ``2 to 5``, ``>= 9``."""
    if not edges:
        return ["all"]
    inner = [f"{a:.3g} to {b:.3g}" for a, b in pairwise(edges)]
    return [f"< {edges[0]:.3g}", *inner, f">= {edges[-1]:.3g}"]


def _limited(name: str, value: float, limits: Limits) -> Statistic:
    return Statistic(
        name=name, value=value, warn=limits.warn, alert=limits.alert, status=_status(value, limits)
    )


def _status(value: float, limits: Limits) -> Status:
    return "alert" if value >= limits.alert else "warn" if value >= limits.warn else "ok"


def _worst(statistics: list[Statistic]) -> Status:
    return max((s.status for s in statistics), key=_RANK.__getitem__, default="ok")


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _shares(counts: list[int] | np.ndarray) -> list[float]:
    values = np.asarray(counts, dtype=np.float64)
    total = values.sum()
    shares: list[float] = (values / total if total else values).tolist()
    return shares


def _floored(counts: list[int] | np.ndarray, floor: float) -> np.ndarray:
    shares: np.ndarray = np.maximum(np.asarray(_shares(counts)), floor)
    floored: np.ndarray = shares / shares.sum()
    return floored


def _level_order(level: str) -> tuple[int, float, str]:
    """Numbers in numeric order, then text."""
    try:
        return (0, float(level), level)
    except ValueError:
        return (1, 0.0, level)
