"""What scoring keeps of registered models: kept only for a registered model of a local
SQLite store, found only while its rows are unchanged, and checked before it is used."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from lead_conversion_prediction.exceptions import ArtifactError
from lead_conversion_prediction.scoring import model_cache
from lead_conversion_prediction.scoring.model_cache import Key, Resolution
from lead_conversion_prediction.scoring.pyfunc import model_digest

# The tables of a registered model in MLflow's SQLite store, as few columns as the test needs.
TABLES = {
    "alembic_version": "version_num",
    "registered_models": "name, last_updated_time",
    "registered_model_tags": "key, value, name",
    "registered_model_aliases": "alias, version, name",
    "model_versions": "name, version, source, run_id",
    "model_version_tags": "key, value, name, version",
    "tags": "key, value, run_uuid",
    "logged_models": "model_id, artifact_location",
}


def make_store(folder: Path) -> tuple[str, sqlite3.Connection]:
    """A local store holding lead_model version 1 (run r1, logged model m-1) as champion."""
    database = folder / "mlflow.db"
    store = sqlite3.connect(database, isolation_level=None)
    for table, columns in TABLES.items():
        store.execute(f"CREATE TABLE {table} ({columns})")
    store.execute("INSERT INTO alembic_version VALUES ('dc11669786a5')")
    store.execute("INSERT INTO registered_models VALUES ('lead_model', 1)")
    store.execute("INSERT INTO model_versions VALUES ('lead_model', 1, 'models:/m-1', 'r1')")
    store.execute("INSERT INTO registered_model_aliases VALUES ('champion', 1, 'lead_model')")
    store.execute("INSERT INTO model_version_tags VALUES ('model_sha256', 'ab', 'lead_model', 1)")
    store.execute("INSERT INTO tags VALUES ('model_sha256', 'ab', 'r1')")
    store.execute("INSERT INTO logged_models VALUES ('m-1', 'file:///models/m-1')")
    return f"sqlite:///{database}", store


CHAMPION = "models:/lead_model@champion"


def test_only_a_registered_model_of_a_local_sqlite_store_has_a_state_to_keep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    store, _ = make_store(tmp_path)
    assert model_cache.registry_state(store, CHAMPION) is not None
    assert model_cache.registry_state(store, "models:/lead_model/1") is not None
    assert model_cache.registry_state(store, "models:/m-1") is None, "a logged model's"
    assert model_cache.registry_state(store, "runs:/r1/model") is None
    assert model_cache.registry_state("http://127.0.0.1:5000", CHAMPION) is None
    assert model_cache.registry_state("postgresql://u@127.0.0.1/db", CHAMPION) is None
    assert model_cache.registry_state(f"sqlite:///{tmp_path / 'none.db'}", CHAMPION) is None
    assert not (tmp_path / "none.db").exists(), "a store not created yet is left so"
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "http://127.0.0.1:5000")
    assert model_cache.registry_state(store, CHAMPION) is None, "the registry is elsewhere"


def test_a_store_of_another_schema_or_locked_for_a_write_has_no_state(tmp_path: Path) -> None:
    store, db = make_store(tmp_path)
    db.execute("BEGIN EXCLUSIVE")
    assert model_cache.registry_state(store, CHAMPION) is None, "locked: MLflow is asked"
    db.execute("ROLLBACK")
    assert model_cache.registry_state(store, CHAMPION) is not None
    db.execute("DROP TABLE registered_model_aliases")
    assert model_cache.registry_state(store, CHAMPION) is None, "another schema"


@pytest.mark.parametrize(
    "write",
    [
        "UPDATE registered_model_aliases SET version = 2",
        "INSERT INTO model_versions VALUES ('lead_model', 2, 'models:/m-2', 'r2')",
        "UPDATE model_version_tags SET value = 'cd'",
        "UPDATE tags SET value = 'cd' WHERE run_uuid = 'r1'",
        "UPDATE logged_models SET artifact_location = 'file:///elsewhere'",
        "UPDATE registered_models SET last_updated_time = 2",
        "UPDATE alembic_version SET version_num = 'a-later-schema'",
    ],
)
def test_a_write_to_the_registered_model_changes_its_state(tmp_path: Path, write: str) -> None:
    store, db = make_store(tmp_path)
    before = model_cache.registry_state(store, CHAMPION)
    db.execute(write)
    assert model_cache.registry_state(store, CHAMPION) not in (None, before)


def test_runs_models_and_model_tags_that_are_not_its_versions_leave_its_state(
    tmp_path: Path,
) -> None:
    store, db = make_store(tmp_path)
    before = model_cache.registry_state(store, CHAMPION)
    db.execute("INSERT INTO tags VALUES ('mlflow.runName', 'monitoring', 'r9')")
    db.execute("INSERT INTO registered_model_tags VALUES ('lcp.lock.token', 'x', 'lead_model')")
    db.execute("INSERT INTO registered_models VALUES ('other_model', 5)")
    db.execute("INSERT INTO model_versions VALUES ('other_model', 1, 'models:/m-9', 'r9')")
    db.execute("INSERT INTO logged_models VALUES ('m-9', 'file:///models/m-9')")
    assert model_cache.registry_state(store, CHAMPION) == before


def test_a_resolution_is_found_for_the_same_store_uri_and_state_only(tmp_path: Path) -> None:
    store, _ = make_store(tmp_path)
    state = model_cache.registry_state(store, CHAMPION)
    assert state is not None
    key = Key(store, CHAMPION, state)
    kept = Resolution("models:/lead_model/2", "ab" * 32, str(tmp_path))
    model_cache.remember(tmp_path / "cache", key, kept)
    assert model_cache.remembered(tmp_path / "cache", key) == kept
    other_state = Key(store, key.uri, "0" * 64)
    assert model_cache.remembered(tmp_path / "cache", other_state) is None
    assert model_cache.remembered(tmp_path / "cache", Key(store, "models:/x/1", state)) is None

    newer = Resolution("models:/lead_model/3", "cd" * 32, str(tmp_path))
    model_cache.remember(tmp_path / "cache", other_state, newer)
    assert model_cache.remembered(tmp_path / "cache", key) is None, "one entry per store and URI"
    assert model_cache.remembered(tmp_path / "cache", other_state) == newer


def test_an_unreadable_record_is_no_resolution(tmp_path: Path) -> None:
    (tmp_path / model_cache.RESOLVED_NAME).write_text("{not json")
    assert model_cache.remembered(tmp_path, Key("sqlite:///x", "models:/m/1", "")) is None


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
    hint = f"checksum differs .*; the file is corrupt \\(a kept copy: delete {tmp_path} to read"
    with pytest.raises(ArtifactError, match=hint):
        model_cache.load_copy(tmp_path, "ef" * 32, with_profile=False)


def test_the_workspace_file_a_version_was_registered_from_is_read_and_kept_as_its_copy(
    tmp_path: Path,
) -> None:
    import numpy as np

    from lead_conversion_prediction.scoring.model import copy_from_workspace
    from lead_conversion_prediction.utils.storage import file_digest
    from tests.support import save_verified

    X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0]])
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, [0, 0, 1, 1])
    path = save_verified(model, tmp_path / "models" / "lead_model.joblib")
    cache, digest = tmp_path / "cache", "ab" * 32
    other = Resolution("models:/lead_model/2", digest, "", workspace="cd" * 32)
    assert copy_from_workspace(cache, other, path, with_profile=False) is None, "another file"
    unknown = Resolution("models:/lead_model/2", digest, "")
    assert copy_from_workspace(cache, unknown, path, with_profile=False) is None
    assert model_cache.load_copy(cache, digest, with_profile=False) is None

    registered = Resolution("models:/lead_model/2", digest, "", workspace=file_digest(path))
    assert copy_from_workspace(cache, registered, path, with_profile=True) is None, "no profile"
    loaded = copy_from_workspace(cache, registered, path, with_profile=False)
    assert loaded is not None and loaded.provenance == "models:/lead_model/2"
    copy = model_cache.load_copy(cache, digest, with_profile=False)
    assert copy is not None
    np.testing.assert_array_equal(copy[0].predict_proba(X), model.predict_proba(X))

    path.write_bytes(path.read_bytes() + b"\0")  # changed since its checksums were written
    with pytest.raises(ArtifactError, match="checksum differs"):
        copy_from_workspace(
            tmp_path / "cache2",
            Resolution("models:/lead_model/2", digest, "", workspace=file_digest(path)),
            path,
            with_profile=False,
        )


def test_a_store_locked_by_a_writer_is_told_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLflow's SQLite store, locked by another process's write for longer than its wait,
    fails in SQLAlchemy's own error: one line naming the store, not a traceback."""
    from sqlalchemy import create_engine, text

    from lead_conversion_prediction.cli.errors import one_line

    database = tmp_path / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{database}")
    writer = sqlite3.connect(database, isolation_level=None)
    writer.execute("CREATE TABLE runs (id)")
    writer.execute("BEGIN EXCLUSIVE")
    engine = create_engine(f"sqlite:///{database}", connect_args={"timeout": 0.1})
    with pytest.raises(Exception) as raised, engine.connect() as reader:
        reader.execute(text("SELECT * FROM runs"))
    assert one_line(raised.value) == [
        f"error: sqlite:///{database}: the store's database refused the query "
        "(database is locked); try again"
    ]
