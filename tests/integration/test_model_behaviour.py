"""The trained model's behaviour on real holdout leads, not only its code.

Invariance: the lead's identifiers carry no signal. Direction: far more purchases or visits
never lower a lead's probability.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lead_conversion_prediction.config import Paths
from lead_conversion_prediction.schema import read_raw_leads
from lead_conversion_prediction.scoring.score import score_leads
from lead_conversion_prediction.utils.storage import load_artifact
from tests.integration.conftest import PipelineRun

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def holdout(pipeline_run: PipelineRun) -> tuple[object, pd.DataFrame]:
    paths = Paths(pipeline_run.root)
    return load_artifact(paths.lead_model), read_raw_leads(paths.test_split)


def probability(model: object, leads: pd.DataFrame) -> np.ndarray:
    return score_leads(model, leads, threshold=0.5)["conversion_probability"].to_numpy()


def test_the_lead_id_and_customer_code_change_nothing(
    holdout: tuple[object, pd.DataFrame],
) -> None:
    model, leads = holdout
    renamed = leads.assign(
        lead_id=leads["lead_id"] + 10_000_000,
        customer_code=[f"other-{i}" for i in range(len(leads))],
    )
    np.testing.assert_array_equal(probability(model, renamed), probability(model, leads))


@pytest.mark.parametrize(
    "columns", [["purchases"], ["n_visits"], ["purchases", "n_visits"]], ids="+".join
)
def test_far_more_purchases_and_visits_never_lower_the_probability(
    holdout: tuple[object, pd.DataFrame], columns: list[str]
) -> None:
    model, leads = holdout
    more = leads.astype({column: "float64" for column in columns})
    for column in columns:
        more[column] = more[column].fillna(0) * 10 + 1
    before, after = probability(model, leads), probability(model, more)
    assert np.all(after >= before), f"{np.sum(after < before)} leads got a lower probability"
    assert np.any(after > before), "the change reaches the model"
