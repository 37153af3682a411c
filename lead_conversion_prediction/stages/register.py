"""Stage ``register``: log every candidate to MLflow with its lineage, register the chosen
model as the challenger, attach the evaluation report, and move the champion only by the rule.

The champion alias moves here only when the registry has none yet (a version that beats the
base-rate model and keeps the course contract), or on the release path (``--promote``) when
the challenger is better, and no worse, on the evaluation set (``modeling/promotion.py``). A
model registered already in the store (the same ``lead_model.joblib``) is neither logged nor
registered again: no new run.

Reads the candidates, the holdout rows, the data summary, the validation and the report;
writes the MLflow store and ``reports/registry.json``, the record of that side effect (no DVC
output: it names the store's runs; DVC skips the stage while nothing it reads changed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from loguru import logger

from lead_conversion_prediction.config import Params, Paths
from lead_conversion_prediction.modeling.artifacts import (
    DataSummary,
    MetricsReport,
    RegistryRecord,
    TrainingSummary,
    ValidationReport,
)
from lead_conversion_prediction.modeling.lineage import Lineage, collect_lineage
from lead_conversion_prediction.modeling.promotion import Decision
from lead_conversion_prediction.stages._io import load_candidate_models, read_holdout
from lead_conversion_prediction.utils.logging import log_stage
from lead_conversion_prediction.utils.secrets import redact_uri


def run_register(
    paths: Paths, params: Params, tracking_uri: str, promote: bool = False
) -> RegistryRecord:
    """Log the candidates, register the chosen model, attach the report, maybe promote."""
    with registering(paths, params, tracking_uri, promote):
        pass
    return RegistryRecord.read(paths.registry_record)


@contextmanager
def registering(
    paths: Paths,
    params: Params,
    tracking_uri: str,
    promote: bool = False,
    evaluated: Callable[[], object] = lambda: None,
) -> Iterator[RegistryRecord]:
    """Look the model up in the store, else log and register the candidates; when the block
    ends, attach the report and decide the champion. ``reports/registry.json`` then holds the
    final record (the one yielded is the registration's, before the decision).

    The block runs with the pipeline's MLflow run still open: ``lcp pipeline`` uses it to wait
    for the report that another process draws meanwhile. ``evaluated`` returns once this run's
    ``reports/evaluation.json`` is written: the candidates are logged meanwhile, and it is
    read only then (an earlier run's would tag the version with another model's metrics).
    """
    from lead_conversion_prediction.csv_io import read_raw_leads
    from lead_conversion_prediction.modeling.promotion import evaluation_set_md5
    from lead_conversion_prediction.modeling.registry import champion_number, registered_model
    from lead_conversion_prediction.modeling.tracking import (
        configure_tracking,
        end_abandoned_runs,
        tag_run,
    )
    from lead_conversion_prediction.utils.storage import file_digest

    with log_stage("register") as facts:
        summary = TrainingSummary.read(paths.candidates_summary)
        data = DataSummary.read(paths.data_summary)
        validation = ValidationReport.read(paths.validation_report)
        holdout = read_raw_leads(paths.test_split)
        name = params.registry.model_name
        workspace_digest = file_digest(paths.lead_model)
        lineage = collect_lineage(
            paths.root, params, data.raw_md5, evaluation_set_md5(holdout), summary.metric
        )
        pending = RegistryRecord.model_construct(
            model_name=name,
            promoted=False,
            decision="pending: the report is not attached yet",
            promotion_metric=params.promotion.metric,
            evaluation_set_md5=lineage.evaluation_set_md5,
            tracking_uri=redact_uri(tracking_uri),
            experiment=params.registry.experiment,
            workspace_sha256=workspace_digest,
        )

        logger.info("register: the MLflow store is {}", pending.tracking_uri)
        experiment_id = configure_tracking(tracking_uri, params.registry.experiment)
        end_abandoned_runs(experiment_id, lineage.owner)
        existing = registered_model(name, workspace_digest)  # look before logging
        registration: AbstractContextManager[RegistryRecord]
        if existing is not None:
            registration = _registered_already(existing, pending, champion_number(name))
        else:
            registration = _logged_and_registered(
                paths, params, summary, lineage, workspace_digest, validation, pending, evaluated
            )
        with registration as record:
            record.write(paths.registry_record)  # true to the registry from now on
            yield record
        decision = decide_champion(paths, params, record.version, promote)
        if existing is None:
            tag_run(record.parent_run_id, {"promoted": decision.promoted})
        record = record.model_copy(
            update={
                "champion": champion_number(name),
                "promoted": decision.promoted,
                "decision": decision.reason,
            }
        )
        record.write(paths.registry_record)
        keep_for_scoring(paths, name, record.version)
        facts.update(version=record.version, champion=record.champion, promoted=decision.promoted)
    if decision.promoted or not promote:  # a refused release: the command tells it
        logger.info("register: {}", decision.reason)


@contextmanager
def _registered_already(
    version: Any, pending: RegistryRecord, champion: int | None
) -> Iterator[RegistryRecord]:
    """The record of a model the store holds already: its version and the runs that logged it."""
    from lead_conversion_prediction.modeling.tracking import registered_runs

    logger.info(
        "register: the same model is version {} already; nothing logged again", version.version
    )
    parent, runs = registered_runs(version)
    yield RegistryRecord.model_validate(
        {
            **dict(pending),
            "version": int(version.version),
            "new_version": False,
            "champion": champion,
            "parent_run_id": parent,
            "runs": runs,
        }
    )


@contextmanager
def _logged_and_registered(
    paths: Paths,
    params: Params,
    summary: TrainingSummary,
    lineage: Lineage,
    workspace_digest: str,
    validation: ValidationReport,
    pending: RegistryRecord,
    evaluated: Callable[[], object],
) -> Iterator[RegistryRecord]:
    """Log the candidates in a pipeline run and register the chosen one; when the block ends,
    attach the report and complete the registration."""
    import mlflow

    from lead_conversion_prediction.csv_io import read_raw_leads
    from lead_conversion_prediction.modeling.registry import (
        WORKSPACE_TAG,
        champion_number,
        completing,
        evaluation_summary,
        evaluation_tags,
        register_chosen,
    )
    from lead_conversion_prediction.modeling.tracking import (
        flatten,
        log_candidate,
        log_candidate_holdout,
        log_datasets,
        numbered_run_name,
    )
    from lead_conversion_prediction.scoring.pyfunc import MODEL_DIGEST_TAG
    from lead_conversion_prediction.utils.storage import verify_artifact

    name, chosen, tags = params.registry.model_name, summary.selected, lineage.tags()
    models = load_candidate_models(paths, summary)
    verify_artifact(paths.reference_profile)  # logged with the chosen model: checked first
    X_test, _ = read_holdout(paths)
    run_name = numbered_run_name(lineage.dvc_experiment or f"{chosen}@{lineage.git_commit[:7]}")
    logger.info(
        "register: logging {} candidates and their models as run '{}'", len(models), run_name
    )
    with mlflow.start_run(run_name=run_name, tags={**tags, "selected": chosen}) as parent:
        mlflow.log_params(flatten("", params.model_dump(mode="json")))
        log_datasets(read_raw_leads(paths.train_split), read_raw_leads(paths.test_split), paths)
        logged = {
            candidate: log_candidate(
                candidate,
                model,
                summary.candidates[candidate],
                X_test.head(5),
                tags,
                paths.reference_profile if candidate == chosen else None,
                summary.metric,
            )
            for candidate, model in models.items()
        }
        # Tags and description go with the version's creation: one request, not one each.
        evaluated()
        metrics = MetricsReport.read(paths.evaluation)
        for candidate, item in logged.items():
            log_candidate_holdout(item.run_id, metrics.candidates[candidate], summary.metric)
        version, new = register_chosen(
            name,
            logged[chosen].model_uri,
            {
                **tags,
                "candidate": chosen,
                "run_id": logged[chosen].run_id,
                MODEL_DIGEST_TAG: logged[chosen].digest,
                WORKSPACE_TAG: workspace_digest,
                "validation_accuracy": f"{validation.accuracy:.6f}",
                **evaluation_tags(metrics),
            },
            evaluation_summary(chosen, metrics, lineage),
        )
        with completing(name, version, new):
            mlflow.set_tags({"registered_version": version, "new_version": new})
            yield RegistryRecord.model_validate(
                {
                    **dict(pending),
                    "version": version,
                    "new_version": new,
                    "champion": champion_number(name),
                    "parent_run_id": parent.info.run_id,
                    "runs": {candidate: item.run_id for candidate, item in logged.items()},
                }
            )
            attach_report(paths, metrics)


def keep_for_scoring(paths: Paths, name: str, version: int) -> None:
    """Keep a copy of the version just registered (the workspace's model, with its reference
    profile) and the champion's resolution for scoring (``scoring/model_cache.py``): the first
    ``lcp predict`` after a registration neither asks MLflow nor reads the skops file."""
    from lead_conversion_prediction.exceptions import ArtifactError
    from lead_conversion_prediction.modeling.registry import CHAMPION
    from lead_conversion_prediction.scoring.model import (
        copy_from_workspace,
        remember_resolution,
        resolve,
    )

    try:
        registered = resolve(f"models:/{name}/{version}")
    except ArtifactError:  # registered with no digest (by an earlier lcp): not kept
        return
    copy_from_workspace(paths.cache_dir, registered, paths.lead_model, with_profile=True)
    remember_resolution(f"models:/{name}@{CHAMPION}", paths.cache_dir)


def attach_report(paths: Paths, metrics: MetricsReport) -> None:
    """Log the evaluation report (metrics with intervals, figures, model card) to the open run."""
    from lead_conversion_prediction.modeling.report import FIGURES
    from lead_conversion_prediction.modeling.tracking import log_report

    # The report's figures by name: never a stray file of the folder.
    log_report(metrics, [paths.figures_dir / name for name in FIGURES], paths.model_card)


def decide_champion(paths: Paths, params: Params, version: int, promote: bool) -> Decision:
    """Make ``version`` champion when there is none and it passes the first champion's checks,
    or on request when it is better, and no worse."""
    from lead_conversion_prediction.modeling.registry import champion_version
    from lead_conversion_prediction.modeling.registry_lock import registry_lock

    name = params.registry.model_name
    if champion_version(name) is not None and not promote:
        return _decide(paths, params, version, promote)  # the alias cannot move
    command = "lcp register --promote" if promote else "lcp register"
    with registry_lock(name, command):
        return _decide(paths, params, version, promote)


def _decide(paths: Paths, params: Params, version: int, promote: bool) -> Decision:
    from lead_conversion_prediction.csv_io import read_raw_leads
    from lead_conversion_prediction.modeling.promotion import Version, decide, evaluation_set_md5
    from lead_conversion_prediction.modeling.registry import (
        champion_version,
        get_version,
        move_champion,
        registration_state,
    )
    from lead_conversion_prediction.stages.promote import check_first, compare_on

    name = params.registry.model_name
    champion = champion_version(name)
    challenger = get_version(name, version)
    holdout = read_raw_leads(paths.test_split)
    decision = decide(
        Version.of(champion, registration_state(champion)) if champion is not None else None,
        Version.of(challenger, registration_state(challenger)),
        evaluation_set_md5(holdout),
        params.promotion.metric,
        promote,
        lambda: compare_on(holdout, params, challenger, champion),
        lambda: check_first(holdout, params, challenger),
    )
    if decision.promoted:
        move_champion(name, version, decision.reason)
    return decision
