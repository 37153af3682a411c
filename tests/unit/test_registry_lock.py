"""Racing clients of a shared store: the registry lock, the experiment both create, and the
dataset both log."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from types import SimpleNamespace
from typing import Any

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import ErrorCode

from lead_conversion_prediction.exceptions import RegistryLockedError
from lead_conversion_prediction.modeling import registry_lock
from lead_conversion_prediction.modeling.registry_lock import (
    HOLDER_TAG,
    PROOF_TAG,
    Holder,
    _acquire,
    _me,
)
from lead_conversion_prediction.modeling.registry_lock import registry_lock as hold_lock


def refusal(code: str) -> MlflowException:
    return MlflowException("refused", error_code=ErrorCode.Value(code))


class Store:
    """A registry whose creates answer with the given errors first, then succeed. ``models``
    holds the registered models' tags; ``lead_model`` is not registered unless given."""

    def __init__(self, *errors: str, models: dict[str, dict[str, str]] | None = None) -> None:
        self.errors = list(errors)
        self.created: list[str] = []
        self.models = dict(models or {})
        self.may_tag = True

    def create_registered_model(self, name: str, tags: dict[str, str], **_: Any) -> None:
        if self.errors:
            raise refusal(self.errors.pop(0))
        if name in self.models:
            raise refusal("RESOURCE_ALREADY_EXISTS")
        self.created.append(name)
        self.models[name] = dict(tags)

    def get_registered_model(self, name: str) -> Any:
        if name not in self.models:
            raise refusal("RESOURCE_DOES_NOT_EXIST")
        return SimpleNamespace(tags=self.models[name])

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        if name not in self.models:
            raise refusal("RESOURCE_DOES_NOT_EXIST")
        if not self.may_tag:
            raise refusal("PERMISSION_DENIED")
        self.models[name][key] = value

    def delete_registered_model(self, name: str) -> None:
        self.models.pop(name)


def squatted(proof: str | None) -> Store:
    """A store where another user holds the lock; the model carries ``proof``, if any."""
    holder = Holder("reader", "elsewhere", 1, "lcp register", "2026-01-01T00:00:00", "t0k3n")
    tags = {} if proof is None else {PROOF_TAG: proof}
    lock = {HOLDER_TAG: json.dumps(asdict(holder))}
    return Store(models={"lead_model": tags, "lead_model.promotion-lock": lock})


def test_a_lock_released_while_the_store_reads_it_again_is_taken_on_the_next_try() -> None:
    # MLflow's SQL store answers a taken name by reading the model again; if its holder
    # deleted it in between, the create fails with RESOURCE_DOES_NOT_EXIST.
    store = Store("RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST")
    assert _acquire(store, "lead_model", _me("test"), wait=30)
    assert store.created == ["lead_model.promotion-lock"]


def test_another_refusal_of_the_store_stops_at_once() -> None:
    store = Store("PERMISSION_DENIED")
    with pytest.raises(MlflowException, match="refused"):
        _acquire(store, "lead_model", _me("test"), wait=30)
    assert store.created == []


def test_a_holder_writes_its_token_on_the_model_as_proof() -> None:
    store = Store(models={"lead_model": {}})
    me = _me("test")
    assert _acquire(store, "lead_model", me, wait=30)
    assert store.models["lead_model"][PROOF_TAG] == me.token


def test_a_holder_that_may_not_change_the_model_gives_the_lock_back_and_fails() -> None:
    store = Store(models={"lead_model": {}})
    store.may_tag = False
    with pytest.raises(MlflowException, match="refused"):
        _acquire(store, "lead_model", _me("test"), wait=30)
    assert "lead_model.promotion-lock" not in store.models


def test_a_lock_without_proof_is_ignored_and_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    from loguru import logger

    monkeypatch.setattr(registry_lock, "PROOF_SECONDS", 0.3)
    store = squatted(proof=None)
    lines: list[str] = []
    handler = logger.add(lambda message: lines.append(str(message)), level="WARNING")
    try:
        started = time.monotonic()
        assert not _acquire(store, "lead_model", _me("test"), wait=30)
    finally:
        logger.remove(handler)
    assert time.monotonic() - started < 10
    assert any("not taken by a user who may change 'lead_model': ignored" in x for x in lines)
    assert store.created == []


def test_a_proven_lock_is_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry_lock, "PROOF_SECONDS", 0.1)
    store = squatted(proof="t0k3n")
    with pytest.raises(RegistryLockedError, match="held by reader@elsewhere"):
        _acquire(store, "lead_model", _me("test"), wait=0.5)


def test_a_lock_of_a_model_not_registered_yet_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry_lock, "PROOF_SECONDS", 0.1)
    store = squatted(proof=None)
    del store.models["lead_model"]
    with pytest.raises(RegistryLockedError):
        _acquire(store, "lead_model", _me("test"), wait=0.5)


def test_an_ignored_lock_is_left_alone_at_the_end(monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    monkeypatch.setattr(registry_lock, "PROOF_SECONDS", 0.1)
    store = squatted(proof=None)
    monkeypatch.setattr(mlflow, "MlflowClient", lambda: store)
    with hold_lock("lead_model", "test", wait=30):
        pass
    assert "lead_model.promotion-lock" in store.models


def test_an_experiment_another_run_creates_meanwhile_is_used(tmp_path: Any) -> None:
    from mlflow.entities import Experiment

    from lead_conversion_prediction.modeling.tracking import open_experiment

    theirs = Experiment("7", "lead-conversion", "somewhere", "active")
    answers = iter([None, theirs])

    class Store:  # the client of a shared store where another run wins the race
        def get_experiment_by_name(self, name: str) -> Experiment | None:
            return next(answers)

        def create_experiment(self, *_: Any, **__: Any) -> str:
            raise MlflowException("taken", error_code=ErrorCode.Value("RESOURCE_ALREADY_EXISTS"))

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert open_experiment(Store(), uri, "lead-conversion") == "7"


def test_rows_another_run_logs_at_the_same_moment_are_linked_on_a_second_try(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    import mlflow
    import pandas as pd

    from lead_conversion_prediction.config import Paths
    from lead_conversion_prediction.modeling.tracking import log_datasets

    linked: list[str] = []
    broken = iter([True])

    def log_input(dataset: Any, context: str) -> None:
        if next(broken, False):
            raise MlflowException('duplicate key value violates unique constraint "dataset_pk"')
        linked.append(dataset.name)

    monkeypatch.setattr(mlflow, "log_input", log_input)
    rows = pd.DataFrame({"date_part": ["2024-01-02"], "lead_indicator": [1.0]})
    log_datasets(rows, rows, Paths(tmp_path))
    assert linked == ["train", "holdout"]
