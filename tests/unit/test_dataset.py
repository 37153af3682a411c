from collections.abc import Callable
from datetime import date

import pandas as pd
import pytest

from lead_conversion_prediction.config import DataParams
from lead_conversion_prediction.dataset import (
    UNUSED_COLUMNS,
    clean_leads,
    filter_date_window,
    summarise_data,
    target_balance,
)
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


def test_the_summary_holds_the_dates_present_in_the_window_and_the_counts(
    leads: pd.DataFrame,
) -> None:
    summary = summarise_data(leads, leads.iloc[:7], WINDOW, "md5", "https://example.com/x.csv")
    assert (summary.min_date, summary.max_date) == ("2024-01-05", "2024-01-10")
    assert (summary.rows_raw, summary.rows_clean) == (62, 7)
    assert (summary.raw_md5, summary.raw_url) == ("md5", "https://example.com/x.csv")
    outside = DataParams(min_date=date(2025, 1, 1), max_date=date(2025, 1, 2))
    empty = summarise_data(leads, leads.iloc[:0], outside, "md5", "u")
    assert (empty.min_date, empty.max_date) == (None, None)


def test_target_balance_gives_class_shares(leads: pd.DataFrame) -> None:
    assert target_balance(leads) == {"0": 0.5, "1": 0.5}
