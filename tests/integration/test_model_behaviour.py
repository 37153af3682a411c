"""The trained model's behaviour on real holdout leads, not only its code.

Invariance: the lead's identifiers carry no signal. Direction: far more purchases or visits
never lower a lead's probability. Reasons: every candidate's contributions add up to its
margin.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lead_conversion_prediction.config import Paths
from lead_conversion_prediction.csv_io import read_raw_leads
from lead_conversion_prediction.schema import MODEL_INPUT_COLUMNS
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


def test_every_candidates_reasons_add_up_to_its_margin(pipeline_run: PipelineRun) -> None:
    from lead_conversion_prediction.modeling.artifacts import TrainingSummary
    from lead_conversion_prediction.modeling.explain import explain, margin
    from lead_conversion_prediction.stages._io import load_candidate_models, read_holdout

    paths = Paths(pipeline_run.root)
    X, _ = read_holdout(paths)
    models = load_candidate_models(paths, TrainingSummary.read(paths.candidates_summary))
    assert len(models) == 3
    for name, model in models.items():
        contributions = explain(model, X)
        expected = margin(model[-1], model[:-1].transform(X))
        np.testing.assert_allclose(contributions.margin, expected, atol=1e-4, err_msg=name)
        assert np.abs(contributions.values).max() > 0.1, name  # the reasons say something


def test_the_reasons_of_lcp_predict_are_the_largest_contributions(
    pipeline_run: PipelineRun, tmp_path: Path
) -> None:
    from lead_conversion_prediction.modeling.explain import explain

    paths = Paths(pipeline_run.root)
    scores = tmp_path / "scores.csv"
    result = pipeline_run.lcp(
        "predict", "-i", str(paths.test_split), "-o", str(scores), "--explain", "3", "--top", "10%"
    )
    assert result.returncode == 0, result.stderr
    top = pd.read_csv(scores)
    assert len(top) == 45 and top["rank"].tolist() == list(range(1, 46))  # ceil(10% of 441)
    leads = read_raw_leads(paths.test_split).set_index("lead_id").loc[top["lead_id"]]
    model = load_artifact(paths.lead_model)
    contributions = explain(model, leads.loc[:, list(MODEL_INPUT_COLUMNS)])
    strongest = np.argmax(np.abs(contributions.values), axis=1)
    assert top["reason_1"].tolist() == [contributions.inputs[i] for i in strongest]
    np.testing.assert_allclose(
        top["reason_1_contribution"],
        contributions.values[np.arange(len(top)), strongest],
        rtol=1e-9,
    )
