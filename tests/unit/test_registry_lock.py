"""Racing clients of a shared store: the registry lock, the experiment both create, and the
dataset both log."""

from __future__ import annotations

from typing import Any

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import ErrorCode

from lead_conversion_prediction.modeling.registry_lock import _acquire, _me


class Store:
    """A registry whose creates answer with the given errors first, then succeed."""

    def __init__(self, *errors: str) -> None:
        self.errors = list(errors)
        self.created: list[str] = []

    def create_registered_model(self, name: str, **_: Any) -> None:
        if self.errors:
            raise MlflowException("refused", error_code=ErrorCode.Value(self.errors.pop(0)))
        self.created.append(name)

    def get_registered_model(self, name: str) -> Any:
        raise MlflowException(
            f"{name} not found", error_code=ErrorCode.Value("RESOURCE_DOES_NOT_EXIST")
        )


def test_a_lock_released_while_the_store_reads_it_again_is_taken_on_the_next_try() -> None:
    # MLflow's SQL store answers a taken name by reading the model again; if its holder
    # deleted it in between, the create fails with RESOURCE_DOES_NOT_EXIST.
    store = Store("RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST")
    _acquire(store, "lead_model.promotion-lock", _me("test"), wait=30)
    assert store.created == ["lead_model.promotion-lock"]


def test_another_refusal_of_the_store_stops_at_once() -> None:
    store = Store("PERMISSION_DENIED")
    with pytest.raises(MlflowException, match="refused"):
        _acquire(store, "lead_model.promotion-lock", _me("test"), wait=30)
    assert store.created == []


def test_an_experiment_another_run_creates_meanwhile_is_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    import mlflow
    from mlflow.entities import Experiment

    from lead_conversion_prediction.modeling.tracking import configure_tracking

    theirs = Experiment("7", "lead-conversion", "somewhere", "active")
    answers = iter([None, theirs])

    def taken(*_: Any, **__: Any) -> str:
        raise MlflowException("taken", error_code=ErrorCode.Value("RESOURCE_ALREADY_EXISTS"))

    monkeypatch.setattr(mlflow, "get_experiment_by_name", lambda name: next(answers))
    monkeypatch.setattr(mlflow, "create_experiment", taken)
    monkeypatch.setattr(mlflow, "set_experiment", lambda experiment_id: None)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert configure_tracking(uri, "lead-conversion") == "7"


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
