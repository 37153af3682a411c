"""Stage ``train``: search every candidate, cross-validate each as it ships, keep the best.

Reads the training matrix and the fitted preprocessor, and chooses on them alone: every
candidate is scored on the same seeded stratified folds of the training rows
(``train.selection_folds``), and the highest mean of ``train.metric`` wins. Writes every
candidate's Pipeline and ``summary.json`` in ``models/candidates/``, and the chosen model
(``lead_model.joblib``, its classifier as ``model.pkl``, ``columns_list.json``, and
``reference_profile.json``: the training rows' inputs and the chosen model's probabilities on
them, which monitoring compares batches with) in ``models/``: one checksummed set, switched
in at once. The holdout rows are not read here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from loguru import logger

from lead_conversion_prediction.config import Params, Paths
from lead_conversion_prediction.csv_io import read_csv_text, read_raw_leads
from lead_conversion_prediction.modeling.artifacts import (
    CandidateResult,
    SelectionRule,
    TrainingSummary,
)
from lead_conversion_prediction.modeling.candidates import candidate_sections
from lead_conversion_prediction.modeling.selection import (
    cross_validated,
    select_by_cross_validation,
)
from lead_conversion_prediction.modeling.train import (
    assemble_model,
    search_candidates,
    selection_sample,
)
from lead_conversion_prediction.monitoring.profile import build_profile
from lead_conversion_prediction.schema import TARGET
from lead_conversion_prediction.utils.logging import log_stage
from lead_conversion_prediction.utils.storage import artifact_set, load_artifact


def run_train(paths: Paths, params: Params) -> TrainingSummary:
    """Search every candidate, cross-validate each as it ships, keep the best."""
    candidate_sections(params.train, paths.params_file)  # a bad search stops it at once
    with log_stage("train") as facts:
        preprocessor = load_artifact(paths.preprocessor)
        X = read_csv_text(paths.X_train)
        y = read_csv_text(paths.y_train)[TARGET].astype("int64")
        metric, folds, seed = (
            params.train.metric,
            params.train.selection_folds,
            params.train.random_state,
        )
        results = search_candidates(X, y, params.train)

        # The choice: every candidate on the same folds of the training rows.
        X_select, y_select = selection_sample(X, y, params.train)
        logger.info(
            "train: comparing the candidates on {} folds of {:,} training rows",
            folds,
            len(y_select),
        )
        scores, _ = cross_validated(
            {r.name: r.classifier for r in results}, X_select, y_select, metric, folds, seed
        )
        chosen = select_by_cross_validation(scores)
        candidates: dict[str, CandidateResult] = {}
        for result in results:
            cv = scores[result.name]
            candidates[result.name] = CandidateResult(
                best_params=result.best_params,
                cv=cv,
                cv_mean=float(np.mean(cv)),
                cv_std=float(np.std(cv)),
                settings=result.settings,
                calibration=result.calibration,
                budget=result.budget,
                monotone_increasing=(
                    None
                    if result.monotone_increasing is None
                    else list(result.monotone_increasing)
                ),
            )
            logger.info(
                "train: {} search cv {}={:.4f}±{:.4f}, calibration {}, selection cv "
                "{:.4f}±{:.4f} ({:.1f} s)",
                result.name,
                metric,
                result.cv_mean,
                result.cv_std,
                result.calibration.method,
                candidates[result.name].cv_mean,
                candidates[result.name].cv_std,
                result.seconds,
            )
            if result.budget.scaled:
                held_out = params.train.scale.calibration_holdout
                logger.info(
                    "train: {} searched {} settings x {} folds on a sample of {:,} of {:,} "
                    "rows (train.scale), then fitted on {}",
                    result.name,
                    result.budget.n_iter,
                    result.budget.cv_folds,
                    result.budget.search_rows,
                    result.budget.rows,
                    "all of them"
                    if result.calibration.method == "none"
                    else f"{1 - held_out:.0%} of them and calibrated on the rest",
                )
        summary = TrainingSummary(
            metric=metric,
            selection=SelectionRule(metric=metric, folds=folds, seed=seed, rows=len(y_select)),
            selected=chosen,
            rows_train=len(y),
            candidates=candidates,
        )
        models = {r.name: assemble_model(preprocessor, r.classifier) for r in results}
        model = models[chosen]
        columns = [str(name) for name in model[:-1].get_feature_names_out()]

        # Monitoring's reference: the training rows' inputs and what the chosen model gives
        # them. A batch from the same population gets the same distribution of probabilities,
        # tie for tie (the model's output takes few values; another model's would not match).
        probability = model[-1].predict_proba(X)[:, 1]
        profile = build_profile(read_raw_leads(paths.train_split), y, probability)

        with artifact_set(paths.models_dir) as written:
            for name, candidate_model in models.items():
                written.save(candidate_model, _member(paths, paths.candidate_model(name)))
            written.write_json(
                summary.model_dump(mode="json"), _member(paths, paths.candidates_summary)
            )
            written.save(model, paths.lead_model.name)
            written.save(model[-1], paths.validator_model.name)
            written.write_json(columns, paths.columns_list.name)
            written.write_json(profile.model_dump(mode="json"), paths.reference_profile.name)
        facts.update(selected=chosen, **{f"cv_{metric}": round(candidates[chosen].cv_mean, 4)})
    return summary


def _member(paths: Paths, path: Path) -> str:
    """A path of ``models/`` as a member name of its set."""
    return str(path.relative_to(paths.models_dir))
