"""What scoring keeps of registered models: kept only for a settled local store, found only in
the same state, and checked before it is used."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from lead_conversion_prediction.exceptions import ArtifactError
from lead_conversion_prediction.scoring import model_cache
from lead_conversion_prediction.scoring.model_cache import Key, Resolution
from lead_conversion_prediction.scoring.pyfunc import model_digest


def settled_store(folder: Path, seconds_ago: float = 60) -> str:
    database = folder / "mlflow.db"
    database.write_bytes(b"a store")
    past = time.time() - seconds_ago
    os.utime(database, (past, past))
    return f"sqlite:///{database}"


def test_only_a_settled_local_sqlite_store_has_a_state_to_keep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    store = settled_store(tmp_path)
    assert model_cache.store_state(store) is not None
    assert model_cache.store_state("http://127.0.0.1:5000") is None
    assert model_cache.store_state("postgresql://u@127.0.0.1/db") is None
    assert model_cache.store_state(f"sqlite:///{tmp_path / 'none.db'}") is None
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "http://127.0.0.1:5000")
    assert model_cache.store_state(store) is None, "the registry is elsewhere"
    monkeypatch.delenv("MLFLOW_REGISTRY_URI")
    (tmp_path / "mlflow.db").write_bytes(b"a write just now")
    assert model_cache.store_state(store) is None, "written within the clock's reach"


def test_any_write_to_the_store_or_its_journal_changes_its_state(tmp_path: Path) -> None:
    store = settled_store(tmp_path)
    before = model_cache.store_state(store)
    journal = tmp_path / "mlflow.db-wal"
    journal.write_bytes(b"a page")
    past = time.time() - 30
    os.utime(journal, (past, past))
    assert model_cache.store_state(store) not in (None, before)
    settled_store(tmp_path, seconds_ago=90)  # rewritten, even with an older time
    assert model_cache.store_state(store) not in (None, before)


def test_a_resolution_is_found_for_the_same_store_uri_and_state_only(tmp_path: Path) -> None:
    store = settled_store(tmp_path)
    state = model_cache.store_state(store)
    assert state is not None
    key = Key(store, "models:/lead_model@champion", state)
    kept = Resolution("models:/lead_model/2", "ab" * 32, str(tmp_path))
    model_cache.remember(tmp_path / "cache", key, kept)
    assert model_cache.remembered(tmp_path / "cache", key) == kept
    other_state = Key(store, key.uri, [[1, 2, 3, 4], [], [], []])
    assert model_cache.remembered(tmp_path / "cache", other_state) is None
    assert model_cache.remembered(tmp_path / "cache", Key(store, "models:/x/1", state)) is None

    newer = Resolution("models:/lead_model/3", "cd" * 32, str(tmp_path))
    model_cache.remember(tmp_path / "cache", other_state, newer)
    assert model_cache.remembered(tmp_path / "cache", key) is None, "one entry per store and URI"
    assert model_cache.remembered(tmp_path / "cache", other_state) == newer


def test_an_unreadable_record_is_no_resolution(tmp_path: Path) -> None:
    (tmp_path / model_cache.RESOLVED_NAME).write_text("{not json")
    assert model_cache.remembered(tmp_path, Key("sqlite:///x", "models:/m/1", [])) is None


def test_stored_files_that_differ_from_the_recorded_digest_are_refused(tmp_path: Path) -> None:
    files = tmp_path / "model"
    files.mkdir()
    (files / "MLmodel").write_text("flavors: {}\n")
    uri = "models:/lead_model@champion"
    recorded = Resolution("models:/lead_model/1", model_digest(files), str(files))
    model_cache.check_files(uri, recorded)
    (files / "MLmodel").write_text("flavors: {changed: 1}\n")
    with pytest.raises(ArtifactError, match=f"^{uri}: its files differ from the digest recorded"):
        model_cache.check_files(uri, recorded)


def test_a_kept_copy_scores_as_the_model_and_a_changed_copy_is_refused(tmp_path: Path) -> None:
    import numpy as np

    X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0]])
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, [0, 0, 1, 1])
    assert model_cache.load_copy(tmp_path, "ef" * 32, with_profile=False) is None
    model_cache.keep_copy(tmp_path, "ef" * 32, model, None)
    copy = model_cache.load_copy(tmp_path, "ef" * 32, with_profile=False)
    assert copy is not None and copy[1] is None
    np.testing.assert_array_equal(copy[0].predict_proba(X), model.predict_proba(X))
    assert model_cache.load_copy(tmp_path, "ef" * 32, with_profile=True) is None, "no profile kept"

    kept = tmp_path / "models" / ("ef" * 32) / model_cache.PIPELINE_NAME
    kept.write_bytes(kept.read_bytes() + b"\0")
    with pytest.raises(ArtifactError, match="checksum differs"):
        model_cache.load_copy(tmp_path, "ef" * 32, with_profile=False)
