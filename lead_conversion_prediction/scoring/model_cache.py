"""What the workspace remembers of a registered model, so that scoring it again is quick.

Resolving ``models:/lead_model@champion`` costs MLflow's import and a few queries, and reading
the model's skops file imports every estimator scikit-learn has: seconds before the first lead
is scored. When the store is a local SQLite file, both are kept after a verified load:

- the resolution (the version, the digest recorded for it, the folder of its files), with the
  state of the registered model when it was read: a digest of the rows the store holds for
  it (the model, its aliases, versions and their tags, the runs and logged models of its
  versions) and of the store's schema revision, read with SQLite's own reader in a
  millisecond. A promotion, a rollback, a new version or a changed tag changes that state, and
  the URI is resolved again by MLflow; runs that are not a version's (a monitoring run, an
  experiment's) do not. The state is read before and after MLflow answers, and the answer kept
  only when both agree. MLflow stays the only reader of what the rows mean: a state the
  reader cannot take (another schema, a locked store) is none, and MLflow is asked;
- the Pipeline, as a joblib copy in a folder named by that digest, with a ``SHA256SUMS``: a
  version whose recorded digest names a kept copy is neither downloaded nor read with skops,
  from any store.

``lcp register``, ``promote`` and ``rollback`` keep what they changed (``scoring/model.py``,
:func:`~lead_conversion_prediction.scoring.model.remember_resolution`): the first scoring
after them asks MLflow nothing. Nothing is trusted on the strength of the cache alone: files a
store keeps locally are checked against the digest as on every load (a tampered store is
still refused), and the copy against its manifest before it is unpickled. Other stores (a
tracking server, PostgreSQL) are always asked which version an alias names, and what digest
it has.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lead_conversion_prediction.exceptions import ArtifactError

if TYPE_CHECKING:
    from lead_conversion_prediction.monitoring.profile import ReferenceProfile

RESOLVED_NAME = "resolved.json"
PIPELINE_NAME = "pipeline.joblib"
PROFILE_NAME = "reference_profile.json"
_SQLITE = "sqlite:///"
# Every row of a registered model (the name bound as ``?``), its aliases, its versions and their
# tags, its versions' runs' tags and logged models: what an answer about one of its versions can
# depend on. The model's own tags are left out: the registry lock writes one on every promotion.
_MODEL_ROWS = (
    "SELECT * FROM registered_models WHERE name = ?",
    "SELECT * FROM registered_model_aliases WHERE name = ?",
    "SELECT * FROM model_versions WHERE name = ?",
    "SELECT * FROM model_version_tags WHERE name = ?",
    "SELECT * FROM tags WHERE run_uuid IN (SELECT run_id FROM model_versions WHERE name = ?)",
    "SELECT * FROM logged_models WHERE 'models:/' || model_id IN "
    "(SELECT source FROM model_versions WHERE name = ?)",
)


@dataclass(frozen=True)
class Key:
    """A registry URI asked of a local SQLite store in the state ``state``."""

    store: str
    uri: str
    state: str


@dataclass(frozen=True)
class Resolution:
    """What the store answered: the version, its recorded digest, the folder of its files
    when the store keeps them as local files, and the SHA-256 of the workspace's artifact it
    was registered from ("" when unknown)."""

    provenance: str
    digest: str
    files: str
    workspace: str = ""


def registered_name(uri: str) -> str | None:
    """The registered model a ``models:/<name>@<alias>`` or ``models:/<name>/<version>`` URI
    names; None for another URI (a logged model's, a run's)."""
    rest = uri.removeprefix("models:/")
    if rest == uri or (rest.startswith("m-") and "/" not in rest and "@" not in rest):
        return None
    return rest.partition("@")[0] if "@" in rest else rest.partition("/")[0] or None


def registry_state(tracking_uri: str, uri: str) -> str | None:
    """The state of the registered model ``uri`` names in a local SQLite store (a digest of
    its rows), or None when it cannot be read so (another store, a registry elsewhere, another
    kind of URI, a store not created yet, another schema, or a store locked for a write)."""
    import hashlib
    import sqlite3
    from contextlib import closing

    registry = os.environ.get("MLFLOW_REGISTRY_URI")
    name = registered_name(uri)
    if not tracking_uri.startswith(_SQLITE) or registry not in (None, "", tracking_uri):
        return None
    database = Path(tracking_uri.removeprefix(_SQLITE))
    if name is None or not database.is_file():
        return None
    try:
        read_only = f"{database.resolve().as_uri()}?mode=ro"
        with closing(sqlite3.connect(read_only, uri=True, timeout=0.5)) as store:
            store.execute("BEGIN")  # one snapshot for every query
            rows = [repr(store.execute("SELECT * FROM alembic_version").fetchall())]
            for query in _MODEL_ROWS:
                rows.append(repr(sorted(map(repr, store.execute(query, (name,))))))
    except sqlite3.Error:
        return None
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


def _kept(cache: Path) -> list[tuple[Key, Resolution]]:
    try:
        kept = json.loads((cache / RESOLVED_NAME).read_text(encoding="utf-8"))
        return [(Key(**entry["key"]), Resolution(**entry["resolution"])) for entry in kept]
    except (OSError, ValueError, TypeError, KeyError):
        return []  # none yet, or unreadable: MLflow resolves the URI


def remembered(cache: Path, key: Key) -> Resolution | None:
    """The resolution kept for ``key`` (the store in the same state), if any."""
    return next((resolution for kept, resolution in _kept(cache) if kept == key), None)


def remember(cache: Path, key: Key, resolution: Resolution) -> None:
    """Keep ``resolution`` for ``key``, in place of any other of the same store and URI."""
    from lead_conversion_prediction.utils.storage import write_json

    entries = [
        {"key": asdict(kept), "resolution": asdict(answer)}
        for kept, answer in _kept(cache)
        if (kept.store, kept.uri) != (key.store, key.uri)
    ]
    entries.append({"key": asdict(key), "resolution": asdict(resolution)})
    cache.mkdir(parents=True, exist_ok=True)
    write_json(cache / RESOLVED_NAME, entries)


def check_files(uri: str, resolution: Resolution) -> None:
    """Check a model's files, kept as local files by its store, against its recorded digest."""
    from lead_conversion_prediction.scoring.pyfunc import model_digest

    folder = Path(resolution.files)
    if not folder.is_dir() or model_digest(folder) != resolution.digest:
        raise ArtifactError(f"{uri}: its files differ from the digest recorded when logged")


def has_copy(cache: Path, digest: str, with_profile: bool) -> bool:
    """True when a copy is kept for ``digest`` (with its reference profile, if asked)."""
    folder = cache / "models" / digest
    wanted = (PIPELINE_NAME, PROFILE_NAME) if with_profile else (PIPELINE_NAME,)
    return all((folder / name).is_file() for name in wanted)


def load_copy(
    cache: Path, digest: str, with_profile: bool
) -> tuple[Any, ReferenceProfile | None] | None:
    """The Pipeline (and reference profile) kept for ``digest``, verified; None if not kept."""
    from lead_conversion_prediction.monitoring.profile import ReferenceProfile
    from lead_conversion_prediction.utils.storage import load_artifact, verify_artifact

    folder = cache / "models" / digest
    if not has_copy(cache, digest, with_profile):
        return None
    try:
        model = load_artifact(folder / PIPELINE_NAME)
        profile = verify_artifact(folder / PROFILE_NAME) if with_profile else None
    except ArtifactError as error:  # refused, as any changed file: the user says what to do
        raise ArtifactError(f"{error} (a kept copy: delete {cache} to read it again)") from None
    if profile is None:
        return model, None
    return model, ReferenceProfile.model_validate_json(profile)


def keep_copy(cache: Path, digest: str, model: Any, profile: ReferenceProfile | None) -> None:
    """Keep a verified Pipeline (and its profile) under ``digest``, as one artifact set."""
    from lead_conversion_prediction.utils.storage import artifact_set

    with artifact_set(cache / "models" / digest) as files:
        files.save(model, PIPELINE_NAME)
        if profile is not None:
            files.path(PROFILE_NAME).write_text(profile.model_dump_json(), encoding="utf-8")
