from collections.abc import Callable
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from lead_conversion_prediction.config import DataParams
from lead_conversion_prediction.dataset import (
    UNUSED_COLUMNS,
    check_raw_data,
    clean_leads,
    date_limits,
    filter_date_window,
    read_pin,
    target_balance,
)
from lead_conversion_prediction.exceptions import ArtifactError, RawDataChangedError
from lead_conversion_prediction.schema import validate_leads

WINDOW = DataParams(min_date=date(2024, 1, 5), max_date=date(2024, 1, 10))


@pytest.fixture
def leads(make_leads: Callable[..., pd.DataFrame]) -> pd.DataFrame:
    return validate_leads(make_leads(n=62), "leads.csv")


def test_the_date_window_keeps_both_ends(leads: pd.DataFrame) -> None:
    kept = filter_date_window(leads, WINDOW)
    assert kept["date_part"].min() == pd.Timestamp("2024-01-05")
    assert kept["date_part"].max() == pd.Timestamp("2024-01-10")
    assert len(kept) == 12  # days 5..10, twice each in 62 rows


def test_cleaning_keeps_labelled_signup_leads_without_unused_columns(leads: pd.DataFrame) -> None:
    leads.loc[0, "lead_indicator"] = None
    leads.loc[1, "lead_id"] = None
    cleaned = clean_leads(leads, DataParams(min_date=date(2024, 1, 1), max_date=date(2024, 1, 31)))
    assert set(cleaned["source"]) == {"signup"}
    assert cleaned["lead_indicator"].notna().all() and cleaned["lead_id"].notna().all()
    assert not set(UNUSED_COLUMNS) & set(cleaned.columns)
    assert 0 not in set(cleaned["lead_id"]) and 1 not in set(cleaned["lead_id"])
    assert list(cleaned.index) == list(range(len(cleaned)))


def test_cleaning_does_not_change_its_input(leads: pd.DataFrame) -> None:
    before = leads.copy()
    clean_leads(leads, WINDOW)
    pd.testing.assert_frame_equal(leads, before)


def test_date_limits_are_the_dates_present(leads: pd.DataFrame) -> None:
    assert date_limits(filter_date_window(leads, WINDOW)) == {
        "min_date": "2024-01-05",
        "max_date": "2024-01-10",
    }
    assert date_limits(leads.iloc[:0]) == {"min_date": None, "max_date": None}


def test_target_balance_gives_class_shares(leads: pd.DataFrame) -> None:
    assert target_balance(leads) == {"0": 0.5, "1": 0.5}


def test_the_pinned_md5_is_read_from_the_dvc_file(tmp_path: Path) -> None:
    pin = tmp_path / "raw.csv.dvc"
    pin.write_text(
        "deps:\n- path: https://example.com/raw.csv\nouts:\n- md5: abc123\n  path: raw.csv\n"
    )
    assert (read_pin(pin).md5, read_pin(pin).url) == ("abc123", "https://example.com/raw.csv")
    pin.write_text("outs: []\n")
    with pytest.raises(ArtifactError, match="no 'outs"):
        read_pin(pin)


def test_a_raw_file_that_is_not_the_pinned_version_is_refused(tmp_path: Path) -> None:
    raw = tmp_path / "raw.csv"
    raw.write_text("lead_id\n1\n")
    with pytest.raises(RawDataChangedError, match="is not the pinned 0566"):
        check_raw_data(raw, "05663184eaf8f324162e4d1bc14be387")
    assert check_raw_data(raw, "40232aeebe0a7ca28ae6065859a2e11d") == (
        "40232aeebe0a7ca28ae6065859a2e11d"
    )
    with pytest.raises(ArtifactError, match="make data"):
        check_raw_data(tmp_path / "absent.csv", "x")
