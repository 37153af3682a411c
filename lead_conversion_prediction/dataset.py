"""Load and clean the raw leads: steps 1-3 of the reference analysis.

1. Keep the rows whose signup date lies in ``[min_date, max_date]``.
2. Drop the attributes the model does not use.
3. Drop rows without a target or an id, and keep the leads of one source (``signup``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from lead_conversion_prediction.config import ID_COLUMN, TARGET, DataParams
from lead_conversion_prediction.exceptions import ArtifactError, RawDataChangedError
from lead_conversion_prediction.utils.storage import file_digest

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


@dataclass(frozen=True)
class RawDataPin:
    """What ``data/raw/raw_data.csv.dvc`` pins: the file's md5 and the URL it is imported from."""

    file: Path
    md5: str
    url: str


def read_pin(pin_file: Path) -> RawDataPin:
    """Read the raw data's DVC pin: ``outs[0].md5`` and ``deps[0].path``."""
    try:
        pin = yaml.safe_load(pin_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{pin_file}: DVC pin of the raw data not found") from None
    except yaml.YAMLError as error:
        raise ArtifactError(f"{pin_file}: not valid YAML ({error})") from None
    try:
        return RawDataPin(pin_file, str(pin["outs"][0]["md5"]), str(pin["deps"][0]["path"]))
    except (KeyError, IndexError, TypeError):
        raise ArtifactError(
            f"{pin_file}: no 'outs[0].md5' and 'deps[0].path' entries in the DVC pin"
        ) from None


def check_raw_data(path: Path, pinned_md5: str) -> str:
    """Return the file's md5; raise :class:`RawDataChangedError` if it is not the pinned one."""
    if not path.is_file():
        raise ArtifactError(f"{path}: raw data not found; fetch it with 'make data' (dvc pull)")
    actual = file_digest(path, "md5")
    if actual != pinned_md5:
        raise RawDataChangedError(
            f"{path}: md5 {actual} is not the pinned {pinned_md5}; restore it with "
            "'dvc checkout', or pass --accept-changed-raw to train on it anyway"
        )
    return actual


def filter_date_window(leads: pd.DataFrame, params: DataParams) -> pd.DataFrame:
    """Keep the rows whose ``date_part`` lies in the parameter window, both ends included."""
    dates = leads["date_part"]
    inside = (dates >= pd.Timestamp(params.min_date)) & (dates <= pd.Timestamp(params.max_date))
    return leads.loc[inside]


def clean_leads(raw: pd.DataFrame, params: DataParams) -> pd.DataFrame:
    """Apply steps 1-3: date window, unused columns dropped, labelled leads of one source."""
    leads = filter_date_window(raw, params)
    leads = leads.drop(columns=[name for name in UNUSED_COLUMNS if name in leads.columns])
    leads = leads.dropna(subset=[TARGET, ID_COLUMN])
    leads = leads.loc[leads["source"] == params.source]
    return leads.reset_index(drop=True)


def date_limits(leads: pd.DataFrame) -> dict[str, Any]:
    """Return the first and last signup dates actually present, as ISO strings."""
    if leads.empty:
        return {"min_date": None, "max_date": None}
    return {
        "min_date": leads["date_part"].min().date().isoformat(),
        "max_date": leads["date_part"].max().date().isoformat(),
    }


def target_balance(leads: pd.DataFrame) -> dict[str, float]:
    """Return the share of each target class, for the stage log."""
    shares = leads[TARGET].astype("int64").value_counts(normalize=True).sort_index()
    return {str(label): round(float(share), 4) for label, share in shares.items()}
