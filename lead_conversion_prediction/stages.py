"""The pipeline's stages: each reads its inputs, calls the package's functions, writes, logs.

The CLI commands, ``lcp pipeline`` and the DVC stages all run these functions, so a stage
behaves the same however it is started. Each computes everything before it writes anything,
and every write is atomic.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from loguru import logger

from lead_conversion_prediction.config import SCORING_CHUNK_ROWS, TARGET, Params, Paths
from lead_conversion_prediction.dataset import (
    check_raw_data,
    clean_leads,
    date_limits,
    filter_date_window,
    read_pin,
    target_balance,
)
from lead_conversion_prediction.exceptions import (
    DataContractError,
    ModelValidationError,
    RawDataChangedError,
)
from lead_conversion_prediction.schema import read_raw_leads
from lead_conversion_prediction.utils.logging import log_stage, logger_level
from lead_conversion_prediction.utils.storage import (
    file_digest,
    load_artifact,
    read_json,
    save_artifact,
    verify_artifact,
    write_bundle,
    write_csv,
    write_json,
    write_manifest,
    write_text,
)


def run_data(
    paths: Paths, params: Params, raw: Path | None = None, accept_changed: bool = False
) -> None:
    """Check the raw file against its pin, validate it, clean it, write the interim leads."""
    raw = raw or paths.raw_data
    with log_stage("data") as facts:
        pinned = read_pin(paths.raw_data_pin).md5
        try:
            md5 = check_raw_data(raw, pinned)
        except RawDataChangedError:
            if not accept_changed:
                raise
            md5 = file_digest(raw, "md5")
            logger.warning("{}: md5 {} is not the pinned {}; accepted", raw, md5, pinned)
        frame = read_raw_leads(raw)
        window = filter_date_window(frame, params.data)
        leads = clean_leads(frame, params.data)
        if leads.empty:
            raise DataContractError(
                raw, "no labelled rows are left after cleaning; check the data section of params"
            )
        limits = {**date_limits(window), "raw_md5": md5, "rows_raw": len(frame)}
        limits["rows_clean"] = len(leads)
        write_csv(paths.leads, _dated(leads))
        write_json(paths.date_limits, limits)
        facts.update(rows_raw=len(frame), rows_clean=len(leads), target=target_balance(leads))


def run_features(paths: Paths, params: Params) -> None:
    """Split the leads, fit the preprocessing on the training rows, write both model matrices."""
    from lead_conversion_prediction.features import (
        build_preprocessor,
        features_and_target,
        outlier_summary,
        split_leads,
    )

    with log_stage("features") as facts:
        leads = read_raw_leads(paths.leads)
        train, test = split_leads(leads, params.split)
        X_train, y_train = features_and_target(train)
        X_test, y_test = features_and_target(test)
        preprocessor = build_preprocessor(params.features).fit(X_train)
        matrices = {
            paths.X_train: preprocessor.transform(X_train),
            paths.y_train: y_train.astype("float64").to_frame(TARGET),
            paths.X_test: preprocessor.transform(X_test),
            paths.y_test: y_test.astype("float64").to_frame(TARGET),
        }
        write_csv(paths.train_split, _dated(train))
        write_csv(paths.test_split, _dated(test))
        for path, frame in matrices.items():
            write_csv(path, frame)
        write_csv(paths.outlier_summary, outlier_summary(preprocessor, X_train))
        save_artifact(preprocessor, paths.preprocessor)
        write_manifest(paths.processed_dir, [paths.preprocessor.name])
        facts.update(train=len(train), test=len(test), columns=matrices[paths.X_test].shape[1])


def run_train(
    paths: Paths,
    params: Params,
    pool: Executor | None = None,
    meanwhile: Callable[[], object] | None = None,
) -> None:
    """Search every candidate, score each on the holdout rows, keep the best.

    ``pool`` and ``meanwhile`` let ``lcp pipeline`` use both cores (see ``search_candidates``).
    """
    from lead_conversion_prediction.modeling.evaluate import evaluate_model
    from lead_conversion_prediction.modeling.registry import select_best
    from lead_conversion_prediction.modeling.train import assemble_model, search_candidates

    with log_stage("train") as facts:
        preprocessor = load_artifact(paths.preprocessor)
        X = pd.read_csv(paths.X_train)
        y = pd.read_csv(paths.y_train)[TARGET].astype("int64")
        X_test, y_test = _holdout(paths)
        metric = params.train.metric
        results = search_candidates(X, y, params, pool=pool, meanwhile=meanwhile)
        models = {r.name: assemble_model(preprocessor, r.classifier) for r in results}
        candidates: dict[str, Any] = {}
        for result in results:
            holdout = evaluate_model(models[result.name], X_test, y_test, metric)
            candidates[result.name] = {
                "best_params": result.best_params,
                "cv": result.cv_scores,
                "cv_mean": result.cv_mean,
                "cv_std": result.cv_std,
                "settings": result.settings,
                "holdout": holdout["metrics"],
                "holdout_score": holdout["score"],
            }
            logger.info(
                "train: {} cv {}={:.4f}±{:.4f}, holdout {:.4f} ({:.1f} s)",
                result.name,
                metric,
                result.cv_mean,
                result.cv_std,
                holdout["score"],
                result.seconds,
            )
        chosen = select_best({name: c["holdout_score"] for name, c in candidates.items()})
        model = models[chosen]
        columns = [str(name) for name in model[:-1].get_feature_names_out()]

        for name, candidate_model in models.items():
            save_artifact(candidate_model, paths.candidate_model(name))
        write_json(
            paths.candidates_summary,
            {"metric": metric, "selected": chosen, "candidates": candidates},
        )
        write_manifest(
            paths.candidates_dir, [f"{name}.joblib" for name in models] + ["summary.json"]
        )
        save_artifact(model, paths.lead_model)
        save_artifact(model[-1], paths.validator_model)
        write_json(paths.columns_list, columns)
        write_manifest(
            paths.models_dir,
            [paths.lead_model.name, paths.validator_model.name, paths.columns_list.name],
        )
        facts.update(selected=chosen, **{metric: round(candidates[chosen]["holdout_score"], 4)})


def run_evaluate(paths: Paths, params: Params) -> None:
    """Write the holdout metrics with intervals, the figures and the model card."""
    from lead_conversion_prediction.dataset import read_pin
    from lead_conversion_prediction.modeling.evaluate import positive_probability
    from lead_conversion_prediction.modeling.report import (
        CardContext,
        build_metrics,
        draw_figures,
        feature_importances,
        render_model_card,
    )
    from lead_conversion_prediction.plots import save_figure

    with log_stage("evaluate") as facts:
        summary = read_json(paths.candidates_summary)
        limits = read_json(paths.date_limits)
        model = load_artifact(paths.lead_model)
        models = _candidate_models(paths, summary)
        X_test, y_test = _holdout(paths)
        y = y_test.to_numpy()
        probabilities = {name: positive_probability(m, X_test) for name, m in models.items()}
        selected, settings = summary["selected"], params.evaluate
        metrics = build_metrics(
            y, probabilities, selected, summary["metric"], summary["candidates"], settings
        )
        rows_train = len(pd.read_csv(paths.y_train))
        metrics["rows"]["train"] = rows_train
        importance, measure = feature_importances(model, X_test, y, settings.random_state)
        figures = draw_figures(y, probabilities, selected, settings.threshold, importance, measure)
        card = render_model_card(
            metrics,
            CardContext(
                source_url=read_pin(paths.raw_data_pin).url,
                raw_md5=limits["raw_md5"],
                min_date=limits["min_date"],
                max_date=limits["max_date"],
                lead_source=params.data.source,
                rows_raw=limits["rows_raw"],
                rows_clean=limits["rows_clean"],
                rows_train=rows_train,
                columns=read_json(paths.columns_list),
                best_params=summary["candidates"][selected]["best_params"],
            ),
        )
        write_json(paths.metrics, metrics)
        for name, figure in figures.items():
            save_figure(figure, paths.figures_dir / name)
        write_text(paths.model_card, card)
        facts.update(**{key: round(value, 4) for key, value in metrics["holdout"].items()})
        facts.update(figures=len(figures))


def run_register(
    paths: Paths,
    params: Params,
    tracking_uri: str,
    report_ready: Callable[[], object] | None = None,
) -> None:
    """Log a run per candidate to MLflow, register the chosen model, promote it if better.

    The evaluation report (metrics, figures, model card) is attached to the run last; with
    ``report_ready`` (``lcp pipeline``) it may still be being written until then.
    """
    import mlflow

    from lead_conversion_prediction.modeling.evaluate import holdout_score
    from lead_conversion_prediction.modeling.registry import register_and_promote
    from lead_conversion_prediction.modeling.tracking import (
        configure_tracking,
        flatten,
        log_candidate,
    )

    with log_stage("register") as facts:
        summary = read_json(paths.candidates_summary)
        limits = read_json(paths.date_limits)
        X_test, y_test = _holdout(paths)
        models = _candidate_models(paths, summary)
        metric, chosen = summary["metric"], summary["selected"]
        tags = {"raw_md5": limits["raw_md5"], "selected": chosen}

        configure_tracking(tracking_uri, params.registry.experiment)
        with mlflow.start_run(run_name="pipeline", tags=tags) as parent:
            mlflow.log_params(flatten("", params.model_dump(mode="json")))
            logged = {
                name: log_candidate(name, model, summary["candidates"][name], X_test.head(5), tags)
                for name, model in models.items()
            }
            decision = register_and_promote(
                logged[chosen].model_uri,
                params.registry.model_name,
                metric,
                summary["candidates"][chosen]["holdout_score"],
                lambda champion: holdout_score(champion, X_test, y_test, metric),
                tags={"raw_md5": limits["raw_md5"], "run_id": logged[chosen].run_id},
            )
            mlflow.set_tags(
                {"registered_version": decision.version, "promoted": decision.promoted}
            )
            if report_ready is not None:
                report_ready()
            metrics = read_json(paths.metrics)
            mlflow.log_metrics(
                {
                    **{f"holdout_{key}": value for key, value in metrics["holdout"].items()},
                    **{
                        f"holdout_{key}_ci_{end}": interval[end]
                        for key, interval in metrics["holdout_ci"].items()
                        for end in ("low", "high")
                    },
                }
            )
            mlflow.log_dict(metrics, "metrics.json")
            mlflow.log_artifacts(str(paths.figures_dir), "figures")
            mlflow.log_artifact(str(paths.model_card))
        record = {
            **decision.as_dict(),
            "tracking_uri": tracking_uri,
            "experiment": params.registry.experiment,
            "parent_run_id": parent.info.run_id,
            "runs": {name: item.run_id for name, item in logged.items()},
        }
        write_json(paths.registry_record, record)
        facts.update(
            version=decision.version, champion=decision.champion, promoted=decision.promoted
        )


def run_package(paths: Paths) -> None:
    """Bundle the validator model, the full pipeline and the column list into ``models.tar``."""
    with log_stage("package") as facts:
        members = [paths.validator_model, paths.lead_model, paths.columns_list]
        for member in members:
            verify_artifact(member)
        write_bundle(paths.bundle, members)
        facts.update(bundle=paths.bundle.name, bytes=paths.bundle.stat().st_size)


def run_validate(
    paths: Paths,
    params: Params,
    model: Path | None = None,
    X: Path | None = None,
    y: Path | None = None,
    expected_first: Sequence[int] | None = None,
    min_accuracy: float | None = None,
    report: Path | None = None,
) -> dict[str, Any]:
    """Load ``model.pkl`` as the validator does and check its predictions on an X/y pair."""
    from lead_conversion_prediction.modeling.validate import (
        check_predictions,
        load_validator_model,
        read_validation_pair,
    )

    with log_stage("validate") as facts:
        estimator = load_validator_model(model or paths.validator_model)
        X_frame, y_series = read_validation_pair(X or paths.X_test, y or paths.y_test)
        threshold = params.validation.min_accuracy if min_accuracy is None else min_accuracy
        outcome = check_predictions(estimator, X_frame, y_series, threshold, expected_first)
        if not outcome["passed"]:
            raise ModelValidationError(
                f"{model or paths.validator_model}: " + "; ".join(outcome["problems"])
            )
        write_json(report or paths.validation_report, outcome)
        facts.update(
            rows=outcome["rows"], accuracy=outcome["accuracy"], first=outcome["first_predictions"]
        )
    return outcome


def run_predict(
    paths: Paths,
    params: Params,
    source: str,
    target: str,
    model: str | None = None,
    threshold: float = 0.5,
    sort: bool = False,
    on_error: str = "fail",
    rejects: Path | None = None,
    training_source_only: bool = False,
    input_format: str | None = None,
    output_format: str | None = None,
    chunk_rows: int | None = None,
) -> None:
    """Score a file of raw leads with the lead model (see ``modeling.predict.score_file``)."""
    from lead_conversion_prediction.modeling.predict import (
        STDIO,
        ScoringOptions,
        load_scoring_model,
        score_file,
    )

    with log_stage("predict") as facts:
        loaded = load_scoring_model(model, paths.lead_model)
        options = ScoringOptions(
            threshold=threshold,
            sort=sort,
            on_error="skip" if on_error == "skip" else "fail",
            training_source=params.data.source,
            training_source_only=training_source_only,
            chunk_rows=chunk_rows or SCORING_CHUNK_ROWS,
        )
        if rejects is None and target != STDIO:
            rejects = Path(f"{target}.rejects.csv")
        with _progress("scoring") as advance:
            report = score_file(
                loaded,
                source,
                target,
                options,
                rejects=rejects,
                source_format=_file_format(input_format),
                target_format=_file_format(output_format),
                progress=advance,
            )
        for warning in report.warnings():
            logger.warning("predict: {}", warning)
        if report.rows_rejected:
            logger.warning(
                "predict: {:,} rows rejected ({}), written to {}",
                report.rows_rejected,
                ", ".join(f"{k}: {v:,}" for k, v in report.rejected_for.most_common()),
                rejects,
            )
        rate = report.rows_scored / report.seconds if report.seconds else 0.0
        logger.info(
            "predict: {:,} rows scored, {:,} rejected, in {:.2f} s ({:,.0f} rows/s) with {}",
            report.rows_scored,
            report.rows_rejected,
            report.seconds,
            rate,
            loaded.label,
        )
        facts.update(scored=report.rows_scored, rejected=report.rows_rejected)


def _file_format(value: str | None) -> Literal["csv", "parquet"] | None:
    return "parquet" if value == "parquet" else "csv" if value == "csv" else None


@contextmanager
def _progress(description: str) -> Iterator[Callable[[int], None]]:
    """Yield a callback that advances a progress bar of rows, shown only on a terminal."""
    import sys

    if not sys.stderr.isatty():
        yield lambda rows: None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description} {task.completed:,} rows"))
    with Progress(*columns, TimeElapsedColumn(), transient=True) as progress:
        task = progress.add_task(description, total=None)
        yield lambda rows: progress.advance(task, rows)


def run_pipeline(
    paths: Paths,
    params: Params,
    tracking_uri: str,
    raw: Path | None = None,
    accept_changed: bool = False,
    record: bool = True,
) -> None:
    """Run every stage in order, in this process, and log each stage's time.

    Both cores work: a worker process imports the training libraries while the data is
    prepared, then searches the candidates while this process opens the MLflow store (creating
    it takes seconds), then writes the evaluation report while this process logs and
    registers the candidates. The results are the same as stage by stage.

    With ``record``, in a DVC project, the outputs are then recorded in ``dvc.lock`` as
    ``dvc commit dvc.yaml`` would, so ``dvc repro`` finds every stage up to date.
    """
    from lead_conversion_prediction.modeling.tracking import configure_tracking
    from lead_conversion_prediction.modeling.train import search_pool

    def prepare_tracking() -> None:
        configure_tracking(tracking_uri, params.registry.experiment)
        import skops.io  # noqa: F401  (MLflow's model format; slow to import)

    started = time.perf_counter()
    timings: dict[str, float] = {}

    def timed(name: str, step: Callable[[], object]) -> None:
        step_started = time.perf_counter()
        step()
        timings[name] = round(time.perf_counter() - step_started, 2)

    with search_pool(logger_level()) as pool:
        timed("data", lambda: run_data(paths, params, raw, accept_changed))
        timed("features", lambda: run_features(paths, params))
        timed("train", lambda: run_train(paths, params, pool=pool, meanwhile=prepare_tracking))
        evaluation = pool.submit(run_evaluate, paths, params)
        recording = record and is_dvc_project(paths.root)

        def report_ready() -> None:
            if recording:
                import dvc.repo  # noqa: F401  (slow to import: done while the report is drawn)
            evaluation.result()

        timed(
            "evaluate & register",
            lambda: run_register(paths, params, tracking_uri, report_ready=report_ready),
        )
    timed("package", lambda: run_package(paths))
    timed("validate", lambda: run_validate(paths, params))
    if recording:
        timed("dvc.lock", lambda: record_in_dvc_lock(paths.root))
    stages = ", ".join(f"{name} {seconds} s" for name, seconds in timings.items())
    logger.info("pipeline: done in {:.2f} s ({})", time.perf_counter() - started, stages)


def is_dvc_project(root: Path) -> bool:
    """True when ``root`` holds a DVC project with this pipeline."""
    return (root / ".dvc").is_dir() and (root / "dvc.yaml").is_file()


def record_in_dvc_lock(root: Path) -> None:
    """Record the pipeline's current outputs in ``dvc.lock``, as ``dvc commit dvc.yaml`` does.

    A failure is reported as a warning: the outputs are complete, only the lock is stale.
    """
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            repo.commit(str(root / "dvc.yaml"), force=True, relink=False)
    except DvcException as error:
        logger.warning("dvc.lock not updated ({}); run 'dvc commit dvc.yaml'", error)


def _holdout(paths: Paths) -> tuple[pd.DataFrame, pd.Series]:
    """The holdout rows' model inputs and target."""
    from lead_conversion_prediction.features import features_and_target

    return features_and_target(read_raw_leads(paths.test_split))


def _candidate_models(paths: Paths, summary: dict[str, Any]) -> dict[str, Any]:
    """Every searched candidate's fitted Pipeline, checked against its checksum."""
    return {name: load_artifact(paths.candidate_model(name)) for name in summary["candidates"]}


def _dated(leads: pd.DataFrame) -> pd.DataFrame:
    return leads.assign(date_part=leads["date_part"].dt.strftime("%Y-%m-%d"))
