"""The evaluation report: metrics with intervals, figures, and the model card.

Everything here is a function of the holdout rows and the candidates' probabilities on them;
the evaluate stage reads the inputs and writes what these functions return.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lead_conversion_prediction.config import EvaluateParams
from lead_conversion_prediction.modeling.artifacts import (
    BootstrapSettings,
    CalibrationCheck,
    CandidateAudit,
    CrossValidation,
    HeadlineMetrics,
    Interval,
    MetricsReport,
    Reliance,
    RowCounts,
    TrainingSummary,
)
from lead_conversion_prediction.modeling.evaluate import (
    ECE_BINS,
    SCORER_METRICS,
    bootstrap_draws,
    calibration_table,
    compute_metrics,
    percentile_interval,
)
from lead_conversion_prediction.modeling.reliance import (
    FIGURE_INPUT,
    describe_reliance,
    share_by_value,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# The reference notebook's published test figures (computed with leakage: docs/model.md).
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
    "ece": f"Expected calibration error, {ECE_BINS} bins (lower is better)",
    "log_loss": "Log-loss (lower is better)",
}
# The metrics every candidate is compared on in the model card.
COMPARED_METRICS = ("roc_auc", "brier", "ece", "log_loss", "f1_weighted")
# The shares of leads a call list may hold, for the gains table.
CALL_LIST_SHARES = (0.1, 0.2, 0.3, 0.5)
# The model this project chose before selecting for ranking and probabilities (the reference's
# rule: weighted F1 at 0.5, the reference's spaces), measured on the same holdout rows.
PREVIOUS_MODEL = {
    "name": "xgboost_rf (subsample 0.007, chosen on weighted F1)",
    "roc_auc": 0.891,
    "brier": 0.202,
    "ece": 0.247,
    "log_loss": 0.596,
    "f1_weighted": 0.819,
    "low": 0.38,
    "high": 0.57,
}
FIGURES = {
    "roc.png": "ROC curves of every candidate on the holdout rows",
    "precision_recall.png": "Precision-recall curves of every candidate",
    "calibration.png": f"Calibration: observed conversion rate per predicted-probability bin "
    f"({ECE_BINS} equal-width bins, as the ECE), and the chosen model's leads per bin",
    "confusion_matrix.png": "Confusion matrix of the chosen model at the label threshold",
    "cumulative_gains.png": "Cumulative gains: the share of all converters a call list of the "
    "top k % of the leads finds, by the chosen model's scores",
    "feature_importance.png": "Mean absolute contribution of each input to the chosen model's "
    "log-odds (holdout rows)",
    "score_distribution.png": "The chosen model's scores, converters against the others",
    "reliance.png": f"The chosen model's probability against {FIGURE_INPUT} (holdout rows), "
    "with the converters' share and the mean probability per value",
}


def build_metrics(
    y: np.ndarray,
    probabilities: dict[str, np.ndarray],
    summary: TrainingSummary,
    threshold: float,
    params: EvaluateParams,
    holdout_scores: dict[str, float],
    reliance: Reliance | None = None,
) -> MetricsReport:
    """The content of ``reports/evaluation.json``: the selection rule, the chosen model's
    holdout metrics with their intervals and its score on the selection folds, every
    candidate's selection scores (mean and spread) and holdout metrics with their intervals,
    its holdout selection score (``holdout_scores``, by the scorer) beside the chosen model's,
    for auditing the choice, and what the model relies on."""
    selected, metric = summary.selected, summary.metric
    draws = bootstrap_draws(y, probabilities, threshold, params.resamples, params.random_state)
    holdout = compute_metrics(y, probabilities[selected], threshold)
    scored = SCORER_METRICS.get(metric)
    audit = {}
    for name, candidate in summary.candidates.items():
        score_ci = gap_ci = None
        if scored is not None:
            key, sign = scored
            score_ci = _interval(sign * draws[name][key], params.confidence)
            if name != selected:
                gap = sign * (draws[selected][key] - draws[name][key])
                gap_ci = _interval(gap, params.confidence)
        audit[name] = CandidateAudit(
            holdout_score=round(holdout_scores[name], 6),
            cv_mean=round(candidate.cv_mean, 6),
            cv_std=round(candidate.cv_std, 6),
            holdout_score_ci=score_ci,
            selected_minus_this_ci=gap_ci,
            calibration=candidate.calibration.method if candidate.calibration else "none",
            holdout={
                key: round(value, 6)
                for key, value in compute_metrics(y, probabilities[name], threshold).items()
            },
            holdout_ci={
                key: _interval(values, params.confidence) for key, values in draws[name].items()
            },
        )
    chosen = summary.chosen
    return MetricsReport(
        model=selected,
        metric=metric,
        selection=summary.selection,
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
        probability_range=Interval(
            low=round(float(probabilities[selected].min()), 6),
            high=round(float(probabilities[selected].max()), 6),
        ),
        gains={
            f"{share:.0%}": round(float(gains_at(y, probabilities[selected], share)), 6)
            for share in CALL_LIST_SHARES
        },
        reliance=reliance,
    )


# The holdout metrics `dvc exp show` and `dvc metrics diff` compare (reports/metrics.json).
HEADLINE_METRICS = ("roc_auc", "log_loss", "brier", "ece", "f1_weighted", "accuracy")


def headline(metrics: MetricsReport) -> HeadlineMetrics:
    """The few numbers compared across experiments, each named after its metric."""
    return HeadlineMetrics(
        holdout={name: metrics.holdout[name] for name in HEADLINE_METRICS},
        cv={metrics.metric: metrics.cv},
    )


def tracked_metrics(metrics: MetricsReport) -> dict[str, float]:
    """The pipeline run's metrics, named as DVC names ``reports/metrics.json``'s (its JSON
    path: ``holdout.roc_auc``, ``cv.neg_log_loss.mean``), with every holdout metric."""
    cv = metrics.cv.model_dump(mode="json")
    return {
        **{f"holdout.{name}": value for name, value in metrics.holdout.items()},
        **{f"cv.{metrics.metric}.{name}": value for name, value in cv.items()},
    }


def interval_tags(metrics: MetricsReport) -> dict[str, str]:
    """The holdout intervals as tags (``holdout.roc_auc.low``, ``.high``), not charted."""
    return {
        f"holdout.{key}.{end}": f"{getattr(interval, end):.6f}"
        for key, interval in metrics.holdout_ci.items()
        for end in ("low", "high")
    }


def curve_tables(y: np.ndarray, probability: np.ndarray) -> dict[str, pd.DataFrame]:
    """The chosen model's curves as data, by file name: what `dvc plots diff` overlays."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    from lead_conversion_prediction.plots import cumulative_gains

    fpr, tpr, _ = roc_curve(y, probability)
    precision, recall, _ = precision_recall_curve(y, probability)
    calibration = calibration_table(y, probability).query("rows > 0")
    contacted, found = cumulative_gains(y, probability)
    return {
        "roc.csv": pd.DataFrame({"fpr": fpr, "tpr": tpr}),
        "precision_recall.csv": pd.DataFrame({"recall": recall, "precision": precision}),
        "calibration.csv": calibration[["predicted", "observed", "rows"]],
        "cumulative_gains.csv": pd.DataFrame({"contacted": contacted, "found": found}),
    }


def gains_at(y: np.ndarray, probability: np.ndarray, share: float) -> float:
    """The share of all converters among the likeliest ``share`` of the leads."""
    from lead_conversion_prediction.plots import cumulative_gains

    _, found = cumulative_gains(y, probability)
    return float(found[math.ceil(share * len(probability))])


def _interval(draws: np.ndarray, confidence: float) -> Interval:
    interval = percentile_interval(draws, confidence)
    return Interval(low=round(interval.low, 6), high=round(interval.high, 6))


def feature_importances(model: Any, X: pd.DataFrame) -> tuple[dict[str, tuple[float, float]], str]:
    """Each raw input's mean absolute contribution to the model's log-odds on the rows ``X``
    (the reasons' method, ``modeling/explain.py``); the spread is 0 (one value each)."""
    from lead_conversion_prediction.modeling.explain import explain

    contributions = explain(model, X)
    magnitude = np.abs(contributions.values)
    return {
        name: (float(mean), 0.0)
        for name, mean in zip(contributions.inputs, magnitude.mean(axis=0), strict=True)
    }, "mean |contribution| to the log-odds"


def draw_figures(
    y: np.ndarray,
    probabilities: dict[str, np.ndarray],
    selected: str,
    threshold: float,
    importance: dict[str, tuple[float, float]],
    importance_kind: str = "importance",
    *,
    figure_input: np.ndarray,
) -> dict[str, Figure]:
    """Every figure of the report, by file name; ``figure_input`` holds the holdout rows'
    values of ``FIGURE_INPUT``."""
    from lead_conversion_prediction import plots

    chosen = probabilities[selected]
    return {
        "roc.png": plots.plot_roc(y, probabilities),
        "precision_recall.png": plots.plot_precision_recall(y, probabilities),
        "calibration.png": plots.plot_calibration(y, probabilities, selected),
        "confusion_matrix.png": plots.plot_confusion_matrix(y, chosen, threshold),
        "cumulative_gains.png": plots.plot_cumulative_gains(y, chosen, selected, CALL_LIST_SHARES),
        "feature_importance.png": plots.plot_feature_importance(
            importance, f"Feature importance, {selected}", importance_kind
        ),
        "score_distribution.png": plots.plot_score_distribution(y, chosen),
        "reliance.png": plots.plot_probability_against(
            FIGURE_INPUT, figure_input, chosen, share_by_value(figure_input, y, chosen)
        ),
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
    calibration: dict[str, CalibrationCheck] = field(default_factory=dict)
    calibration_methods: tuple[str, ...] = ()
    calibration_folds: int = 5
    figures_folder: str = "figures"
    # Each candidate's monotone constraints: the columns it may only increase in, or None
    # where it cannot be constrained.
    monotone: dict[str, list[str] | None] = field(default_factory=dict)


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
        reliance_verdict=(
            describe_reliance(metrics.reliance, metrics.bootstrap.confidence)
            if metrics.reliance is not None
            else ""
        ),
        previous=PREVIOUS_MODEL,
        compared=COMPARED_METRICS,
        ece_bins=ECE_BINS,
        calibration_folds=context.calibration_folds,
        calibration_methods=", ".join(context.calibration_methods) or "none",
        calibration_options=["none", *context.calibration_methods],
        figure_input=FIGURE_INPUT,
    )


def _format(value: Any, spec: str) -> str:
    """A number in a Python format spec; nothing for a missing value, text as it is."""
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format(value, spec)
    return str(value)


def _verdict(metrics: MetricsReport) -> str:
    """Which candidate the selection folds chose, and what the holdout rows say of it."""
    selected, metric, folds = metrics.model, metrics.metric, metrics.selection.folds
    others = {n: c for n, c in metrics.candidates.items() if n != selected}
    if not others:
        return f"`{selected}` was the only candidate."
    chosen = (
        f"`{selected}` has the best mean `{metric}` over the {folds} selection folds of the "
        "training rows"
    )
    parts = []
    for name, candidate in others.items():
        difference = candidate.selected_minus_this_ci
        if difference is None:
            parts.append(f"no interval for `{metric}`, so the lead over `{name}` is not tested")
        elif difference.low > 0:
            parts.append(f"it beats `{name}`: the interval of the difference is above zero")
        elif difference.high < 0:
            parts.append(
                f"`{name}` scores better there: the interval of the difference is below zero"
            )
        else:
            parts.append(
                f"its lead over `{name}` is within the noise: the interval of the "
                "difference includes zero"
            )
    return f"{chosen}. On the holdout rows, " + "; ".join(parts) + "."
