import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from lead_conversion_prediction.config import FeatureParams
from lead_conversion_prediction.csv_io import read_csv_text
from lead_conversion_prediction.exceptions import ConfigError, DataContractError
from lead_conversion_prediction.features import build_preprocessor
from lead_conversion_prediction.modeling.train import assemble_model
from lead_conversion_prediction.schema import (
    MISSING_CELLS,
    MODEL_INPUT_COLUMNS,
    features_and_target,
    validate_leads,
)
from lead_conversion_prediction.scoring.model import LoadedModel, ModelRef, load_scoring_model
from lead_conversion_prediction.scoring.output import (
    OUTPUT_SCHEMA,
    neutralise_formulas,
    neutralise_text,
    neutralised_levels,
    output_schema,
)
from lead_conversion_prediction.scoring.score import (
    CallList,
    ScoringOptions,
    best_first,
    count_repeats,
    rank_descending,
    score_leads,
)
from lead_conversion_prediction.stages.predict import score_file
from tests.support import fit_small_model, ragged_csv, save_verified

INPUTS = ["purchases", "time_spent", "n_visits", "customer_group", "onboarding"]


@pytest.fixture(scope="module")
def model() -> LoadedModel:
    return LoadedModel(fit_small_model(), "test-model")


def write_csv(path: Path, frame: pd.DataFrame) -> str:
    frame.to_csv(path, index=False)
    return str(path)


class _ByPurchases:
    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = X["purchases"].to_numpy(dtype=float) / 10
        return np.column_stack([1 - p, p])


def test_scores_hold_probability_label_and_rank(make_leads: Callable[..., pd.DataFrame]) -> None:
    leads = make_leads(n=5).assign(purchases=[1, 9, 5, 7, 3])
    scores = score_leads(_ByPurchases(), leads, threshold=0.5, provenance="by-purchases")
    assert list(scores.columns) == [column.name for column in OUTPUT_SCHEMA]
    assert set(scores["model"]) == {"by-purchases"}
    assert scores["predicted_label"].tolist() == [0, 1, 0, 1, 0]  # 0.5 is not above 0.5
    assert scores["rank"].tolist() == [5, 1, 3, 2, 4]


def test_ties_are_ranked_in_input_order() -> None:
    assert rank_descending(np.array([0.2, 0.9, 0.2, 0.9])).tolist() == [3, 1, 4, 2]


def test_ties_are_ranked_by_lead_id_when_ids_are_given() -> None:
    order = best_first(np.array([0.2, 0.9, 0.2, 0.9]), np.array([8, 5, 3, 4]))
    assert order.tolist() == [3, 1, 2, 0]  # 0.9: ids 4, 5; then 0.2: ids 3, 8


@pytest.mark.parametrize(
    ("text", "scored", "kept"),
    [("3", 10, 3), ("30", 10, 10), ("10%", 10, 1), ("25%", 10, 3), ("100%", 7, 7), ("0.5%", 3, 1)],
)
def test_a_call_list_keeps_a_number_or_a_share_of_the_leads(
    text: str, scored: int, kept: int
) -> None:
    assert CallList.parse(text).rows(scored) == kept


@pytest.mark.parametrize("text", ["0", "0%", "150%", "-3", "ten", "5.5", ""])
def test_a_call_list_that_means_nothing_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match=f"--top {text}: give a number"):
        CallList.parse(text)


def test_a_call_list_holds_the_likeliest_leads_ranked_ties_by_lead_id(
    model: LoadedModel, tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    first = make_leads(n=20, seed=2)
    twins = first.assign(lead_id=first["lead_id"] + 1000)  # the same leads: tied scores
    leads = pd.concat([twins, first], ignore_index=True)  # twins first in the file
    source = write_csv(tmp_path / "leads.csv", leads)
    options = ScoringOptions(threshold=0.5, top=CallList.parse("25%"), chunk_rows=7)
    score_file(model, source, str(tmp_path / "top.csv"), options)
    top = pd.read_csv(tmp_path / "top.csv")
    everything = score_leads(model.model, validate_leads(leads, "x"), 0.5)
    expected = everything.sort_values(
        ["conversion_probability", "lead_id"], ascending=[False, True]
    ).head(10)
    assert top["lead_id"].tolist() == expected["lead_id"].tolist()
    assert top["rank"].tolist() == list(range(1, 11))
    assert top["lead_id"].iloc[0] < 1000  # of two tied leads, the smaller id comes first


def test_reasons_are_added_to_every_lead_and_match_the_in_memory_scores(
    model: LoadedModel, tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    leads = make_leads(n=45, seed=6)
    source = write_csv(tmp_path / "leads.csv", leads)
    target = tmp_path / "reasons.parquet"
    options = ScoringOptions(threshold=0.5, explain=2, sort=True, chunk_rows=10)
    score_file(model, source, str(target), options)
    scores = pd.read_parquet(target)
    assert list(scores.columns) == [column.name for column in output_schema(2)]
    # each reason is the lead's own value of the input: n_visits=12, onboarding=true
    by_id = leads.set_index("lead_id").loc[scores["lead_id"]]
    named = scores["reason_1"].str.split("=", expand=True)
    assert set(named[0]) <= set(MODEL_INPUT_COLUMNS)
    for row, (name, value) in enumerate(named.itertuples(index=False)):
        own = by_id[name].iloc[row]
        assert value == (str(own).lower() if name == "onboarding" else f"{float(own):g}")
    assert (scores["reason_1"].astype(str) != scores["reason_2"].astype(str)).all()
    assert (scores["reason_1_contribution"].abs() >= scores["reason_2_contribution"].abs()).all()
    in_memory = score_leads(model.model, validate_leads(leads, "x"), 0.5, explain=2)
    expected = in_memory.set_index("lead_id").loc[scores["lead_id"]]
    assert expected["reason_1"].astype(str).tolist() == scores["reason_1"].astype(str).tolist()
    for column in ("reason_2_contribution", "base_log_odds", "conversion_probability"):
        np.testing.assert_allclose(expected[column], scores[column], atol=1e-12)


def test_explained_scores_add_up_and_leave_weak_reasons_empty(
    model: LoadedModel, tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    leads = make_leads(n=60, seed=7)
    source = write_csv(tmp_path / "leads.csv", leads)
    # Parquet: every bit (a CSV file gives 6 significant digits)
    plain, explained = tmp_path / "plain.parquet", tmp_path / "explained.parquet"
    score_file(model, source, str(plain), ScoringOptions(threshold=0.5))
    floor = 0.1
    options = ScoringOptions(threshold=0.5, explain=5, reason_floor=floor, chunk_rows=25)
    score_file(model, source, str(explained), options)
    scores = pd.read_parquet(explained)
    p = scores["conversion_probability"]
    added = scores["base_log_odds"] + sum(scores[f"reason_{i}_contribution"] for i in range(1, 6))
    np.testing.assert_allclose(added, np.log(p) - np.log1p(-p), rtol=0, atol=1e-6)
    np.testing.assert_allclose(p, pd.read_parquet(plain)["conversion_probability"], atol=1e-9)
    for i in range(1, 6):
        weak = scores[f"reason_{i}_contribution"].abs() < floor
        assert scores.loc[weak, f"reason_{i}"].isna().all()
        assert scores.loc[~weak, f"reason_{i}"].notna().all()
    assert scores["reason_5"].isna().any() and scores["reason_1"].notna().any()


@pytest.mark.parametrize(
    "draw",
    [
        lambda rng: rng.random(5000).astype(np.float32).astype(np.float64),  # XGBoost's
        lambda rng: rng.random(5000),  # float64 that float32 cannot hold
        lambda rng: rng.choice([0.0, -0.0, 1e-45, 0.3, 0.5, 1.0], 5000),  # ties and edges
        lambda rng: rng.choice([0.1, np.nan, 0.9], 50),
    ],
    ids=["float32", "float64", "ties", "nan"],
)
def test_the_best_first_order_is_a_stable_sort_from_the_highest_down(
    draw: Callable[[np.random.Generator], np.ndarray],
) -> None:
    rng = np.random.default_rng(3)
    probability = draw(rng)
    expected = np.argsort(-probability, kind="stable")
    assert best_first(probability).tolist() == expected.tolist()
    ids = rng.integers(0, len(probability) // 3 + 1, len(probability))  # repeated ids too
    assert best_first(probability, ids).tolist() == np.lexsort((ids, -probability)).tolist()
    ids.sort()  # in file order, as most files hold them
    assert best_first(probability, ids).tolist() == np.lexsort((ids, -probability)).tolist()


def test_cells_a_spreadsheet_would_run_are_neutralised() -> None:
    cells = pd.Series(
        ["=SUM(A1)", "+A1", "-A1", "@cmd", "plain", None, " =1+1", "\r=1+1", "\tx", " \n@x"],
        dtype="object",
    )
    assert neutralise_formulas(cells).tolist()[:5] == [
        "'=SUM(A1)",
        "'+A1",
        "'-A1",
        "'@cmd",
        "plain",
    ]
    assert pd.isna(neutralise_formulas(cells).iloc[5])
    assert neutralise_formulas(cells).tolist()[6:] == ["' =1+1", "'\r=1+1", "'\tx", "' \n@x"]
    assert [neutralise_text(cell) for cell in cells.dropna()] == neutralise_formulas(
        cells
    ).dropna().tolist()
    levels = [*cells.dropna(), "n_visits=12", "", "\u00a0=1", "-3", "_x", "7"]
    assert neutralised_levels(levels).to_pylist() == [neutralise_text(text) for text in levels]


def test_numbers_are_left_as_written() -> None:
    cells = pd.Series(["-3", "+1.5", "-1e5", " -2 ", "-.5", "-3x", "--3"], dtype="object")
    assert neutralise_formulas(cells).tolist() == [
        "-3",
        "+1.5",
        "-1e5",
        " -2 ",
        "-.5",
        "'-3x",
        "'--3",
    ]


def test_a_cell_with_a_carriage_return_stays_one_cell_of_the_rejects_file(tmp_path: Path) -> None:
    from lead_conversion_prediction.scoring.io import write_rejects

    rejects = pd.DataFrame({"lead_id": ["1", "2"], "notes": ["\r=1+1", "a\nb"], "line": [2, 3]})
    write_rejects(rejects, tmp_path / "rejects.csv")
    back = pd.read_csv(tmp_path / "rejects.csv", dtype="str", keep_default_na=False)
    assert back["notes"].tolist() == ["'\r=1+1", "a\nb"]
    assert back["lead_id"].tolist() == ["1", "2"]


def test_a_file_is_scored_whatever_the_chunk_size(
    model: LoadedModel, tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    source = write_csv(tmp_path / "leads.csv", make_leads(n=150, seed=4))
    outputs = []
    for chunk_rows in (7, 1000):
        target = tmp_path / f"scores-{chunk_rows}.csv"
        report = score_file(
            model, source, str(target), ScoringOptions(threshold=0.5, chunk_rows=chunk_rows)
        )
        assert (report.rows_scored, report.rows_rejected) == (150, 0)
        outputs.append(pd.read_csv(target))
    pd.testing.assert_frame_equal(outputs[0], outputs[1])
    scores = outputs[0]
    assert list(scores.columns) == [
        "lead_id",
        "conversion_probability",
        "predicted_label",
        "rank",
        "model",
    ]
    assert sorted(scores["rank"]) == list(range(1, 151))
    assert set(scores["model"]) == {"test-model"}
    expected = score_leads(model.model, validate_leads(pd.read_csv(source), "x"), 0.5)
    # 6 significant digits: within half a unit of the sixth
    np.testing.assert_allclose(
        scores["conversion_probability"], expected["conversion_probability"], rtol=5e-6
    )


def test_a_csv_file_gives_six_significant_digits_and_parquet_every_bit(
    model: LoadedModel, tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    source = write_csv(tmp_path / "leads.csv", make_leads(n=60, seed=9))
    options = ScoringOptions(threshold=0.5, explain=2, reason_floor=0.0)
    score_file(model, source, str(tmp_path / "s.csv"), options)
    score_file(model, source, str(tmp_path / "s.parquet"), options)
    text = pd.read_csv(tmp_path / "s.csv", dtype="str", keep_default_na=False)
    full = pd.read_parquet(tmp_path / "s.parquet")
    for column in ("conversion_probability", "base_log_odds", "reason_1_contribution"):
        digits = text[column].str.replace(r"^-?0?\.?0*|e.*$|\.", "", regex=True)
        assert digits.str.len().max() <= 6, (column, text[column].head())
        assert digits.str.len().max() >= 5, (column, text[column].head())  # not fewer
        np.testing.assert_allclose(text[column].astype(float), full[column], rtol=5e-6)
        assert (full[column] != full[column].round(6)).any(), column  # Parquet: every bit


def test_sorted_output_puts_the_likeliest_leads_first(
    model: LoadedModel, tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    source = write_csv(tmp_path / "leads.csv", make_leads(n=40))
    target = tmp_path / "scores.parquet"
    score_file(model, source, str(target), ScoringOptions(threshold=0.3, sort=True))
    scores = pd.read_parquet(target)
    assert scores["rank"].tolist() == list(range(1, 41))
    assert scores["conversion_probability"].is_monotonic_decreasing
    assert (scores["predicted_label"] == (scores["conversion_probability"] > 0.3)).all()


def test_parquet_input_is_read(
    model: LoadedModel, tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    leads = make_leads(n=30)
    leads.to_parquet(tmp_path / "leads.parquet", index=False)
    report = score_file(
        model,
        str(tmp_path / "leads.parquet"),
        str(tmp_path / "s.csv"),
        ScoringOptions(threshold=0.5),
    )
    assert report.rows_scored == 30


def test_bad_rows_fail_with_their_lines_across_chunks(
    model: LoadedModel, tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    leads = make_leads(n=40).astype({"n_visits": "object"})
    leads.loc[[25, 31], "n_visits"] = "-4"
    source = write_csv(tmp_path / "leads.csv", leads)
    target = tmp_path / "scores.csv"
    with pytest.raises(DataContractError) as caught:
        score_file(model, source, str(target), ScoringOptions(threshold=0.5, chunk_rows=10))
    assert str(caught.value) == f"{source}: column 'n_visits': value -4 is below 0 at lines 27, 33"
    assert not target.exists()


def test_skipped_rows_go_to_the_rejects_file_with_their_reason(
    model: LoadedModel, tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    leads = make_leads(n=20).astype({"time_spent": "object", "date_part": "object"})
    leads.loc[3, "time_spent"] = "=HYPERLINK(1)"
    leads.loc[8, "date_part"] = "2024-02-30"
    leads.loc[12, "lead_id"] = None
    source = write_csv(tmp_path / "leads.csv", leads)
    rejects = tmp_path / "rejects.csv"
    report = score_file(
        model,
        source,
        str(tmp_path / "s.csv"),
        ScoringOptions(threshold=0.5, skip_bad_rows=True),
        rejects=rejects,
    )
    assert (report.rows_scored, report.rows_rejected) == (17, 3)
    rejected = pd.read_csv(rejects)
    assert rejected["line"].tolist() == [5, 10, 14]
    assert rejected["reason"].tolist() == [
        "column 'time_spent': value '=HYPERLINK(1)' is not a number",
        "column 'date_part': value '2024-02-30' is not a YYYY-MM-DD date",
        "column 'lead_id': is empty but required",
    ]
    assert "'=HYPERLINK(1)" in rejected["time_spent"].tolist()
    assert set(pd.read_csv(tmp_path / "s.csv")["lead_id"]) == set(leads["lead_id"].dropna()) - {
        3,
        8,
    }


def test_a_chunk_or_a_file_with_no_good_row_is_skipped_whole(
    model: LoadedModel, tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    leads = make_leads(n=12).astype({"n_visits": "object"})
    leads.loc[:4, "n_visits"] = "-1"  # the whole first chunk
    rejects = tmp_path / "rejects.csv"
    options = ScoringOptions(threshold=0.5, skip_bad_rows=True, chunk_rows=5)
    source = write_csv(tmp_path / "leads.csv", leads)
    report = score_file(model, source, str(tmp_path / "s.csv"), options, rejects=rejects)
    assert (report.rows_scored, report.rows_rejected) == (7, 5)
    assert pd.read_csv(tmp_path / "s.csv")["lead_id"].tolist() == leads["lead_id"][5:].tolist()

    leads.loc[:, "n_visits"] = "-1"
    source = write_csv(tmp_path / "all-bad.csv", leads)
    report = score_file(model, source, str(tmp_path / "none.csv"), options, rejects=rejects)
    assert (report.rows_scored, report.rows_rejected) == (0, 12)
    assert pd.read_csv(tmp_path / "none.csv").empty
    assert pd.read_csv(rejects)["line"].tolist() == list(range(2, 14))


def test_rows_with_more_or_fewer_fields_are_rejected_with_their_lines(
    model: LoadedModel, tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    leads = make_leads(n=30).astype({"n_visits": "object"})
    leads.loc[2, "source"] = "sign\nup"  # a quoted line break: one more physical line
    leads.loc[12, "n_visits"] = "-1"
    source = ragged_csv(tmp_path / "leads.csv", leads, {4: "x", 17: "", 25: "y"})
    rejects = tmp_path / "rejects.csv"
    options = ScoringOptions(threshold=0.5, skip_bad_rows=True, chunk_rows=10)
    report = score_file(model, source, str(tmp_path / "s.csv"), options, rejects=rejects)
    assert (report.rows_scored, report.rows_rejected) == (26, 4)
    assert report.rejected_for == {"row": 3, "column 'n_visits'": 1}
    header = len(leads.columns)
    rejected = pd.read_csv(rejects, keep_default_na=False)
    assert rejected["line"].tolist() == [7, 15, 20, 28]  # rows 4, 12, 17, 25, after the break
    assert rejected["reason"].tolist() == [
        f"row: {header + 1} fields where the header has {header}",
        "column 'n_visits': value -1 is below 0",
        f"row: {header - 1} fields where the header has {header}",
        f"row: {header + 1} fields where the header has {header}",
    ]
    assert rejected.loc[1, "n_visits"] == "-1"  # as written: a number is no formula
    assert rejected.loc[0, "lead_id"] == ""  # the cells of a ragged row cannot be told apart
    scored = pd.read_csv(tmp_path / "s.csv")
    assert scored["lead_id"].tolist() == leads["lead_id"].drop([4, 12, 17, 25]).tolist()


def test_the_first_bad_row_stops_the_run_ragged_or_not(
    model: LoadedModel, tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    leads = make_leads(n=30).astype({"n_visits": "object"})
    leads.loc[12, "n_visits"] = "-1"
    options = ScoringOptions(threshold=0.5, chunk_rows=10)
    target = tmp_path / "s.csv"
    header = len(leads.columns)
    source = ragged_csv(tmp_path / "first.csv", leads, {25: "x", 4: "y"})
    with pytest.raises(DataContractError) as caught:
        score_file(model, source, str(target), options)
    assert str(caught.value) == (
        f"{source}: {header + 1} fields where the header has {header} at lines 6, 27"
    )
    source = ragged_csv(tmp_path / "later.csv", leads, {25: "x"})
    with pytest.raises(DataContractError) as caught:
        score_file(model, source, str(target), options)
    assert str(caught.value) == f"{source}: column 'n_visits': value -1 is below 0 at line 14"
    source = ragged_csv(tmp_path / "only.csv", leads.drop(12), {27: ""})
    with pytest.raises(DataContractError) as caught:
        score_file(model, source, str(target), options)
    assert str(caught.value) == (
        f"{source}: {header - 1} fields where the header has {header} at line 29"
    )
    assert not target.exists()


def test_each_rejected_row_names_its_own_cell(
    model: LoadedModel, tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    leads = make_leads(n=10).astype({"time_spent": "object", "n_visits": "object"})
    leads.loc[[2, 6], "time_spent"] = ["fast", "slow"]
    leads.loc[[3, 7], "n_visits"] = ["-1", "-5"]
    rejects = tmp_path / "rejects.csv"
    score_file(
        model,
        write_csv(tmp_path / "leads.csv", leads),
        str(tmp_path / "s.csv"),
        ScoringOptions(threshold=0.5, skip_bad_rows=True),
        rejects=rejects,
    )
    assert pd.read_csv(rejects)["reason"].tolist() == [
        "column 'time_spent': value 'fast' is not a number",
        "column 'n_visits': value -1 is below 0",
        "column 'time_spent': value 'slow' is not a number",
        "column 'n_visits': value -5 is below 0",
    ]


def test_unseen_levels_are_scored_as_missing_and_counted(
    model: LoadedModel, tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    # A model that never saw customer group 9: for it, 9 is an unseen level.
    without_nine = make_leads(n=200, seed=2).replace({"customer_group": {9: 8}})
    X, y = features_and_target(validate_leads(without_nine, "train.csv"))
    preprocessor = build_preprocessor(FeatureParams()).fit(X)
    classifier = LogisticRegression().fit(preprocessor.transform(X), y)
    model = LoadedModel(assemble_model(preprocessor, classifier), "without-group-9")
    leads = make_leads(n=6).astype({"customer_group": "object"})
    leads.loc[0, "customer_group"] = 9
    leads.loc[1, "customer_group"] = None
    leads.loc[[0, 1], ["purchases", "time_spent", "n_visits", "onboarding"]] = leads.loc[
        0, ["purchases", "time_spent", "n_visits", "onboarding"]
    ].to_numpy()
    leads.loc[2, "source"] = "tiktok"
    report = score_file(
        model,
        write_csv(tmp_path / "l.csv", leads),
        str(tmp_path / "s.csv"),
        ScoringOptions(threshold=0.5),
    )
    assert report.unseen == {"customer_group": 1, "source": 1}
    assert report.missing == {"customer_group": 1}
    scores = pd.read_csv(tmp_path / "s.csv")
    probability = scores["conversion_probability"].to_numpy()
    assert probability[0] == probability[1]  # the unseen group is scored like a missing one
    assert report.other_sources["tiktok"] == 1
    assert any("unseen" in line for line in report.warnings())


def with_missing_cells(leads: pd.DataFrame, written: Callable[[int], str]) -> pd.DataFrame:
    """``leads`` with one cell per row left without a value, in turn in each model input,
    written as ``written(row)`` gives."""
    leads = leads.astype({column: "object" for column in INPUTS})
    for row in range(len(leads)):
        leads.loc[row, INPUTS[row % len(INPUTS)]] = written(row)
    return leads


def test_every_cell_the_contract_reads_as_missing_is_scored_as_an_empty_one(
    model: LoadedModel, tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    leads = make_leads(n=len(MISSING_CELLS) * 2, seed=6)
    tokens = with_missing_cells(leads, lambda row: MISSING_CELLS[row % len(MISSING_CELLS)])
    empty = with_missing_cells(leads, lambda row: "")
    reports = [
        score_file(
            model,
            write_csv(tmp_path / f"{name}.csv", frame),
            str(tmp_path / f"{name}-scores.csv"),
            ScoringOptions(threshold=0.5),
        )
        for name, frame in (("tokens", tokens), ("empty", empty))
    ]
    assert reports[0].missing == reports[1].missing
    assert sum(reports[0].missing.values()) > len(MISSING_CELLS)
    assert (tmp_path / "tokens-scores.csv").read_text() == (
        tmp_path / "empty-scores.csv"
    ).read_text()
    # and as the training data is read
    assert (
        read_csv_text(tmp_path / "tokens.csv")
        .isna()
        .equals(read_csv_text(tmp_path / "empty.csv").isna())
    )


def test_other_sources_are_scored_with_a_warning_or_rejected_on_request(
    model: LoadedModel, tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    leads = make_leads(n=12)  # sources cycle signup, signup, organic, li, fb, signup
    source = write_csv(tmp_path / "l.csv", leads)
    scored = score_file(model, source, str(tmp_path / "a.csv"), ScoringOptions(threshold=0.5))
    assert scored.rows_scored == 12 and sum(scored.other_sources.values()) == 6
    strict = score_file(
        model,
        source,
        str(tmp_path / "b.csv"),
        ScoringOptions(threshold=0.5, training_source_only=True, skip_bad_rows=True),
        rejects=tmp_path / "rejects.csv",
    )
    assert (strict.rows_scored, strict.rows_rejected) == (6, 6)
    assert set(pd.read_csv(tmp_path / "rejects.csv")["source"]) == {"organic", "li", "fb"}


def test_duplicate_lead_ids_are_counted(
    model: LoadedModel, tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    leads = make_leads(n=10).assign(lead_id=[1, 2, 3, 3, 4, 5, 5, 5, 6, 7])
    report = score_file(
        model,
        write_csv(tmp_path / "l.csv", leads),
        str(tmp_path / "s.csv"),
        ScoringOptions(threshold=0.5),
    )
    assert report.duplicate_ids == 3


def test_a_model_artifact_is_checked_before_it_is_loaded(
    model: LoadedModel, tmp_path: Path
) -> None:
    path = tmp_path / "lead_model.joblib"
    save_verified(model.model, path)
    loaded = load_scoring_model(None, path)
    assert loaded.provenance.startswith("lead_model.joblib@sha256:")
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(Exception, match="checksum"):
        load_scoring_model(str(path), tmp_path / "other")


@pytest.mark.parametrize(
    ("spec", "registry"),
    [
        ("models:/lead_model@champion", True),
        ("models:/lead_model/3", True),
        ("runs:/0123abcd/model", True),
        ("models/lead_model.joblib", False),
        ("/tmp/model.pkl", False),
    ],
)
def test_a_model_option_names_a_registry_uri_or_a_file(spec: str, registry: bool) -> None:
    ref = ModelRef.parse(spec)
    assert ref.is_registry is registry and str(ref) == spec
    assert (ref.uri, ref.path) == ((spec, None) if registry else (None, Path(spec)))


def test_no_model_option_names_the_default(tmp_path: Path) -> None:
    assert ModelRef.parse(None, "models:/lead_model@champion").uri == "models:/lead_model@champion"
    ref = ModelRef.parse(None, tmp_path / "lead_model.joblib")
    assert ref.is_file(tmp_path / "lead_model.joblib")
    assert not ref.is_file(tmp_path / "model.pkl")


def test_an_xgboost_model_with_monotone_constraints_scores_on_every_core(
    tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    from xgboost import XGBRFClassifier

    small = fit_small_model()
    leads = validate_leads(make_leads(n=80), "x")
    classifier = XGBRFClassifier(
        n_estimators=5, n_jobs=1, monotone_constraints={"purchases": 1, "n_visits": 1}
    )
    features = small[0].transform(leads.loc[:, INPUTS])
    classifier.fit(features, leads["lead_indicator"].astype(int))
    path = tmp_path / "lead_model.joblib"
    assembled = assemble_model(small[0], classifier)
    save_verified(assembled, path)
    loaded = load_scoring_model(str(path), path)
    config = json.loads(loaded.model[-1].get_booster().save_config())
    assert config["learner"]["generic_param"]["nthread"] == str(os.cpu_count())
    scores = score_leads(loaded.model, leads, threshold=0.5)
    assert scores["conversion_probability"].between(0, 1).all() and len(scores) == 80
    # Scoring hands XGBoost an array instead of a frame: the very same probabilities.
    assert isinstance(loaded.model[0].transform(leads.loc[:, INPUTS]), np.ndarray)
    expected = score_leads(assembled, leads, threshold=0.5)["conversion_probability"]
    assert scores["conversion_probability"].tolist() == expected.tolist()


def test_repeats_are_counted_like_pandas_duplicated() -> None:
    values = np.random.default_rng(0).integers(0, 50, 200)
    assert count_repeats(values) == int(pd.Series(values).duplicated().sum())
    assert count_repeats(np.arange(10)) == 0


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_arrow_reads_a_file_without_calling_back_into_python(
    tmp_path: Path, gzipped: bool
) -> None:
    # Arrow's read-ahead thread must not run Python code: a thread still inside Python when the
    # interpreter exits after a bad first block aborts the process ("terminate called ...").
    import gzip

    import pyarrow as pa

    from lead_conversion_prediction.scoring.io import _arrow_stream

    text = b"lead_id,purchases\n1,2\n"
    source = tmp_path / "leads.csv"
    source.write_bytes(gzip.compress(text) if gzipped else text)
    stream = _arrow_stream(str(source))
    try:
        assert isinstance(stream, pa.NativeFile)
        assert stream.read() == text
    finally:
        stream.close()


def test_a_cut_gzip_file_read_by_arrow_is_named_as_such(tmp_path: Path) -> None:
    import gzip

    from lead_conversion_prediction.scoring.io import InputFormat, read_chunks

    source = tmp_path / "leads.csv.gz"
    rows = "".join(f"{i},{i % 7}\n" for i in range(200_000))
    source.write_bytes(gzip.compress(f"lead_id,purchases\n{rows}".encode())[:-4000])
    with pytest.raises(DataContractError, match=r"not a whole gzip file \("):
        for _ in read_chunks(str(source), InputFormat.csv, 50_000, ["lead_id", "purchases"]):
            pass


def test_rejects_into_the_output_or_the_input_are_refused(tmp_path: Path) -> None:
    from lead_conversion_prediction.scoring.locations import check_locations

    leads, scores = tmp_path / "leads.csv", tmp_path / "scores.csv"
    leads.write_text("lead_id\n1\n")
    with pytest.raises(ConfigError, match=r"--rejects .*: is the output file; name another"):
        check_locations(str(leads), str(scores), scores)
    with pytest.raises(ConfigError, match=r"--rejects .*: is the output file"):
        check_locations(str(leads), str(scores), tmp_path / "." / "scores.csv")
    scores.write_text("old\n")
    (tmp_path / "link.csv").symlink_to(scores)
    with pytest.raises(ConfigError, match=r"--rejects .*: is the output file"):
        check_locations(str(leads), str(scores), tmp_path / "link.csv")
    with pytest.raises(ConfigError, match=r"--rejects .*: is the input file"):
        check_locations(str(leads), str(scores), leads)
    check_locations(str(leads), str(scores), tmp_path / "rejects.csv")  # another file: fine
