"""Load and clean the raw leads: steps 1-3 of the reference analysis.

1. Keep the rows whose signup date lies in ``[min_date, max_date]``.
2. Drop the attributes the model does not use.
3. Drop rows without a target or an id, and keep the leads of one source (``signup``).
"""

from __future__ import annotations

import pandas as pd

from lead_conversion_prediction.config import DataParams
from lead_conversion_prediction.modeling.artifacts import DataSummary
from lead_conversion_prediction.schema import ID_COLUMN, TARGET

UNUSED_COLUMNS = (
    "is_active",
    "marketing_consent",
    "first_booking",
    "existing_customer",
    "last_seen",
    "domain",
    "country",
    "visited_learn_more_before_booking",
    "visited_faq",
)


def filter_date_window(leads: pd.DataFrame, params: DataParams) -> pd.DataFrame:
    """Keep the rows whose ``date_part`` lies in the parameter window, both ends included."""
    dates = leads["date_part"]
    inside = (dates >= pd.Timestamp(params.min_date)) & (dates <= pd.Timestamp(params.max_date))
    return leads.loc[inside]


def kept_rows(raw: pd.DataFrame, params: DataParams) -> pd.Series:
    """Which rows of typed raw leads the cleaning keeps: in the date window, with a target and
    an id, of the training source."""
    dates = raw["date_part"]
    inside = (dates >= pd.Timestamp(params.min_date)) & (dates <= pd.Timestamp(params.max_date))
    labelled = raw[TARGET].notna() & raw[ID_COLUMN].notna()
    return inside & labelled & (raw["source"] == params.source)


def clean_leads(raw: pd.DataFrame, params: DataParams) -> pd.DataFrame:
    """Apply steps 1-3: date window, unused columns dropped, labelled leads of one source."""
    leads = raw.loc[kept_rows(raw, params)]
    leads = leads.drop(columns=[name for name in UNUSED_COLUMNS if name in leads.columns])
    return leads.reset_index(drop=True)


def summarise_data(
    raw: pd.DataFrame, leads: pd.DataFrame, params: DataParams, raw_md5: str, raw_url: str
) -> DataSummary:
    """The facts of a cleaning: the raw file's md5, row counts, the signup dates in the window."""
    window = filter_date_window(raw, params)["date_part"]
    return DataSummary(
        raw_md5=raw_md5,
        raw_url=raw_url,
        rows_raw=len(raw),
        rows_clean=len(leads),
        min_date=window.min().date().isoformat() if len(window) else None,
        max_date=window.max().date().isoformat() if len(window) else None,
    )


def target_balance(leads: pd.DataFrame) -> dict[str, float]:
    """Return the share of each target class, for the stage log."""
    shares = leads[TARGET].astype("int64").value_counts(normalize=True).sort_index()
    return {str(label): round(float(share), 4) for label, share in shares.items()}
