from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from lead_conversion_prediction.schema import SCORING_COLUMNS, check_leads, read_raw_leads
from lead_conversion_prediction.synthetic import describe_marginals, generate_leads


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
