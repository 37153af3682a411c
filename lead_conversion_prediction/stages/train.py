"""Stage ``train``: search every candidate, score each on the holdout rows, keep the best.

Reads the training matrix, the fitted preprocessor and the holdout rows; writes every
candidate's Pipeline and ``summary.json`` in ``models/candidates/``, and the chosen model
(``lead_model.joblib``, its classifier as ``model.pkl``, ``columns_list.json``, and
``reference_profile.json``: the training rows' inputs and the holdout rows' scores, which
monitoring compares batches with) in ``models/``: one checksummed set, switched in at once.
"""

from __future__ import annotations

from pathlib import Path

from loguru import logger

from lead_conversion_prediction.config import Params, Paths
from lead_conversion_prediction.csv_io import read_csv_text, read_raw_leads
from lead_conversion_prediction.modeling.artifacts import CandidateResult, TrainingSummary
from lead_conversion_prediction.modeling.candidates import candidate_sections
from lead_conversion_prediction.modeling.evaluate import evaluate_model, positive_probability
from lead_conversion_prediction.modeling.selection import select_best
from lead_conversion_prediction.modeling.train import assemble_model, search_candidates
from lead_conversion_prediction.monitoring.profile import build_profile
from lead_conversion_prediction.schema import TARGET
from lead_conversion_prediction.stages._io import read_holdout
from lead_conversion_prediction.utils.logging import log_stage
from lead_conversion_prediction.utils.storage import artifact_set, load_artifact


def run_train(paths: Paths, params: Params) -> TrainingSummary:
    """Search every candidate, score each on the holdout rows, keep the best."""
    candidate_sections(params.train, paths.params_file)  # a bad search stops it at once
    with log_stage("train") as facts:
        preprocessor = load_artifact(paths.preprocessor)
        X = read_csv_text(paths.X_train)
        y = read_csv_text(paths.y_train)[TARGET].astype("int64")
        X_test, y_test = read_holdout(paths)
        metric = params.train.metric
        results = search_candidates(X, y, params.train)
        models = {r.name: assemble_model(preprocessor, r.classifier) for r in results}
        candidates: dict[str, CandidateResult] = {}
        for result in results:
            holdout, score = evaluate_model(
                models[result.name], X_test, y_test, metric, params.threshold
            )
            candidates[result.name] = CandidateResult(
                best_params=result.best_params,
                cv=result.cv_scores,
                cv_mean=result.cv_mean,
                cv_std=result.cv_std,
                settings=result.settings,
                calibration=result.calibration,
                budget=result.budget,
                holdout=holdout,
                holdout_score=score,
            )
            logger.info(
                "train: {} cv {}={:.4f}±{:.4f}, calibration {}, holdout {:.4f} ({:.1f} s)",
                result.name,
                metric,
                result.cv_mean,
                result.cv_std,
                result.calibration.method,
                score,
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
        chosen = select_best({name: c.holdout_score for name, c in candidates.items()})
        summary = TrainingSummary(
            metric=metric, selected=chosen, rows_train=len(y), candidates=candidates
        )
        model = models[chosen]
        columns = [str(name) for name in model[:-1].get_feature_names_out()]
        profile = build_profile(
            read_raw_leads(paths.train_split), y, positive_probability(model, X_test)
        )

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
        facts.update(selected=chosen, **{metric: round(candidates[chosen].holdout_score, 4)})
    return summary


def _member(paths: Paths, path: Path) -> str:
    """A path of ``models/`` as a member name of its set."""
    return str(path.relative_to(paths.models_dir))
