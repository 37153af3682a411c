from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from lead_conversion_prediction.config import PROJ_ROOT, DataParams, load_params
from lead_conversion_prediction.csv_io import read_csv_text, read_raw_leads
from lead_conversion_prediction.dataset import clean_leads, kept_rows
from lead_conversion_prediction.schema import (
    CONTINUOUS_FEATURES,
    SCORING_COLUMNS,
    check_leads,
    validate_leads,
)
from lead_conversion_prediction.synthetic import (
    describe_marginals,
    generate_leads,
    resample_training_leads,
)


@pytest.fixture(scope="module")
def profile(real_raw_data: Path) -> dict[str, dict[str, Any]]:
    return describe_marginals(pd.read_csv(real_raw_data))


def test_generated_leads_pass_the_contract(profile: dict[str, dict[str, Any]]) -> None:
    leads = generate_leads(5000, profile, seed=3)
    assert list(leads.columns) == list(profile)
    _, breaches = check_leads(leads.astype("object"), "generated", SCORING_COLUMNS)
    assert breaches == []
    assert leads["lead_id"].is_unique


def test_generated_leads_keep_the_marginal_distributions(
    profile: dict[str, dict[str, Any]], real_raw_data: Path
) -> None:
    real = read_raw_leads(real_raw_data)
    fake = generate_leads(50_000, profile, seed=4)
    for column in ("source", "customer_group", "onboarding"):
        expected = real[column].astype("str").value_counts(normalize=True)
        got = fake[column].astype("str").value_counts(normalize=True)
        pd.testing.assert_series_equal(
            got.reindex(expected.index), expected, check_names=False, atol=0.01
        )
    for column in ("purchases", "time_spent", "n_visits"):
        quantiles = [0.1, 0.5, 0.9]
        np.testing.assert_allclose(
            fake[column].quantile(quantiles), real[column].quantile(quantiles), rtol=0.05
        )
    for column in ("lead_indicator", "customer_code"):
        assert fake[column].isna().mean() == pytest.approx(real[column].isna().mean(), abs=0.005)


def test_the_same_seed_gives_the_same_leads(make_leads: Callable[..., pd.DataFrame]) -> None:
    profile = describe_marginals(make_leads(n=100))
    pd.testing.assert_frame_equal(generate_leads(50, profile, 1), generate_leads(50, profile, 1))
    assert not generate_leads(50, profile, 1).equals(generate_leads(50, profile, 2))


@pytest.fixture(scope="module")
def data_params() -> DataParams:
    return load_params(PROJ_ROOT / "params.yaml").data


@pytest.mark.parametrize("n", [1, 7, 20_000])
def test_every_resampled_lead_passes_the_cleaning(
    real_raw_data: Path, data_params: DataParams, n: int
) -> None:
    leads = resample_training_leads(read_csv_text(real_raw_data), n, data_params, seed=n)
    assert len(leads) == n
    cleaned = clean_leads(validate_leads(leads, "resampled"), data_params)
    assert len(cleaned) == n  # the stated count is what the model sees
    assert leads["lead_id"].tolist() == list(range(1, n + 1))


def test_resampled_leads_keep_the_joint_distribution_of_the_kept_rows(
    real_raw_data: Path, data_params: DataParams
) -> None:
    raw = read_csv_text(real_raw_data)
    typed = validate_leads(raw, "raw")
    real = typed.loc[kept_rows(typed, data_params)]
    fake = validate_leads(resample_training_leads(raw, 50_000, data_params, seed=2), "fake")
    # The target still depends on the other columns as it does in the real kept rows.
    for column in ("customer_group", "onboarding"):
        expected = real.groupby(column)["lead_indicator"].mean()
        got = fake.groupby(column)["lead_indicator"].mean().reindex(expected.index)
        np.testing.assert_allclose(got, expected, atol=0.03)
    for column in CONTINUOUS_FEATURES:
        expected = real.groupby("lead_indicator")[column].median()
        got = fake.groupby("lead_indicator")[column].median()
        np.testing.assert_allclose(got, expected, rtol=0.1)
    assert fake["time_spent"].nunique() > real["time_spent"].nunique()  # jittered copies differ


def test_resampling_is_seeded_and_stays_within_the_contract(
    make_leads: Callable[..., pd.DataFrame],
) -> None:
    raw = make_leads(n=200, seed=4)
    params = DataParams(min_date=date(2024, 1, 1), max_date=date(2024, 1, 20), source="signup")
    first = resample_training_leads(raw, 500, params, seed=1, jitter=0.5)
    pd.testing.assert_frame_equal(
        first, resample_training_leads(raw, 500, params, seed=1, jitter=0.5)
    )
    assert not first.equals(resample_training_leads(raw, 500, params, seed=2, jitter=0.5))
    typed = validate_leads(first, "resampled")  # raises on any breach of the contract
    assert kept_rows(typed, params).all()
    assert (typed["date_part"] <= pd.Timestamp("2024-01-20")).all()
    assert (typed[list(CONTINUOUS_FEATURES)] >= 0).all().all()
    for column in ("purchases", "n_visits"):  # whole counts stay whole
        assert (typed[column] == typed[column].round()).all()


def test_resampling_refuses_raw_rows_the_cleaning_drops_entirely(
    make_leads: Callable[..., pd.DataFrame],
) -> None:
    params = DataParams(min_date=date(2023, 1, 1), max_date=date(2023, 1, 31), source="signup")
    with pytest.raises(ValueError, match="no raw row is kept"):
        resample_training_leads(make_leads(n=50), 10, params)
