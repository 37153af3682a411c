"""The evaluation report: metrics with intervals, figures, and the model card.

Everything here is a function of the holdout rows and the candidates' probabilities on them;
the evaluate stage reads the inputs and writes what these functions return.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lead_conversion_prediction.config import EvaluateParams
from lead_conversion_prediction.modeling.evaluate import (
    METRIC_NAMES,
    bootstrap_draws,
    compute_metrics,
    percentile_interval,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# The reference notebook's published test figures (computed with leakage, see README).
REFERENCE = {
    "xgboost_rf": {"accuracy": 0.803, "f1_weighted": 0.80},
    "logistic_regression": {"accuracy": 0.785, "f1_weighted": 0.78},
}
METRIC_LABELS = {
    "accuracy": "Accuracy",
    "precision": "Precision (converters)",
    "recall": "Recall (converters)",
    "f1_weighted": "F1, weighted",
    "roc_auc": "ROC-AUC",
    "pr_auc": "PR-AUC (average precision)",
    "brier": "Brier score (lower is better)",
    "log_loss": "Log-loss (lower is better)",
}
FIGURES = {
    "roc.png": "ROC curves of every candidate on the holdout rows",
    "precision_recall.png": "Precision-recall curves of every candidate",
    "calibration.png": "Calibration: observed conversion rate per predicted-probability bin",
    "confusion_matrix.png": "Confusion matrix of the chosen model at the label threshold",
    "cumulative_gains.png": "Cumulative gains: converters found when calling the top k % first",
    "feature_importance.png": "Importance of the chosen model's 12 features",
    "score_distribution.png": "The chosen model's scores, converters against the others",
}


def build_metrics(
    y: np.ndarray,
    probabilities: dict[str, np.ndarray],
    selected: str,
    metric: str,
    candidates: dict[str, dict[str, Any]],
    params: EvaluateParams,
) -> dict[str, Any]:
    """The content of ``reports/metrics.json``: the chosen model's holdout metrics with their
    intervals, its cross-validation score, and every candidate's score for auditing."""
    bootstrap: dict[str, Any] = {
        "threshold": params.threshold,
        "resamples": params.resamples,
        "confidence": params.confidence,
        "seed": params.random_state,
    }
    draws = bootstrap_draws(
        y, probabilities, params.threshold, params.resamples, params.random_state
    )
    holdout = compute_metrics(y, probabilities[selected], params.threshold)
    audit = {}
    for name, candidate in candidates.items():
        entry: dict[str, Any] = {
            "holdout_score": round(candidate["holdout_score"], 6),
            "cv_mean": round(candidate["cv_mean"], 6),
            "cv_std": round(candidate["cv_std"], 6),
        }
        if metric in METRIC_NAMES:
            interval = percentile_interval(draws[name][metric], params.confidence)
            entry["holdout_score_ci"] = interval.as_dict()
            if name != selected:
                gap = draws[selected][metric] - draws[name][metric]
                entry["selected_minus_this_ci"] = percentile_interval(
                    gap, params.confidence
                ).as_dict()
        audit[name] = entry
    chosen = candidates[selected]
    return {
        "model": selected,
        "metric": metric,
        "holdout": {name: round(value, 6) for name, value in holdout.items()},
        "holdout_ci": {
            name: percentile_interval(values, params.confidence).as_dict()
            for name, values in draws[selected].items()
        },
        "cv": {"mean": round(chosen["cv_mean"], 6), "std": round(chosen["cv_std"], 6)},
        "candidates": audit,
        "rows": {"test": len(y)},
        "bootstrap": bootstrap,
    }


def feature_importances(
    model: Any, X: pd.DataFrame, y: np.ndarray, seed: int
) -> tuple[dict[str, tuple[float, float]], str]:
    """Importance of each of the 12 model columns, and what it measures.

    Coefficients for a linear model (averaged over calibration folds), gain-based importances
    for XGBoost; for other models, the drop in holdout ROC-AUC when the column is shuffled.
    Values are ``(importance, spread)``; the spread is 0 unless several values are averaged.
    """
    classifier = model[-1]
    names = [str(name) for name in model[:-1].get_feature_names_out()]
    calibrated = getattr(classifier, "calibrated_classifiers_", [])
    linear: list[Any] = (
        [classifier] if hasattr(classifier, "coef_") else [part.estimator for part in calibrated]
    )
    if linear and all(hasattr(estimator, "coef_") for estimator in linear):
        coefficients = np.vstack([estimator.coef_[0] for estimator in linear])
        return {
            name: (float(mean), float(std))
            for name, mean, std in zip(
                names, coefficients.mean(axis=0), coefficients.std(axis=0), strict=True
            )
        }, "coefficient on the scaled feature"
    if hasattr(classifier, "feature_importances_"):
        gains = classifier.feature_importances_
        return {name: (float(g), 0.0) for name, g in zip(names, gains, strict=True)}, "gain share"
    from sklearn.inspection import permutation_importance

    result = permutation_importance(
        classifier, model[:-1].transform(X), y, scoring="roc_auc", n_repeats=5, random_state=seed
    )
    return {
        name: (float(mean), float(std))
        for name, mean, std in zip(
            names, result.importances_mean, result.importances_std, strict=True
        )
    }, "drop in ROC-AUC when shuffled"


def draw_figures(
    y: np.ndarray,
    probabilities: dict[str, np.ndarray],
    selected: str,
    threshold: float,
    importance: dict[str, tuple[float, float]],
    importance_kind: str = "importance",
) -> dict[str, Figure]:
    """Every figure of the report, by file name."""
    from lead_conversion_prediction import plots

    chosen = probabilities[selected]
    return {
        "roc.png": plots.plot_roc(y, probabilities),
        "precision_recall.png": plots.plot_precision_recall(y, probabilities),
        "calibration.png": plots.plot_calibration(y, probabilities),
        "confusion_matrix.png": plots.plot_confusion_matrix(y, chosen, threshold),
        "cumulative_gains.png": plots.plot_cumulative_gains(y, probabilities),
        "feature_importance.png": plots.plot_feature_importance(
            importance, f"Feature importance, {selected}", importance_kind
        ),
        "score_distribution.png": plots.plot_score_distribution(y, chosen),
    }


@dataclass(frozen=True)
class CardContext:
    """What the model card says about the data and the training, besides the metrics."""

    source_url: str
    raw_md5: str
    min_date: str
    max_date: str
    lead_source: str
    rows_raw: int
    rows_clean: int
    rows_train: int
    columns: list[str]
    best_params: dict[str, Any]
    figures_folder: str = "figures"


def render_model_card(metrics: dict[str, Any], context: CardContext) -> str:
    """The model card in Markdown: data, metrics with intervals, choice, use and limits."""
    selected, metric = metrics["model"], metrics["metric"]
    level = f"{metrics['bootstrap']['confidence']:.0%}"
    lines = [
        "# Model card: lead conversion model",
        "",
        "Predicts whether a new signup becomes a paying customer, so that sales can call the",
        "likeliest converters first. Generated by `lcp evaluate`; every number below is",
        "recomputed on each run.",
        "",
        "## Data",
        "",
        f"- Source: `{context.source_url}` (a frozen DVC import), md5 `{context.raw_md5}`.",
        f"- Signup dates from {context.min_date} to {context.max_date}; "
        f"`{context.lead_source}` leads with a known outcome only.",
        f"- Rows: {context.rows_raw:,} raw, {context.rows_clean:,} after cleaning, split "
        f"{context.rows_train:,} for training and {metrics['rows']['test']:,} held out "
        "(stratified).",
        f"- {len(context.columns)} model features: "
        + ", ".join(f"`{column}`" for column in context.columns)
        + ".",
        "",
        "## Holdout performance of the chosen model",
        "",
        f"Model `{selected}`; labels are 1 above p = {metrics['bootstrap']['threshold']:g}. "
        f"Intervals are {level} percentile intervals over {metrics['bootstrap']['resamples']:,}",
        f"bootstrap resamples of the holdout rows (seed {metrics['bootstrap']['seed']}).",
        "The reference notebook's figures were measured with leakage (preprocessing fitted on",
        "all rows), so they flatter it.",
        "",
        f"| metric | value | {level} interval | reference XGBoost "
        "| reference logistic regression |",
        "|---|---|---|---|---|",
    ]
    for name in metrics["holdout"]:
        interval = metrics["holdout_ci"][name]
        references = [
            REFERENCE[model].get(name) for model in ("xgboost_rf", "logistic_regression")
        ]
        shown = ["" if value is None else f"{value:.3f}" for value in references]
        lines.append(
            f"| {METRIC_LABELS.get(name, name)} (`{name}`) | {metrics['holdout'][name]:.3f} | "
            f"{interval['low']:.3f} to {interval['high']:.3f} | {shown[0]} | {shown[1]} |"
        )
    cv = metrics["cv"]
    lines += [
        "",
        f"Cross-validation on the training rows: `{metric}` {cv['mean']:.3f} ± {cv['std']:.3f}"
        " (mean ± standard deviation over folds).",
        "",
        "## The choice",
        "",
        f"Each candidate was tuned by a seeded random search with cross-validation, then scored "
        f"on the same holdout rows with `{metric}`; the highest score is kept.",
        "",
        f"| candidate | holdout `{metric}` | {level} interval | CV mean ± std "
        "| chosen minus this |",
        "|---|---|---|---|---|",
    ]
    for name, candidate in metrics["candidates"].items():
        interval = candidate.get("holdout_score_ci")
        span = f"{interval['low']:.3f} to {interval['high']:.3f}" if interval else "n/a"
        difference = candidate.get("selected_minus_this_ci")
        gap = (
            "chosen"
            if name == selected
            else f"{difference['low']:+.3f} to {difference['high']:+.3f}"
            if difference
            else "n/a"
        )
        lines.append(
            f"| `{name}` | {candidate['holdout_score']:.3f} | {span} | "
            f"{candidate['cv_mean']:.3f} ± {candidate['cv_std']:.3f} | {gap} |"
        )
    lines += ["", _verdict(metrics), ""]
    params = ", ".join(f"`{k}={_short(v)}`" for k, v in sorted(context.best_params.items()))
    lines += [f"Chosen hyperparameters: {params}.", "", "## Figures", ""]
    for file, caption in FIGURES.items():
        lines += [f"**{caption}**", "", f"![{caption}]({context.figures_folder}/{file})", ""]
    lines += [
        "## Intended use",
        "",
        "Ranking new signups by their chance to convert, so that sales calls the likeliest",
        "first (see the cumulative gains figure). The probability is a ranking score; it is",
        "not a guarantee about any one person, and should not be the only input to decisions",
        "about a lead.",
        "",
        "## Limitations",
        "",
        f"- Trained on `{context.lead_source}` leads of one month ({context.min_date} to "
        f"{context.max_date}); leads from other sources or later months are scored by",
        "  extrapolation, and behaviour may drift. Retrain on new months and compare.",
        f"- {metrics['rows']['test']} holdout rows: the intervals above are wide; differences"
        " smaller than them are not evidence that one candidate is better.",
        "- Probabilities may be poorly calibrated (see the calibration figure and the Brier",
        "  score); use the rank, or recalibrate, before reading them as rates.",
        "- Features are few (purchases, time spent, visits, customer group, onboarding); the",
        "  dropped attributes were left out as in the reference analysis.",
        "",
        "## How to retrain",
        "",
        "```bash",
        "make pipeline                     # data, features, train, evaluate, register, ...",
        "dvc exp run -S train.metric=roc_auc  # an experiment with other parameters",
        "dvc metrics diff                  # compare with the last commit",
        "```",
        "",
        "A new version becomes the registry's `champion` only if it beats the current one on",
        "the same holdout rows.",
        "",
    ]
    return "\n".join(lines)


def _verdict(metrics: dict[str, Any]) -> str:
    selected, metric = metrics["model"], metrics["metric"]
    others = {n: c for n, c in metrics["candidates"].items() if n != selected}
    if not others:
        return f"`{selected}` was the only candidate."
    parts = []
    for name, candidate in others.items():
        difference = candidate.get("selected_minus_this_ci")
        if difference is None:
            parts.append(f"no interval for `{metric}`, so the lead over `{name}` is not tested")
        elif difference["low"] > 0:
            parts.append(f"it beats `{name}`: the interval of the difference is above zero")
        else:
            parts.append(
                f"its lead over `{name}` is within the noise: the interval of the "
                "difference includes zero"
            )
    return f"`{selected}` has the highest holdout `{metric}`; " + "; ".join(parts) + "."


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
