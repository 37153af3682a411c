import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

import lead_conversion_prediction.monitoring.backtest as backtest_module
from lead_conversion_prediction.config import BacktestParams
from lead_conversion_prediction.exceptions import ConfigError, DataContractError
from lead_conversion_prediction.modeling.artifacts import (
    BootstrapSettings,
    CrossValidation,
    Interval,
    MetricsReport,
    RowCounts,
    SelectionRule,
)
from lead_conversion_prediction.modeling.report import gains_at
from lead_conversion_prediction.monitoring.backtest import (
    METRICS,
    BacktestReport,
    MetricBand,
    backtest,
    check_outcomes,
    check_scores,
    draw_counts,
    holdout_bands,
    holdout_bands_from_report,
    join_outcomes,
    weighted_metrics,
)

PARAMS = BacktestParams(resamples=300)
MODEL = "models:/lead_model/3"


def scores_of(ids: list[int] | np.ndarray, probability: list[float] | np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "lead_id": ids,
            "conversion_probability": probability,
            "predicted_label": (np.asarray(probability) > 0.5).astype(int),
            "rank": np.arange(1, len(ids) + 1),
            "model": MODEL,
        }
    )


def calibrated_leads(rows: int = 3000, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scores that are the truth: each lead converts with its probability."""
    rng = np.random.default_rng(seed)
    probability = np.round(rng.beta(2, 3, rows), 6)
    converted = (rng.random(rows) < probability).astype(int)
    ids = np.arange(1000, 1000 + rows)
    return scores_of(ids, probability), pd.DataFrame({"lead_id": ids, "converted": converted})


def own_bands(report: BacktestReport) -> dict[str, MetricBand]:
    return dict(report.cohorts[0].metrics)


def test_join_counts_missing_and_repeated_ids_on_both_sides_and_leaves_repeats_out() -> None:
    scores = scores_of([1, 2, 2, 3, 4, 5, 8, 8], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    outcomes = pd.DataFrame(
        {"lead_id": [2, 3, 3, 4, 5, 6, 7, 7], "converted": [1, 0, 1, 0, 1, 0, 1, 0]}
    )
    joined, counts = join_outcomes(check_scores(scores, "s"), check_outcomes(outcomes, "o"))
    assert sorted(joined["lead_id"]) == [4, 5]
    assert counts.model_dump() == {
        "scores": 8,
        "outcomes": 8,
        "matched": 2,
        "scores_without_outcome": 3,  # 1 and both rows of 8
        "outcomes_without_score": 3,  # 6 and both rows of 7
        "duplicate_score_ids": 2,  # 2 and 8
        "duplicate_outcome_ids": 2,  # 3 and 7
    }
    report = backtest(scores, outcomes, None, None, PARAMS, MODEL)
    assert report.join == counts
    assert [(cohort.cohort, cohort.rows) for cohort in report.cohorts] == [("all", 2)]


@pytest.mark.parametrize(
    "values",
    [["0", "1"], ["true", "FALSE"], [" True ", "0.0"], ["1.0", "false"], [1, 0], [1.0, 0.0]],
)
def test_converted_reads_every_spelling_of_zero_and_one(values: list[object]) -> None:
    outcomes = pd.DataFrame({"lead_id": ["11", "12"], "converted": values})
    checked = check_outcomes(outcomes, "outcomes.csv")
    assert checked["converted"].tolist() == [
        1 if str(value).strip().lower() in ("1", "1.0", "true") else 0 for value in values
    ]
    assert checked["lead_id"].tolist() == [11, 12]


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        (
            "converted",
            ["1", "0", "yes", "2"],
            "outcomes.csv: column 'converted': not 0, 1, true or false ('yes') at line 4 "
            "(2 bad rows in all)",
        ),
        (
            "converted",
            ["1", None, "0", "1"],
            "outcomes.csv: column 'converted': not 0, 1, true or false (an empty cell) at line 3",
        ),
        (
            "lead_id",
            ["1", "2", "3.5", "x"],
            "outcomes.csv: column 'lead_id': not a whole number ('3.5') at line 4 "
            "(2 bad rows in all)",
        ),
        (
            "date",
            ["2024-01-02", "2024-13-01", "2024-01-03", "2024-01-04"],
            "outcomes.csv: column 'date': not a date (YYYY-MM-DD) ('2024-13-01') at line 3",
        ),
    ],
)
def test_a_bad_outcome_is_one_line_naming_the_column_and_the_first_bad_line(
    column: str, values: list[str | None], message: str
) -> None:
    outcomes = pd.DataFrame(
        {"lead_id": ["1", "2", "3", "4"], "converted": ["1", "0", "1", "0"], "date": "2024-01-01"}
    )
    outcomes[column] = values
    with pytest.raises(DataContractError) as caught:
        check_outcomes(outcomes, "outcomes.csv")
    assert str(caught.value) == message
    assert caught.value.column == column


@pytest.mark.parametrize("missing", ["lead_id", "converted"])
def test_outcomes_without_a_required_column_name_the_file_and_the_column(missing: str) -> None:
    outcomes = pd.DataFrame({"lead_id": [1], "converted": [1]}).drop(columns=missing)
    with pytest.raises(DataContractError, match=f"^outcomes.csv: column '{missing}': is missing"):
        check_outcomes(outcomes, "outcomes.csv")


def test_a_probability_outside_zero_one_names_its_line() -> None:
    with pytest.raises(DataContractError, match=r"not a probability from 0 to 1 .* at line 3$"):
        check_scores(scores_of([1, 2], [0.5, 1.5]), "scores.csv")


def test_month_cohorts_come_in_month_order_from_the_outcomes_or_else_the_scores() -> None:
    scores, outcomes = calibrated_leads(600)
    months = np.array(["2024-02-10", "2023-12-31", "2024-01-01"])[np.arange(600) % 3]
    report = backtest(scores, outcomes.assign(date=months), "month", None, PARAMS, MODEL)
    assert [(c.cohort, c.rows) for c in report.cohorts] == [
        ("2023-12", 200),
        ("2024-01", 200),
        ("2024-02", 200),
    ]
    assert report.by == "month"
    from_scores = backtest(scores.assign(date=months), outcomes, "month", None, PARAMS, MODEL)
    assert from_scores.cohorts == report.cohorts
    with pytest.raises(ConfigError, match="--by month needs a date column"):
        backtest(scores, outcomes, "month", None, PARAMS, MODEL)


def test_column_cohorts_sort_numbers_as_numbers_and_a_missing_column_is_refused() -> None:
    scores, outcomes = calibrated_leads(300)
    region = np.array([10.0, 2.0, np.nan])[np.arange(300) % 3]
    report = backtest(scores, outcomes.assign(region=region), "region", None, PARAMS, MODEL)
    assert [c.cohort for c in report.cohorts] == ["2", "10", "missing"]
    with pytest.raises(ConfigError, match="neither the outcomes nor the scores"):
        backtest(scores, outcomes, "region", None, PARAMS, MODEL)


def test_a_cohorts_figures_do_not_depend_on_the_other_cohorts() -> None:
    scores, outcomes = calibrated_leads(900)
    halves = outcomes.assign(half=np.where(np.arange(900) < 450, "a", "b"))
    both = backtest(scores, halves, "half", None, PARAMS, MODEL)
    alone = backtest(scores, halves[halves["half"] == "a"], "half", None, PARAMS, MODEL)
    assert both.cohorts[0] == alone.cohorts[0]


def test_true_probabilities_do_not_alert_and_flipped_outcomes_do() -> None:
    scores, outcomes = calibrated_leads()
    band = own_bands(backtest(scores, outcomes, None, None, PARAMS, MODEL))
    holdout = {name: band[name] for name in ("roc_auc", "log_loss", "brier")}
    fine = backtest(scores, outcomes, None, holdout, PARAMS, MODEL)
    assert fine.status == "ok" and fine.alerts == [] and fine.cohorts[0].status == "ok"
    flipped = outcomes.copy()
    rows = np.random.default_rng(3).choice(len(flipped), int(0.3 * len(flipped)), replace=False)
    flipped.loc[rows, "converted"] = 1 - flipped.loc[rows, "converted"]
    worse = backtest(scores, flipped, None, holdout, PARAMS, MODEL)
    assert worse.status == "alert" and worse.cohorts[0].status == "alert"
    assert worse.alerts and all(line.startswith("all: ") for line in worse.alerts)
    assert any(name in line for line in worse.alerts for name in ("roc_auc", "log_loss"))
    assert worse.holdout == holdout and worse.model == MODEL


def test_without_holdout_bands_nothing_alerts() -> None:
    scores, outcomes = calibrated_leads(500)
    random = outcomes.assign(converted=np.random.default_rng(1).integers(0, 2, 500))
    report = backtest(scores, random, None, None, PARAMS, MODEL)
    assert report.holdout is None and report.status == "ok" and report.alerts == []


def test_every_interval_holds_its_value_and_every_bin_its_leads() -> None:
    scores, outcomes = calibrated_leads()
    cohort = backtest(scores, outcomes, None, None, PARAMS, MODEL).cohorts[0]
    assert set(cohort.metrics) == set(METRICS)
    for band in cohort.metrics.values():
        assert band.low <= band.value <= band.high
    assert cohort.rows == sum(item.rows for item in cohort.reliability) == 3000
    assert len(cohort.reliability) == PARAMS.reliability_bins
    assert cohort.converters == outcomes["converted"].sum()


def test_the_same_inputs_in_any_row_order_give_the_same_report() -> None:
    scores, outcomes = calibrated_leads(1000)
    first = backtest(scores, outcomes, None, None, PARAMS, MODEL)
    assert backtest(scores, outcomes, None, None, PARAMS, MODEL) == first
    scores, outcomes = (
        scores.sample(frac=1, random_state=1),
        outcomes.sample(frac=1, random_state=2),
    )
    assert backtest(scores, outcomes, None, None, PARAMS, MODEL) == first
    assert BacktestReport.model_validate_json(first.model_dump_json()) == first


def test_capture_is_one_when_the_converters_are_exactly_the_best_tenth() -> None:
    probability = np.linspace(0.99, 0.01, 200)
    outcomes = pd.DataFrame({"lead_id": np.arange(200), "converted": [1] * 20 + [0] * 180})
    report = backtest(scores_of(np.arange(200), probability), outcomes, None, None, PARAMS, MODEL)
    metrics = report.cohorts[0].metrics
    assert metrics["top_10_capture"].value == 1.0 and metrics["top_20_capture"].value == 1.0
    assert metrics["roc_auc"].value == 1.0


def test_a_cohort_of_one_class_has_a_note_and_no_roc_auc() -> None:
    scores, outcomes = calibrated_leads(100)
    none = backtest(scores, outcomes.assign(converted=0), None, None, PARAMS, MODEL).cohorts[0]
    assert set(none.metrics) == {"log_loss", "brier"} and "one class only" in none.note
    every = backtest(scores, outcomes.assign(converted=1), None, None, PARAMS, MODEL).cohorts[0]
    assert "roc_auc" not in every.metrics and "one class only" in every.note


def test_no_matching_lead_gives_a_report_that_warns() -> None:
    scores, outcomes = calibrated_leads(10)
    report = backtest(scores, outcomes.assign(lead_id=1), None, None, PARAMS, None)
    assert report.cohorts == [] and report.status == "warn" and report.model == MODEL


def test_weighted_metrics_are_scikit_learns_on_the_rows_drawn_ties_included() -> None:
    rng = np.random.default_rng(11)
    for _ in range(40):
        n = int(rng.integers(4, 40))
        probability = np.round(rng.random(n), int(rng.integers(1, 3)))
        y = (rng.random(n) < probability).astype(float)
        y[:2] = [0, 1]
        order = np.lexsort((y, -probability))
        y, probability = y[order], probability[order]
        weights = rng.integers(0, 3, (3, n)).astype(float)
        weights[0] = 1
        metrics = weighted_metrics([weights[:1], weights[1:]], y, probability)
        for row in range(3):
            drawn = np.repeat(np.arange(n), weights[row].astype(int))
            truth, scores = y[drawn], probability[drawn]
            if 0 < truth.sum() < len(truth):
                assert metrics["roc_auc"][row] == pytest.approx(roc_auc_score(truth, scores))
                assert metrics["log_loss"][row] == pytest.approx(log_loss(truth, scores))
                assert metrics["brier"][row] == pytest.approx(brier_score_loss(truth, scores))
    distinct = np.linspace(0.9, 0.1, 37)
    y = (np.random.default_rng(2).random(37) < distinct).astype(float)
    metrics = weighted_metrics([np.ones((1, 37))], y, distinct)
    assert metrics["top_20_capture"][0] == pytest.approx(gains_at(y, distinct, 0.2))


def test_leads_tied_at_the_cut_share_it_in_proportion() -> None:
    # Ten leads at 0.5, two converters among them; the best tenth of 20 leads is 2 of them.
    probability = np.r_[np.full(10, 0.5), np.full(10, 0.1)]
    y = np.r_[np.zeros(8), np.ones(2), np.zeros(8), np.ones(2)]
    capture = weighted_metrics([np.ones((1, 20))], y, probability)["top_10_capture"][0]
    assert capture == pytest.approx(2 * (2 / 10) / 4)


def test_the_resamples_do_not_depend_on_the_batch_size(monkeypatch: pytest.MonkeyPatch) -> None:
    whole = np.concatenate(list(draw_counts(50, 120, seed=4)))
    monkeypatch.setattr(backtest_module, "_CHUNK_CELLS", 50 * 7)
    batches = list(draw_counts(50, 120, seed=4))
    assert len(batches) > 1 and np.array_equal(np.concatenate(batches), whole)
    assert (whole.sum(axis=1) == 50).all()


def test_holdout_bands_come_from_version_tags_or_the_evaluation_report() -> None:
    tags = {
        "holdout.roc_auc": "0.812345",
        "holdout.roc_auc.low": "0.790000",
        "holdout.roc_auc.high": "0.830000",
        "holdout.log_loss": "0.450000",  # no interval: no band
        "holdout.brier": "x",
        "holdout.brier.low": "0.1",
        "holdout.brier.high": "0.2",
    }
    assert holdout_bands(tags) == {"roc_auc": MetricBand(value=0.812345, low=0.79, high=0.83)}
    assert holdout_bands({"holdout.accuracy": "0.9"}) is None
    report = MetricsReport(
        model="xgboost",
        metric="roc_auc",
        selection=SelectionRule(metric="roc_auc", folds=5, seed=42, rows=400),
        holdout={"roc_auc": 0.8, "log_loss": 0.5, "accuracy": 0.7},
        holdout_ci={
            "roc_auc": Interval(low=0.78, high=0.82),
            "log_loss": Interval(low=0.45, high=0.55),
        },
        cv=CrossValidation(mean=0.8, std=0.01),
        candidates={},
        rows=RowCounts(test=100, train=400),
        bootstrap=BootstrapSettings(threshold=0.5, resamples=1000, confidence=0.95, seed=42),
    )
    assert holdout_bands_from_report(report) == {
        "roc_auc": MetricBand(value=0.8, low=0.78, high=0.82),
        "log_loss": MetricBand(value=0.5, low=0.45, high=0.55),
    }
