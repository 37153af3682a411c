"""Synthetic raw leads with the schema and the marginal distributions of real ones.

``describe_marginals`` summarises a raw lead frame column by column (level frequencies,
quantiles, share missing); ``generate_leads`` draws any number of rows from that summary.
Columns are drawn independently: the marginals match, the joint distribution does not (so the
target says nothing about the other columns). Used by the benchmarks and by tests that need
realistic files of any size.

``describe_training_marginals`` summarises only the raw rows the data stage keeps (signup leads
in the date window, with a target and an id): every row drawn from that summary passes the
cleaning, so a file of ``n`` such rows gives the model ``n`` leads, with the marginals of the
real leads it is trained on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lead_conversion_prediction.config import DataParams
from lead_conversion_prediction.dataset import kept_rows
from lead_conversion_prediction.schema import ID_COLUMN, validate_leads

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


def describe_training_marginals(
    raw: pd.DataFrame, params: DataParams
) -> dict[str, dict[str, Any]]:
    """Return the ``describe_marginals`` summary of the rows of ``raw`` (as read from the raw
    file) that the data stage keeps with the ``data`` parameters ``params``."""
    kept = kept_rows(validate_leads(raw, "raw leads"), params).to_numpy(dtype=bool)
    return describe_marginals(raw.loc[kept])


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
