"""Synthetic raw leads: drawn from marginal distributions, or resampled from real kept rows.

``describe_marginals`` summarises a raw lead frame column by column (level frequencies,
quantiles, share missing); ``generate_leads`` draws any number of rows from that summary.
Columns are drawn independently: the marginals match, the joint distribution does not (so the
target says nothing about the other columns). Used by the scoring benchmark and by tests that
need realistic files of any size.

``resample_training_leads`` draws rows, with replacement, from the raw rows the data stage keeps
(signup leads in the date window, with a target and an id), gives them fresh unique ids and
jitters their continuous values a little. The joint distribution is the real one, so a model
trained on them learns what it learns from the real leads, and every row passes the cleaning:
a file of ``n`` such rows gives the data stage ``n`` leads. Used by the training benchmark.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lead_conversion_prediction.config import DataParams
from lead_conversion_prediction.dataset import kept_rows
from lead_conversion_prediction.schema import (
    CONTINUOUS_FEATURES,
    FIELDS,
    ID_COLUMN,
    validate_leads,
)

_QUANTILES = np.linspace(0.0, 1.0, 201)
_MAX_LEVELS = 50


def describe_marginals(raw: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Return a JSON-friendly summary of each column's distribution in ``raw``."""
    profile: dict[str, dict[str, Any]] = {}
    for name, column in raw.items():
        present = column.dropna()
        missing = round(float(column.isna().mean()), 6)
        if name == ID_COLUMN:
            profile[str(name)] = {"kind": "id", "missing": missing}
        elif pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            values = present.to_numpy(dtype=np.float64)
            whole = bool(np.all(values == np.round(values)))
            levels = np.unique(values)
            if whole and len(levels) <= 12:  # a code such as customer_group: keep its levels
                profile[str(name)] = _levels(present.astype("int64"), missing)
            else:
                quantiles = np.quantile(values, _QUANTILES) if len(values) else []
                profile[str(name)] = {
                    "kind": "number",
                    "quantiles": [float(q) for q in quantiles],
                    "integer": whole,
                    "missing": missing,
                }
        else:
            profile[str(name)] = _levels(present.astype("str"), missing)
    return profile


def _levels(values: pd.Series, missing: float) -> dict[str, Any]:
    counts = values.value_counts().head(_MAX_LEVELS)
    levels = [level.item() if isinstance(level, np.generic) else level for level in counts.index]
    return {
        "kind": "levels",
        "levels": levels,
        "weights": [round(float(w), 8) for w in counts / counts.sum()],
        "missing": missing,
    }


def generate_leads(n: int, profile: dict[str, dict[str, Any]], seed: int = 0) -> pd.DataFrame:
    """Draw ``n`` raw leads from a ``describe_marginals`` summary, reproducibly."""
    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    for name, spec in profile.items():
        if spec["kind"] == "id":
            columns[name] = np.arange(1, n + 1, dtype=np.int64)
            continue
        if spec["kind"] == "number":
            quantiles = np.asarray(spec["quantiles"], dtype=np.float64)
            values: Any = np.interp(rng.random(n), _QUANTILES, quantiles)
            if spec["integer"]:
                values = np.round(values)
        else:
            weights = np.asarray(spec["weights"], dtype=np.float64)
            picks = rng.choice(len(weights), size=n, p=weights / weights.sum())
            values = np.asarray(spec["levels"], dtype=object)[picks]
        column = pd.Series(values)
        if spec["missing"] > 0:
            column = column.where(rng.random(n) >= spec["missing"])
        columns[name] = column.to_numpy()
    return pd.DataFrame(columns)


def resample_training_leads(
    raw: pd.DataFrame, n: int, params: DataParams, seed: int = 0, jitter: float = 0.02
) -> pd.DataFrame:
    """Draw ``n`` rows of ``raw`` (as read from a raw file) that the data stage keeps with the
    ``data`` parameters ``params``, reproducibly, as raw leads with ids 1..n.

    Rows are drawn with replacement and keep every column as read, except the id and the
    continuous columns: each present value is multiplied by ``1 + jitter * N(0, 1)`` (kept
    within the contract's bounds, whole numbers rounded), so repeated rows differ a little.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    kept = kept_rows(validate_leads(raw, "raw leads"), params).to_numpy(dtype=bool)
    pool = raw.loc[kept].reset_index(drop=True)
    if pool.empty:
        raise ValueError("no raw row is kept by the data parameters: nothing to resample")
    rng = np.random.default_rng(seed)
    leads = pool.iloc[rng.integers(0, len(pool), size=n)].reset_index(drop=True)
    leads[ID_COLUMN] = np.arange(1, n + 1, dtype=np.int64)
    for name in CONTINUOUS_FEATURES:
        if name not in leads.columns:
            continue
        values = pd.to_numeric(leads[name], errors="coerce").to_numpy(dtype=np.float64)
        present = values[~np.isnan(values)]
        whole = bool(np.all(present == np.round(present)))
        jittered = values * (1.0 + jitter * rng.standard_normal(n))
        field = FIELDS[name]
        jittered = np.clip(jittered, field.minimum, field.maximum)
        if whole:
            jittered = np.round(jittered)
        leads[name] = jittered
    return leads
