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
    y: np.ndarray, probabilities: dict[str, np.ndarray], bins: int = 10
) -> Figure:
    """Observed conversion rate against the predicted probability, per probability bin."""
    from sklearn.calibration import calibration_curve

    figure, axes = _figure()
    for name, probability in probabilities.items():
        observed, predicted = calibration_curve(y, probability, n_bins=bins, strategy="quantile")
        axes.plot(predicted, observed, marker="o", label=name)
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    axes.set(
        xlabel="mean predicted probability",
        ylabel="observed conversion rate",
        title=f"Calibration ({bins} quantile bins)",
    )
    axes.legend(loc="upper left")
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
    probabilities: dict[str, np.ndarray],
    selected: str | None = None,
    shares: tuple[float, ...] = (0.1, 0.2, 0.3, 0.5),
) -> Figure:
    """What share of all converters sales finds by calling the top k % of scored leads; the
    ``selected`` model's call lists of the given ``shares`` are marked with that share."""
    import math

    figure, axes = _figure()
    for name, probability in probabilities.items():
        contacted, found = cumulative_gains(y, probability)
        top_fifth = found[math.ceil(0.2 * len(probability))]
        axes.plot(contacted, found, label=f"{name} (top 20 %: {top_fifth:.0%} of converters)")
        if name == selected:
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
        title="Cumulative gains",
    )
    # below the axes: inside, the long labels would cover the marked call lists
    figure.legend(loc="outside lower center", ncols=2, fontsize="x-small")
    return figure


def plot_feature_importance(
    importance: dict[str, tuple[float, float]], title: str, measure: str = "importance"
) -> Figure:
    """Horizontal bars of each feature's importance and its spread, the largest on top."""
    names = sorted(importance, key=lambda name: abs(importance[name][0]))
    means = [importance[name][0] for name in names]
    spreads = [importance[name][1] for name in names]
    figure, axes = _figure()
    axes.barh(names, means, xerr=spreads, color="tab:blue")
    axes.axvline(0, color="grey", linewidth=0.8)
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
