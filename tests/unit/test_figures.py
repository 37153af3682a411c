"""Each report figure, drawn on small data: its axis labels, legend and bar labels."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from lead_conversion_prediction.modeling.evaluate import (
    ECE_BINS,
    calibration_table,
    expected_calibration_error,
)
from lead_conversion_prediction.modeling.report import draw_figures
from tests.support import two_models_holdout

SELECTED = "xgboost"


Holdout = tuple[np.ndarray, dict[str, np.ndarray]]


@pytest.fixture(scope="module")
def holdout() -> Holdout:
    return two_models_holdout(300, 5, ("xgboost", "logistic_regression"))


@pytest.fixture(scope="module")
def figures(holdout: Holdout) -> dict[str, Figure]:
    y, probabilities = holdout
    importance = {  # one input dominates, one is unused: as the lead model's
        "n_visits": (2.45, 0.0),
        "customer_group": (0.02, 0.0),
        "time_spent": (0.0028, 0.0),
        "purchases": (0.0, 0.0),
    }
    drawn = draw_figures(
        y,
        probabilities,
        SELECTED,
        0.5,
        importance,
        "mean |contribution| to the log-odds",
        figure_input=(np.arange(300) % 12).astype(float),
    )
    for figure in drawn.values():
        figure.draw_without_rendering()
    return drawn


def legend(axes: Axes) -> list[str]:
    found = axes.get_legend() or (axes.figure.legends[0] if axes.figure.legends else None)
    assert found is not None, axes.get_title()
    return [text.get_text() for text in found.get_texts()]


def bar_labels(axes: Axes) -> list[str]:
    return [text.get_text().strip() for text in axes.texts]


def test_roc_and_precision_recall_name_every_candidate(figures: dict[str, Figure]) -> None:
    roc = figures["roc.png"].axes[0]
    assert (roc.get_xlabel(), roc.get_ylabel()) == ("false positive rate", "true positive rate")
    assert [text.split(" (")[0] for text in legend(roc)] == [
        "xgboost",
        "logistic_regression",
        "chance",
    ]
    pr = figures["precision_recall.png"].axes[0]
    assert (pr.get_xlabel(), pr.get_ylabel()) == ("recall", "precision")
    assert legend(pr)[-1] == "converters' share"


def test_the_calibration_figure_uses_the_ece_bins_and_counts_each(
    figures: dict[str, Figure], holdout: Holdout
) -> None:
    y, probabilities = holdout
    curves, counts = figures["calibration.png"].axes
    assert f"{ECE_BINS} equal-width bins" in curves.get_title()
    assert curves.get_ylabel() == "observed conversion rate"
    assert counts.get_xlabel() == "predicted conversion probability"
    assert legend(curves) == [
        "xgboost (chosen)",
        "logistic_regression",
        "perfectly calibrated",
    ]
    table = calibration_table(y, probabilities[SELECTED])
    # one bar per ECE bin, its label the bin's leads, and the points at the bins' means
    assert [int(label) for label in bar_labels(counts)] == table["rows"].tolist()
    edges = [round(bar.get_x(), 6) for bar in counts.patches if isinstance(bar, Rectangle)]
    assert edges == table["edge"].tolist()
    chosen = np.asarray(curves.get_lines()[0].get_xdata(), dtype=np.float64)
    np.testing.assert_allclose(chosen, table.query("rows > 0")["predicted"])
    # the ECE is the rows-weighted gap of these very points
    shown = table.query("rows > 0")
    gap = (shown["rows"] * (shown["predicted"] - shown["observed"]).abs()).sum() / len(y)
    assert gap == pytest.approx(expected_calibration_error(y, probabilities[SELECTED]))


def test_feature_importance_shows_every_input_when_one_dominates(
    figures: dict[str, Figure],
) -> None:
    axes = figures["feature_importance.png"].axes[0]
    assert axes.get_xscale() == "log"
    assert axes.get_xlabel() == "mean |contribution| to the log-odds (log scale)"
    names = [label.get_text() for label in axes.get_yticklabels()]
    assert names == ["purchases", "time_spent", "customer_group", "n_visits"]
    assert [label for label in bar_labels(axes) if label] == [
        "0.0028",
        "0.02",
        "2.45",
        "0",
    ]
    low, high = axes.get_xlim()
    assert low <= 0.0028 / 2 and high > 2.45  # the smallest bar shows, the largest fits


def test_feature_importance_keeps_a_linear_scale_without_a_dominant_input() -> None:
    from lead_conversion_prediction.plots import plot_feature_importance

    figure = plot_feature_importance({"a": (0.3, 0.0), "b": (0.2, 0.0)}, "t", "importance")
    axes = figure.axes[0]
    assert axes.get_xscale() == "linear" and axes.get_xlabel() == "importance"
    assert [label for label in bar_labels(axes) if label] == ["0.2", "0.3"]


def test_the_gains_figure_shows_the_chosen_model_against_random_and_perfect(
    figures: dict[str, Figure],
) -> None:
    axes = figures["cumulative_gains.png"].axes[0]
    assert axes.get_xlabel() == "share of leads contacted, best scores first"
    assert axes.get_ylabel() == "share of all converters found"
    assert SELECTED in axes.get_title()
    labels = legend(axes)
    assert len(labels) == 3 and labels[0].startswith(f"{SELECTED} (top 20 %")
    assert labels[1:] == ["perfect ranking", "random order"]
    assert not any("logistic_regression" in label for label in labels)


def test_the_other_figures_label_their_axes(figures: dict[str, Figure]) -> None:
    matrix = figures["confusion_matrix.png"].axes[0]
    assert (matrix.get_xlabel(), matrix.get_ylabel()) == ("predicted", "actual")
    assert len(matrix.texts) == 4  # a count in each cell
    scores = figures["score_distribution.png"].axes[0]
    assert scores.get_xlabel() == "predicted conversion probability"
    assert legend(scores) == ["did not convert", "converted"]
    reliance = figures["reliance.png"].axes[0]
    assert reliance.get_xlabel() == "n_visits"
    assert legend(reliance) == ["a lead", "mean probability", "converters' share"]
