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
from lead_conversion_prediction.modeling.artifacts import (
    BootstrapSettings,
    CandidateAudit,
    CrossValidation,
    Interval,
    MetricsReport,
    RowCounts,
    TrainingSummary,
)
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
    summary: TrainingSummary,
    threshold: float,
    params: EvaluateParams,
) -> MetricsReport:
    """The content of ``reports/metrics.json``: the chosen model's holdout metrics with their
    intervals, its cross-validation score, and every candidate's score for auditing."""
    selected, metric = summary.selected, summary.metric
    draws = bootstrap_draws(y, probabilities, threshold, params.resamples, params.random_state)
    holdout = compute_metrics(y, probabilities[selected], threshold)
    audit = {}
    for name, candidate in summary.candidates.items():
        score_ci = gap_ci = None
        if metric in METRIC_NAMES:
            score_ci = _interval(draws[name][metric], params.confidence)
            if name != selected:
                gap = draws[selected][metric] - draws[name][metric]
                gap_ci = _interval(gap, params.confidence)
        audit[name] = CandidateAudit(
            holdout_score=round(candidate.holdout_score, 6),
            cv_mean=round(candidate.cv_mean, 6),
            cv_std=round(candidate.cv_std, 6),
            holdout_score_ci=score_ci,
            selected_minus_this_ci=gap_ci,
        )
    chosen = summary.chosen
    return MetricsReport(
        model=selected,
        metric=metric,
        holdout={name: round(value, 6) for name, value in holdout.items()},
        holdout_ci={
            name: _interval(values, params.confidence) for name, values in draws[selected].items()
        },
        cv=CrossValidation(mean=round(chosen.cv_mean, 6), std=round(chosen.cv_std, 6)),
        candidates=audit,
        rows=RowCounts(test=len(y), train=summary.rows_train),
        bootstrap=BootstrapSettings(
            threshold=threshold,
            resamples=params.resamples,
            confidence=params.confidence,
            seed=params.random_state,
        ),
    )


def _interval(draws: np.ndarray, confidence: float) -> Interval:
    interval = percentile_interval(draws, confidence)
    return Interval(low=round(interval.low, 6), high=round(interval.high, 6))


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
    min_date: str | None
    max_date: str | None
    lead_source: str
    rows_raw: int
    rows_clean: int
    columns: list[str]
    best_params: dict[str, Any]
    figures_folder: str = "figures"


def render_model_card(metrics: MetricsReport, context: CardContext) -> str:
    """The model card in Markdown (``templates/model_card.md.jinja``)."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    environment = Environment(
        loader=PackageLoader("lead_conversion_prediction", "templates"),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # Markdown, not HTML
    )
    environment.filters["fmt"] = _format
    return environment.get_template("model_card.md.jinja").render(
        m=metrics,
        c=context,
        labels=METRIC_LABELS,
        reference=REFERENCE,
        figures=FIGURES,
        verdict=_verdict(metrics),
    )


def _format(value: Any, spec: str) -> str:
    """A number in a Python format spec; nothing for a missing value, text as it is."""
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format(value, spec)
    return str(value)


def _verdict(metrics: MetricsReport) -> str:
    selected, metric = metrics.model, metrics.metric
    others = {n: c for n, c in metrics.candidates.items() if n != selected}
    if not others:
        return f"`{selected}` was the only candidate."
    parts = []
    for name, candidate in others.items():
        difference = candidate.selected_minus_this_ci
        if difference is None:
            parts.append(f"no interval for `{metric}`, so the lead over `{name}` is not tested")
        elif difference.low > 0:
            parts.append(f"it beats `{name}`: the interval of the difference is above zero")
        else:
            parts.append(
                f"its lead over `{name}` is within the noise: the interval of the "
                "difference includes zero"
            )
    return f"`{selected}` has the highest holdout `{metric}`; " + "; ".join(parts) + "."
