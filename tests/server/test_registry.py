"""The registry's rules, on a real MLflow store and a small project run stage by stage.

Registration never moves the champion but for the first version that beats the base rate
and keeps the course contract; promotion compares on the same evaluation set and needs a
model better, and no worse; a rollback goes back one step along the champions' line; an
identical model is not registered twice; every version carries its lineage.

Each rule runs against a SQLite file (``tracking_store``), and, where the server's own path
differs, against the team's tracking server on PostgreSQL with basic-auth too: a version's
tags (given at its creation there), and promotion and rollback. Rules that only read tags, or
that other server tests already cross (the first champion and a challenger, and the identical
model found again, in ``test_registry_auth.py`` and ``test_registry_race.py``), run on SQLite
alone (``ONE_STORE``) to keep the suite's time down.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from lead_conversion_prediction.config import Params, Paths, load_params
from lead_conversion_prediction.exceptions import PromotionRefusedError, RegistryError
from lead_conversion_prediction.modeling.artifacts import RegistryRecord
from lead_conversion_prediction.modeling.registry import (
    challenger_version,
    champion_version,
    history,
    move_champion,
)
from lead_conversion_prediction.stages.promote import (
    champion_report,
    run_promote,
    run_rollback,
)
from lead_conversion_prediction.stages.register import run_register
from tests.support import REGISTRY_CANDIDATES, make_raw_leads, new_project, run_stage

pytestmark = pytest.mark.long(seconds=200)

NAME = "lead_model"
ONE_STORE = pytest.mark.parametrize("tracking_store", ["sqlite"], indirect=True)


def champion() -> Any:
    version = champion_version(NAME)
    assert version is not None, "there is a champion"
    return version


def scored_with(registry: Registry) -> tuple[int, bool]:
    """The version ``lcp predict`` scores with now, and whether the workspace knew it without
    asking MLflow (never for the tracking server: it is asked every time)."""
    from lead_conversion_prediction.scoring import model_cache
    from lead_conversion_prediction.scoring.model import load_registered_model

    uri, cache = f"models:/{NAME}@champion", registry.paths.cache_dir
    state = model_cache.registry_state(registry.tracking_uri, uri)
    key = model_cache.Key(registry.tracking_uri, uri, state or "")
    known = state is not None and model_cache.remembered(cache, key) is not None
    loaded = load_registered_model(uri, cache=cache)
    return int(loaded.provenance.rsplit("/", 1)[1]), known


BEFORE_REGISTER = ["data", "features", "train", "evaluate", "validate"]


@dataclass
class Registry:
    """A small project and its real MLflow store."""

    root: Path
    tracking_uri: str

    @property
    def paths(self) -> Paths:
        return Paths(self.root)

    def params(self) -> Params:
        return load_params(self.root / "params.yaml")

    def change(self, **values: Any) -> None:
        """Change dotted keys of params.yaml, as `dvc exp run -S` would."""
        raw = yaml.safe_load((self.root / "params.yaml").read_text())
        for dotted, value in values.items():
            *parents, key = dotted.split("__")
            section = raw
            for parent in parents:
                section = section[parent]
            section[key] = value
        (self.root / "params.yaml").write_text(yaml.safe_dump(raw))

    def run(self, *stages: str) -> None:
        for stage in stages or BEFORE_REGISTER:
            run_stage(stage, self.root, self.params(), self.tracking_uri)

    def register(self, promote: bool = False) -> RegistryRecord:
        return run_register(self.paths, self.params(), self.tracking_uri, promote)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small project with every stage before ``register`` run: made once for the module
    (those stages write files only), copied for each test."""
    root = new_project(tmp_path_factory.mktemp("built") / "project", REGISTRY_CANDIDATES)
    raw = make_raw_leads(n=600, seed=11)
    # A learnable outcome: more purchases and visits, more conversions.
    score = raw["purchases"] / 10 + raw["n_visits"] / 20
    raw["lead_indicator"] = (score > score.median()).astype(float)
    raw.to_csv(root / "data" / "raw" / "raw_data.csv", index=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("LCP_ROOT", raising=False)
        Registry(root, "").run()
    return root


@pytest.fixture
def registry(
    built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tracking_store: str
) -> Iterator[Registry]:
    import mlflow

    root = Path(shutil.copytree(built, tmp_path / "project", symlinks=True))
    monkeypatch.delenv("LCP_ROOT", raising=False)
    yield Registry(root, tracking_store)
    mlflow.set_tracking_uri("")  # back to what the environment says


@ONE_STORE
def test_the_first_validated_version_is_champion_and_later_ones_challengers(
    registry: Registry,
) -> None:
    first = registry.register()
    assert (first.version, first.new_version, first.promoted, first.champion) == (1, True, True, 1)
    registry.change(train__random_state=7)
    registry.run("train", "evaluate", "validate")
    second = registry.register()
    assert (second.version, second.promoted, second.champion) == (2, False, 1)
    assert "the champion stays version 1" in second.decision
    challenger = challenger_version(NAME)
    assert challenger is not None and int(challenger.version) == 2
    assert RegistryRecord.read(registry.paths.registry_record) == second


@ONE_STORE
def test_an_identical_model_is_not_registered_again(registry: Registry) -> None:
    registry.register()
    again = registry.register()
    assert (again.version, again.new_version, again.champion) == (1, False, 1)


@ONE_STORE
def test_the_version_is_tagged_with_this_runs_evaluation_written_while_it_logs(
    registry: Registry,
) -> None:
    """In ``lcp pipeline`` the evaluate stage writes its report while register logs the
    candidates: register reads the report only once told it is written."""
    from lead_conversion_prediction.modeling.artifacts import MetricsReport
    from lead_conversion_prediction.stages.register import registering

    paths = registry.paths
    fresh = MetricsReport.read(paths.evaluation)
    stale = fresh.model_copy(update={"holdout": {**fresh.holdout, "roc_auc": 0.123456}})
    stale.write(paths.evaluation)  # what an earlier run left

    def evaluated() -> None:
        fresh.write(paths.evaluation)

    with registering(paths, registry.params(), registry.tracking_uri, evaluated=evaluated):
        pass
    (version,) = registry_versions()
    assert float(version.tags["holdout.roc_auc"]) == pytest.approx(fresh.holdout["roc_auc"])


def registry_versions() -> list[Any]:
    from mlflow import MlflowClient

    return list(MlflowClient().search_model_versions(f"name = '{NAME}'"))


def test_every_version_carries_its_lineage_and_metrics(registry: Registry) -> None:
    registry.register()
    version = champion()
    tags = version.tags
    for key in (
        "git_commit", "git_dirty", "raw_md5", "params_md5", "evaluation_set_md5",
        "selection_metric", "promotion_metric", "candidate", "lead_model_sha256",
        "holdout.roc_auc", "holdout.roc_auc.low", "holdout.roc_auc.high", "validation_accuracy",
    ):  # fmt: skip
        assert tags.get(key), key
    assert version.description.startswith(f"{tags['candidate']}: holdout roc_auc ")
    from mlflow import MlflowClient

    run = MlflowClient().get_run(tags["run_id"])
    assert run.info.run_name == tags["candidate"]
    parent = MlflowClient().get_run(run.data.tags["mlflow.parentRunId"])
    assert parent.inputs is not None
    assert {d.dataset.name for d in parent.inputs.dataset_inputs} == {"train", "holdout"}


def register_weak_version(registry: Registry, promote: bool = False) -> int:
    """Register, as the challenger, a model trained on shuffled outcomes (on the release path
    with ``promote``)."""
    raw_path = registry.root / "data" / "raw" / "raw_data.csv"
    saved = raw_path.read_bytes()
    processed = registry.root / "data" / "processed"
    kept = shutil.copytree(processed, registry.root.parent / "processed-kept")
    leads = registry.root / "data" / "interim" / "leads.csv"
    import pandas as pd

    frame = pd.read_csv(leads)
    frame["lead_indicator"] = np.random.default_rng(3).permutation(frame["lead_indicator"])
    shutil.rmtree(processed)
    frame.to_csv(leads, index=False)
    registry.run("features", "train")
    # The weak model is evaluated on the real holdout: the same evaluation set.
    shutil.rmtree(processed)
    shutil.copytree(kept, processed)
    registry.run("evaluate", "validate")
    record = registry.register(promote)
    raw_path.write_bytes(saved)
    return record.version


def test_promotion_needs_a_real_lead_and_a_rollback_goes_back(registry: Registry) -> None:
    registry.register()
    weak = register_weak_version(registry)
    with pytest.raises(PromotionRefusedError, match=f"version {weak} is worse than version 1"):
        run_promote(registry.paths, registry.params(), version=weak)
    assert int(champion().version) == 1
    local = registry.tracking_uri.startswith("sqlite:")
    assert scored_with(registry) == (1, local), "register keeps the champion's resolution"

    move_champion(NAME, weak, "a bad champion, for the test")  # a move lcp did not see
    assert scored_with(registry) == (weak, False), "the registered model's rows changed"
    promoted = run_promote(registry.paths, registry.params(), version=1)
    assert promoted.version == 1 and promoted.previous == weak
    assert promoted.reason.startswith("promoted version 1: it leads on ")
    assert "roc_auc" in promoted.reason and "log_loss" in promoted.reason
    assert scored_with(registry) == (1, local)

    back = run_rollback(registry.paths, registry.params())
    assert (back.version, back.previous) == (weak, 1)
    assert scored_with(registry) == (weak, local)
    assert [move.version for move in history(NAME)] == [1, weak, 1, weak]
    report = champion_report(registry.params())
    assert report[0].startswith(f"champion: models:/{NAME}/{weak} (")
    assert report[-1].endswith(f"version {weak} again (rollback from version 1)")


@ONE_STORE
def test_promotion_is_refused_on_another_evaluation_set(registry: Registry) -> None:
    registry.register()
    registry.change(split__random_state=7)
    registry.run("features", "train", "evaluate", "validate")
    other = registry.register()
    with pytest.raises(PromotionRefusedError, match="another evaluation set"):
        run_promote(registry.paths, registry.params(), version=other.version)
    assert int(champion().version) == 1


@ONE_STORE
def test_promotion_is_refused_for_another_promotion_metric(registry: Registry) -> None:
    registry.register()
    registry.change(train__random_state=7)
    registry.run("train", "evaluate", "validate")
    other = registry.register()
    registry.change(promotion__metric="pr_auc")
    with pytest.raises(PromotionRefusedError, match="promotion metric 'roc_auc', not 'pr_auc'"):
        run_promote(registry.paths, registry.params(), version=other.version)


@ONE_STORE
def test_a_first_version_that_does_not_beat_the_base_rate_is_not_made_champion(
    registry: Registry,
) -> None:
    weak = register_weak_version(registry)
    record = RegistryRecord.read(registry.paths.registry_record)
    assert (record.version, record.promoted, record.champion) == (weak, False, None)
    assert "cannot be the first champion: it does not beat the base-rate model" in record.decision
    with pytest.raises(PromotionRefusedError, match="does not beat the base-rate model"):
        run_promote(registry.paths, registry.params(), version=weak)
    assert champion_version(NAME) is None
    registry.run()  # the real outcomes again: a model that learnt them
    learnt = registry.register()
    assert (learnt.version, learnt.promoted, learnt.champion) == (weak + 1, True, weak + 1)
    assert f"version {learnt.version} is the first champion: it beats" in learnt.decision
    assert "the course contract holds" in learnt.decision
    assert history(NAME)[-1].reason == learnt.decision


@ONE_STORE
def test_the_release_path_promotes_only_a_better_model(registry: Registry) -> None:
    registry.register()
    weak = register_weak_version(registry, promote=True)
    released = RegistryRecord.read(registry.paths.registry_record)
    assert (released.version, released.promoted, released.champion) == (weak, False, 1)
    assert f"refused: version {weak} is worse than version 1" in released.decision


@ONE_STORE
def test_a_rollback_without_history_is_refused(registry: Registry) -> None:
    registry.register()
    with pytest.raises(RegistryError, match="is the first champion: there is no earlier"):
        run_rollback(registry.paths, registry.params())
