"""Stage ``evaluate``: the holdout metrics with intervals, the figures and the model card.

Reads the candidates, the chosen model, the holdout rows, the training rows (for the inputs
taken alone, ``modeling/reliance.py``) and the data summary; writes the headline
``reports/metrics.json`` (what DVC compares), the whole ``reports/evaluation.json``, the
curves as data in ``reports/plots/``, ``reports/figures/*.png`` and ``reports/model_card.md``.
"""

from __future__ import annotations

from loguru import logger

from lead_conversion_prediction.config import Params, Paths
from lead_conversion_prediction.csv_io import read_raw_leads
from lead_conversion_prediction.modeling.artifacts import (
    DataSummary,
    MetricsReport,
    TrainingSummary,
)
from lead_conversion_prediction.modeling.evaluate import holdout_score, positive_probability
from lead_conversion_prediction.modeling.reliance import FIGURE_INPUT, measure_reliance
from lead_conversion_prediction.modeling.report import (
    CardContext,
    build_metrics,
    curve_tables,
    draw_figures,
    feature_importances,
    headline,
    render_model_card,
)
from lead_conversion_prediction.plots import save_figure
from lead_conversion_prediction.schema import features_and_target
from lead_conversion_prediction.stages._io import load_candidate_models, read_holdout
from lead_conversion_prediction.utils.logging import log_stage
from lead_conversion_prediction.utils.storage import (
    load_artifact,
    read_json,
    write_csv,
    write_text,
)


def run_evaluate(paths: Paths, params: Params) -> MetricsReport:
    """Write the holdout metrics with intervals, the figures and the model card."""
    with log_stage("evaluate") as facts:
        summary = TrainingSummary.read(paths.candidates_summary)
        data = DataSummary.read(paths.data_summary)
        model = load_artifact(paths.lead_model)
        models = load_candidate_models(paths, summary)
        X_test, y_test = read_holdout(paths)
        y = y_test.to_numpy()
        probabilities = {name: positive_probability(m, X_test) for name, m in models.items()}
        scores = {
            name: holdout_score(m, X_test, y_test, summary.metric) for name, m in models.items()
        }
        logger.info(
            "evaluate: {} candidates on {} holdout rows, {:,} bootstrap resamples; then figures",
            len(models),
            len(y),
            params.evaluate.resamples,
        )
        reliance = measure_reliance(
            features_and_target(read_raw_leads(paths.train_split)),
            (X_test, y_test),
            probabilities[summary.selected],
            params.threshold,
            params.evaluate,
        )
        metrics = build_metrics(
            y, probabilities, summary, params.threshold, params.evaluate, scores, reliance
        )
        importance, measure = feature_importances(model, X_test)
        figures = draw_figures(
            y,
            probabilities,
            summary.selected,
            params.threshold,
            importance,
            measure,
            figure_input=X_test[FIGURE_INPUT].to_numpy(dtype="float64", na_value=float("nan")),
        )
        card = render_model_card(
            metrics,
            CardContext(
                source_url=data.raw_url,
                raw_md5=data.raw_md5,
                min_date=data.min_date,
                max_date=data.max_date,
                lead_source=params.data.source,
                rows_raw=data.rows_raw,
                rows_clean=data.rows_clean,
                columns=read_json(paths.columns_list),
                best_params=summary.chosen.best_params,
                calibration={
                    name: candidate.calibration
                    for name, candidate in summary.candidates.items()
                    if candidate.calibration is not None
                },
                calibration_methods=tuple(params.train.calibration.methods),
                calibration_folds=params.train.calibration.cv_folds,
                monotone={
                    name: candidate.monotone_increasing
                    for name, candidate in summary.candidates.items()
                },
            ),
        )
        metrics.write(paths.evaluation)
        headline(metrics).write(paths.metrics)
        for name, table in curve_tables(y, probabilities[summary.selected]).items():
            write_csv(paths.plots_dir / name, table.round(6))
        for name, figure in figures.items():
            save_figure(figure, paths.figures_dir / name)
        write_text(paths.model_card, card)
        facts.update(**{key: round(value, 4) for key, value in metrics.holdout.items()})
        facts.update(figures=len(figures))
    return metrics
