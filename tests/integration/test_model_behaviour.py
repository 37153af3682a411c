"""The trained model's behaviour on real holdout leads, not only its code.

Invariance: how the leads are written (the text form of ``onboarding``, the column order, CSV
or Parquet, the chunk size) changes no probability. Direction: far more purchases or visits
never lower a lead's probability. Reasons: every candidate's contributions add up to the
log-odds of its probability.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lead_conversion_prediction.config import Paths
from lead_conversion_prediction.csv_io import read_raw_leads
from lead_conversion_prediction.schema import MODEL_INPUT_COLUMNS
from lead_conversion_prediction.scoring import CHUNK_ROWS
from lead_conversion_prediction.scoring.model import LoadedModel
from lead_conversion_prediction.scoring.score import ScoringOptions, score_leads
from lead_conversion_prediction.stages.predict import score_file
from lead_conversion_prediction.utils.storage import load_artifact
from tests.trained import PipelineRun


@pytest.fixture(scope="module")
def holdout(pipeline_run: PipelineRun) -> tuple[object, pd.DataFrame]:
    paths = Paths(pipeline_run.root)
    return load_artifact(paths.lead_model), read_raw_leads(paths.test_split)


def probability(model: object, leads: pd.DataFrame) -> np.ndarray:
    return score_leads(model, leads, threshold=0.5)["conversion_probability"].to_numpy()


def scored(model: object, leads: Path, chunk_rows: int = CHUNK_ROWS) -> pd.Series:
    """Score a file as ``lcp predict`` does; its probabilities by lead id."""
    output = leads.with_name(f"{leads.stem}.scores.csv")
    options = ScoringOptions(threshold=0.5, chunk_rows=chunk_rows)
    score_file(LoadedModel(model, "lead_model"), str(leads), str(output), options)
    return pd.read_csv(output).set_index("lead_id")["conversion_probability"].sort_index()


# What the model reads but must not depend on: each form writes the leads its own way (and may
# score them in other chunks); the probabilities must be those of the leads as first written.
INVARIANT_FORMS = (
    "onboarding-written-lowercase",
    "onboarding-written-1-or-0",
    "columns-in-reverse-order",
    "parquet",
    "chunks-of-97-rows",
)


def write_form(form: str, leads: pd.DataFrame, folder: Path) -> tuple[Path, int]:
    """Write ``leads`` in ``folder`` in the given form; the file and the chunk size to score it."""
    folder.mkdir()
    csv, chunk_rows = folder / "leads.csv", CHUNK_ROWS
    if form == "onboarding-written-lowercase":
        leads = leads.assign(onboarding=leads["onboarding"].map({True: "true", False: "false"}))
    elif form == "onboarding-written-1-or-0":
        leads = leads.assign(onboarding=leads["onboarding"].map({True: "1", False: "0"}))
    elif form == "columns-in-reverse-order":
        leads = leads[leads.columns[::-1]]
    elif form == "parquet":
        leads.to_parquet(folder / "leads.parquet", index=False)
        return folder / "leads.parquet", chunk_rows
    elif form == "chunks-of-97-rows":
        chunk_rows = 97
    leads.to_csv(csv, index=False)
    return csv, chunk_rows


@pytest.mark.parametrize("form", INVARIANT_FORMS)
def test_how_the_leads_are_written_changes_no_probability(
    pipeline_run: PipelineRun, holdout: tuple[object, pd.DataFrame], tmp_path: Path, form: str
) -> None:
    model = holdout[0]
    leads = read_raw_leads(Paths(pipeline_run.root).leads)
    assert len(leads) > 1000 and leads["onboarding"].isin([True, False]).all()
    plain = scored(model, write_form("plain", leads, tmp_path / "plain")[0])
    written, chunk_rows = write_form(form, leads, tmp_path / form)
    pd.testing.assert_series_equal(scored(model, written, chunk_rows), plain)


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
    if "n_visits" in columns:
        assert np.any(after > before), "the change reaches the model"
    # Purchases alone may not move it: on the real leads they carry almost no signal (the
    # model card's single-input ROC-AUC), and the chosen trees may never split on them. That
    # every candidate that can take the constraint has it: tests/unit/test_candidates.py.


def test_every_candidates_reasons_add_up_to_the_log_odds_of_its_probability(
    pipeline_run: PipelineRun,
) -> None:
    from lead_conversion_prediction.modeling.artifacts import TrainingSummary
    from lead_conversion_prediction.modeling.evaluate import positive_probability
    from lead_conversion_prediction.modeling.explain import explain, margin
    from lead_conversion_prediction.stages._io import load_candidate_models, read_holdout

    paths = Paths(pipeline_run.root)
    X, _ = read_holdout(paths)
    models = load_candidate_models(paths, TrainingSummary.read(paths.candidates_summary))
    assert len(models) == 3
    for name, model in models.items():
        contributions = explain(model, X)
        p = positive_probability(model, X)  # the model's own, calibrated or not
        np.testing.assert_allclose(contributions.probability, p, atol=1e-6, err_msg=name)
        expected = margin(model[-1], model[:-1].transform(X))
        np.testing.assert_allclose(contributions.margin, expected, atol=1e-4, err_msg=name)
        assert np.abs(contributions.values).max() > 0.1, name  # the reasons say something


def test_the_reasons_of_lcp_predict_are_the_largest_contributions(
    pipeline_run: PipelineRun, tmp_path: Path
) -> None:
    from lead_conversion_prediction.modeling.explain import explain

    paths = Paths(pipeline_run.root)
    scores = tmp_path / "scores.parquet"  # every bit of the contributions (a CSV holds 6 digits)
    result = pipeline_run.lcp(
        "predict", "-i", str(paths.test_split), "-o", str(scores), "--explain", "3", "--top", "10%"
    )
    assert result.returncode == 0, result.stderr
    top = pd.read_parquet(scores)
    assert len(top) == 45 and top["rank"].tolist() == list(range(1, 46))  # ceil(10% of 441)
    leads = read_raw_leads(paths.test_split).set_index("lead_id").loc[top["lead_id"]]
    model = load_artifact(paths.lead_model)
    contributions = explain(model, leads.loc[:, list(MODEL_INPUT_COLUMNS)])
    strongest = np.argmax(np.abs(contributions.values), axis=1)
    names = [contributions.inputs[i] for i in strongest]
    assert top["reason_1"].str.split("=").str[0].tolist() == names
    own = [leads[name].iloc[row] for row, name in enumerate(names)]
    assert top["reason_1"].str.split("=").str[1].tolist() == [
        "missing"
        if pd.isna(value)
        else str(bool(value)).lower()
        if name == "onboarding"
        else f"{float(value):g}"
        for name, value in zip(names, own, strict=True)
    ]
    np.testing.assert_allclose(
        top["reason_1_contribution"],
        contributions.values[np.arange(len(top)), strongest],
        rtol=1e-9,
    )
