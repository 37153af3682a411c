import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lead_conversion_prediction.config import EvaluateParams
from lead_conversion_prediction.modeling.artifacts import (
    CandidateResult,
    MetricsReport,
    SelectionRule,
    TrainingSummary,
)
from lead_conversion_prediction.modeling.report import (
    FIGURES,
    CardContext,
    build_metrics,
    draw_figures,
    render_model_card,
)
from lead_conversion_prediction.plots import cumulative_gains, plot_cumulative_gains, save_figure
from tests.support import two_models_holdout

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def holdout() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    return two_models_holdout(200, 11, ("xgboost_rf", "logistic_regression"))


@pytest.fixture(scope="module")
def metrics(holdout: tuple[np.ndarray, dict[str, np.ndarray]]) -> MetricsReport:
    y, probabilities = holdout
    summary = TrainingSummary(
        metric="f1_weighted",
        selection=SelectionRule(metric="f1_weighted", folds=5, seed=42, rows=60),
        selected="xgboost_rf",
        rows_train=60,
        candidates={
            name: CandidateResult(
                best_params={},
                cv=[0.7 - i / 10, 0.8 - i / 10],
                cv_mean=0.75 - i / 10,
                cv_std=0.05,
                settings=[],
            )
            for i, name in enumerate(probabilities)
        },
    )
    scores = {name: 0.7 + i / 10 for i, name in enumerate(probabilities)}
    return build_metrics(y, probabilities, summary, 0.5, EvaluateParams(resamples=200), scores)


def test_the_metrics_hold_intervals_and_every_candidates_score(metrics: MetricsReport) -> None:
    assert set(metrics.holdout) == set(metrics.holdout_ci)
    assert set(metrics.candidates) == {"xgboost_rf", "logistic_regression"}
    assert metrics.candidates["logistic_regression"].selected_minus_this_ci is not None
    assert metrics.candidates["xgboost_rf"].selected_minus_this_ci is None
    assert (metrics.rows.train, metrics.rows.test, metrics.bootstrap.threshold) == (60, 200, 0.5)
    json.dumps(metrics.model_dump(mode="json"), allow_nan=False)  # JSON as written


def test_the_report_records_the_selection_rule_and_each_candidates_cv(
    metrics: MetricsReport,
) -> None:
    assert metrics.selection == SelectionRule(metric="f1_weighted", folds=5, seed=42, rows=60)
    audit = metrics.candidates["logistic_regression"]
    assert audit.cv_mean == pytest.approx(0.65)
    assert audit.cv_std == pytest.approx(0.05)
    assert audit.holdout_score == pytest.approx(0.8)  # the holdout score given, not the CV
    assert metrics.cv.mean == pytest.approx(0.75)  # the chosen model's selection folds


def test_the_card_lists_every_metric_and_embeds_every_figure(metrics: MetricsReport) -> None:
    card = render_model_card(
        metrics,
        CardContext(
            source_url="https://example.org/raw.csv",
            raw_md5="0" * 32,
            min_date="2024-01-01",
            max_date="2024-01-31",
            lead_source="signup",
            rows_raw=100,
            rows_clean=80,
            columns=["purchases", "onboarding_True"],
            best_params={"max_depth": 3, "learning_rate": 0.1234567},
        ),
    )
    for name, value in metrics.holdout.items():
        assert f"(`{name}`) | {value:.3f} |" in card
    for file in FIGURES:
        assert f"(figures/{file})" in card
    assert "`learning_rate=0.1235`" in card
    assert "0.803" in card  # the reference notebook's accuracy, for comparison


def test_every_figure_is_drawn_as_a_valid_png(
    holdout: tuple[np.ndarray, dict[str, np.ndarray]], tmp_path: Path
) -> None:
    from matplotlib.image import imread

    y, probabilities = holdout
    importance = {"n_visits": (0.3, 0.02), "purchases": (0.01, 0.005)}
    visits = np.arange(len(y)) % 12
    figures = draw_figures(
        y, probabilities, "xgboost_rf", 0.5, importance, figure_input=visits.astype(float)
    )
    assert set(figures) == set(FIGURES)
    for name, figure in figures.items():
        save_figure(figure, tmp_path / name)
        content = (tmp_path / name).read_bytes()
        assert content.startswith(PNG_SIGNATURE)
        assert imread(tmp_path / name).shape[:2] == (450, 600)


def test_cumulative_gains_count_converters_found_among_the_best_scores() -> None:
    y = np.array([1, 0, 1, 0])
    contacted, found = cumulative_gains(y, np.array([0.9, 0.8, 0.7, 0.1]))
    np.testing.assert_allclose(contacted, [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(found, [0, 0.5, 0.5, 1.0, 1.0])


def test_a_call_list_finds_the_converters_among_its_leads() -> None:
    from lead_conversion_prediction.modeling.report import gains_at

    y = np.array([1, 0, 1, 0, 1])
    probability = np.array([0.9, 0.8, 0.7, 0.1, 0.2])
    assert gains_at(y, probability, 0.4) == pytest.approx(1 / 3)  # 2 leads: one converter
    assert gains_at(y, probability, 0.5) == pytest.approx(2 / 3)  # 2.5 rounds up to 3 leads
    assert gains_at(y, probability, 1.0) == 1.0


def test_the_gains_legend_covers_no_marked_call_list(
    holdout: tuple[np.ndarray, dict[str, np.ndarray]],
) -> None:
    y, probabilities = holdout
    figure = plot_cumulative_gains(y, probabilities["xgboost_rf"], "xgboost_rf")
    figure.draw_without_rendering()  # lays the figure out, as saving it does
    legends = [*figure.legends, *(axes.get_legend() for axes in figure.axes)]
    boxes = [legend.get_window_extent() for legend in legends if legend is not None]
    labels = figure.axes[0].texts
    assert len(labels) == 4 and boxes
    for label in labels:
        assert not any(label.get_window_extent().overlaps(box) for box in boxes), label


def test_the_runs_metrics_are_named_as_dvcs_and_intervals_are_tags(
    metrics: MetricsReport,
) -> None:
    from lead_conversion_prediction.modeling.report import headline, interval_tags, tracked_metrics

    logged = tracked_metrics(metrics)
    # DVC names a metric by its JSON path in reports/metrics.json
    flat = pd.json_normalize(headline(metrics).model_dump(mode="json")).iloc[0]
    dvc = {str(name): float(value) for name, value in flat.items()}
    assert "holdout.roc_auc" in dvc and "cv.f1_weighted.mean" in dvc
    assert {name: logged[name] for name in dvc} == dvc
    assert set(logged) == {f"holdout.{name}" for name in metrics.holdout} | {
        "cv.f1_weighted.mean",
        "cv.f1_weighted.std",
    }
    tags = interval_tags(metrics)
    assert len(tags) == 2 * len(metrics.holdout_ci)
    assert float(tags["holdout.roc_auc.low"]) == metrics.holdout_ci["roc_auc"].low
    assert float(tags["holdout.roc_auc.high"]) == metrics.holdout_ci["roc_auc"].high
