"""The evaluation figures: each function takes the holdout data and returns a matplotlib Figure.

Figures are built on ``matplotlib.figure.Figure`` (no pyplot state), so they can be drawn in
any process; :func:`save_figure` writes a PNG atomically without metadata that would vary.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

SIZE = (6.0, 4.5)
DPI = 100


def _figure() -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    return figure, figure.add_subplot()


def plot_roc(y: np.ndarray, probabilities: dict[str, np.ndarray]) -> Figure:
    """ROC curves of every candidate on the holdout rows."""
    from sklearn.metrics import roc_auc_score, roc_curve

    figure, axes = _figure()
    for name, probability in probabilities.items():
        fpr, tpr, _ = roc_curve(y, probability)
        axes.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, probability):.3f})")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve")
    axes.legend(loc="lower right")
    return figure


def plot_precision_recall(y: np.ndarray, probabilities: dict[str, np.ndarray]) -> Figure:
    """Precision-recall curves of every candidate, with the converters' share as baseline."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    figure, axes = _figure()
    for name, probability in probabilities.items():
        precision, recall, _ = precision_recall_curve(y, probability)
        ap = average_precision_score(y, probability)
        axes.step(recall, precision, where="post", label=f"{name} (AP {ap:.3f})")
    axes.axhline(float(np.mean(y)), linestyle="--", color="grey", label="converters' share")
    axes.set(xlabel="recall", ylabel="precision", title="Precision-recall curve", ylim=(0, 1.02))
    axes.legend(loc="lower left")
    return figure


def plot_calibration(
    y: np.ndarray, probabilities: dict[str, np.ndarray], selected: str | None = None
) -> Figure:
    """Observed conversion rate against the mean predicted probability in each of the ECE's
    equal-width bins (``modeling/evaluate.py``), every candidate's; below, the ``selected``
    model's leads per bin (an empty bin has no point)."""
    from matplotlib.figure import Figure

    from lead_conversion_prediction.modeling.evaluate import ECE_BINS, calibration_table

    figure = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    curves, counts = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    for name, probability in probabilities.items():
        table = calibration_table(y, probability).query("rows > 0")
        chosen = name == selected
        curves.plot(
            table["predicted"],
            table["observed"],
            marker="o",
            linewidth=2.2 if chosen else 1.0,
            alpha=1.0 if chosen else 0.6,
            label=f"{name} (chosen)" if chosen else name,
        )
    curves.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    curves.set(
        ylabel="observed conversion rate",
        title=f"Calibration ({ECE_BINS} equal-width bins, as the ECE)",
    )
    curves.legend(loc="upper left", fontsize="small")
    shown = selected if selected in probabilities else next(iter(probabilities))
    table = calibration_table(y, probabilities[shown])
    bars = counts.bar(
        table["edge"], table["rows"], width=1 / ECE_BINS, align="edge", color="tab:grey"
    )
    counts.bar_label(bars, fontsize=7, padding=1)
    counts.set(
        xlabel="predicted conversion probability",
        ylabel=f"leads, {shown}",
        ylim=(0, table["rows"].max() * 1.35 + 1),
        xlim=(0, 1),
    )
    return figure


def plot_confusion_matrix(y: np.ndarray, probability: np.ndarray, threshold: float) -> Figure:
    """Counts of each outcome for the labels given at ``threshold``."""
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(y, (probability > threshold).astype(int), labels=[0, 1])
    figure, axes = _figure()
    axes.imshow(matrix, cmap="Blues")
    for (row, column), count in np.ndenumerate(matrix):
        color = "white" if count > matrix.max() / 2 else "black"
        axes.text(column, row, f"{count}", ha="center", va="center", color=color, fontsize=14)
    axes.set(
        xticks=[0, 1],
        yticks=[0, 1],
        xticklabels=["no", "converts"],
        yticklabels=["no", "converts"],
        xlabel="predicted",
        ylabel="actual",
        title=f"Confusion matrix (label 1 above p = {threshold:g})",
    )
    return figure


def cumulative_gains(y: np.ndarray, probability: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Share of leads contacted (best scores first) and share of all converters found."""
    order = np.argsort(-probability, kind="stable")
    found = np.concatenate([[0.0], np.cumsum(np.asarray(y)[order]) / max(int(np.sum(y)), 1)])
    contacted = np.arange(len(found)) / len(probability)
    return contacted, found


def plot_cumulative_gains(
    y: np.ndarray,
    probability: np.ndarray,
    name: str,
    shares: tuple[float, ...] = (0.1, 0.2, 0.3, 0.5),
) -> Figure:
    """What share of all converters sales finds by calling the top k % of the leads the chosen
    model ``name`` scores best, against a random order and a perfect ranking; its call lists
    of the given ``shares`` are marked with that share. (The candidates' curves lie on top of
    each other: the ROC figure compares them.)"""
    import math

    figure, axes = _figure()
    contacted, found = cumulative_gains(y, probability)
    top_fifth = found[math.ceil(0.2 * len(probability))]
    axes.plot(contacted, found, label=f"{name} (top 20 %: {top_fifth:.0%} of converters)")
    for share in shares:
        value = found[math.ceil(share * len(probability))]
        axes.plot([share], [value], marker="o", color="black")
        axes.annotate(
            f"top {share:.0%}: {value:.0%}",
            (share, value),
            textcoords="offset points",
            xytext=(6, -12),
            fontsize=8,
        )
    rate = float(np.mean(y))
    axes.plot([0, rate, 1], [0, 1, 1], linestyle=":", color="black", label="perfect ranking")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="random order")
    axes.set(
        xlabel="share of leads contacted, best scores first",
        ylabel="share of all converters found",
        title=f"Cumulative gains of {name}",
    )
    axes.legend(loc="lower right", fontsize="small")  # below the diagonal: nothing there
    return figure


# One input dominates when its importance is this many times the next one's: a log scale.
DOMINANCE = 10.0


def plot_feature_importance(
    importance: dict[str, tuple[float, float]], title: str, measure: str = "importance"
) -> Figure:
    """Horizontal bars of each feature's importance (and its spread, if any), the largest on
    top, each labelled with its value. When one input dominates (``DOMINANCE``), the scale is
    logarithmic, so that the others' bars show too; an input of importance 0 is labelled 0."""
    names = sorted(importance, key=lambda name: abs(importance[name][0]))
    means = np.array([importance[name][0] for name in names], dtype=np.float64)
    spreads = [importance[name][1] for name in names]
    positive = np.sort(means[means > 0])
    logarithmic = bool(
        len(positive) >= 2 and (means >= 0).all() and positive[-1] > DOMINANCE * positive[-2]
    )
    figure, axes = _figure()
    bars = axes.barh(
        names, means, xerr=spreads if any(spreads) else None, color="tab:blue", log=logarithmic
    )
    axes.bar_label(bars, labels=[f"{value:.3g}" if value else "" for value in means], padding=3)
    if logarithmic:
        left = 10 ** np.floor(np.log10(positive[0] / 2))
        axes.set_xlim(left, positive[-1] * 8)
        for row, value in enumerate(means):
            if value == 0:
                axes.text(left, row, " 0", va="center")
        measure += " (log scale)"
    else:
        axes.axvline(0, color="grey", linewidth=0.8)
        axes.margins(x=0.15)
    axes.set(xlabel=measure, title=title)
    return figure


def plot_score_distribution(y: np.ndarray, probability: np.ndarray) -> Figure:
    """Histograms of the predicted probability for converters and the others."""
    figure, axes = _figure()
    bins = np.linspace(0, 1, 26).tolist()
    truth = np.asarray(y).astype(bool)
    axes.hist(probability[~truth], bins=bins, alpha=0.6, label="did not convert")
    axes.hist(probability[truth], bins=bins, alpha=0.6, label="converted")
    axes.set(xlabel="predicted conversion probability", ylabel="leads", title="Scores by outcome")
    axes.legend(loc="upper center")
    return figure


def plot_probability_against(
    name: str, values: np.ndarray, probability: np.ndarray, shares: pd.DataFrame
) -> Figure:
    """The model's probability of each lead against one input, with the share of converters
    and the mean probability per value of it (``shares``: ``value``, ``rows``,
    ``converted_share``, ``mean_probability``); a marker's area grows with its rows."""
    figure, axes = _figure()
    axes.scatter(values, probability, s=6, alpha=0.25, color="tab:blue", label="a lead")
    axes.plot(
        shares["value"], shares["mean_probability"], color="tab:blue", label="mean probability"
    )
    area = 8 + 60 * shares["rows"] / max(float(shares["rows"].max()), 1.0)
    axes.scatter(
        shares["value"],
        shares["converted_share"],
        s=area,
        color="tab:orange",
        edgecolors="black",
        linewidths=0.5,
        label="converters' share",
        zorder=3,
    )
    axes.set(
        xlabel=name,
        ylabel="conversion probability / share",
        ylim=(-0.02, 1.02),
        title=f"The model's probability against {name}",
    )
    axes.legend(loc="lower right", fontsize="small")
    return figure


def save_figure(figure: Figure, path: Path) -> None:
    """Write ``figure`` as a PNG atomically, with no metadata that varies between runs."""
    from lead_conversion_prediction.utils.atomic import atomic_path

    with atomic_path(path) as temporary, temporary.open("wb") as stream:
        figure.savefig(stream, format="png", metadata={"Software": None})
