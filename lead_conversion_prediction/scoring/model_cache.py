"""What the workspace remembers of a registered model, so that scoring it again is quick.

Resolving ``models:/lead_model@champion`` costs MLflow's import and a few queries, and reading
the model's skops file imports every estimator scikit-learn has: seconds before the first lead
is scored. When the store is a local SQLite file, both are kept after a verified load:

- the resolution (the version, the digest recorded for it, the folder of its files), with the
  store's state when it was read: the database file's identity, size and times, and its
  journal's. Any write to the store (a promotion, a rollback, a new version, a logged run)
  changes that state, and the URI is resolved again by MLflow. A state read less than
  ``SETTLED_SECONDS`` after the store's last modification is never kept: a later write could
  fall in the same tick of the file system's clock (git's "racily clean" entries);
- the Pipeline, as a joblib copy in a folder named by that digest, with a ``SHA256SUMS``: a
  version whose recorded digest names a kept copy is neither downloaded nor read with skops,
  from any store.

Nothing is trusted on the strength of the cache alone: files a store keeps locally are checked
against the digest as on every load (a tampered store is still refused), and the copy against
its manifest before it is unpickled. Other stores (a tracking server, PostgreSQL) are always
asked which version an alias names, and what digest it has.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lead_conversion_prediction.exceptions import ArtifactError

if TYPE_CHECKING:
    from lead_conversion_prediction.monitoring.profile import ReferenceProfile

SETTLED_SECONDS = 2.0  # coarser than any file system's clock tick for modification times
RESOLVED_NAME = "resolved.json"
PIPELINE_NAME = "pipeline.joblib"
PROFILE_NAME = "reference_profile.json"
_SQLITE = "sqlite:///"
_JOURNALS = ("", "-wal", "-journal", "-shm")


@dataclass(frozen=True)
class Key:
    """A registry URI asked of a local SQLite store in the state ``state``."""

    store: str
    uri: str
    state: list[list[int]]


@dataclass(frozen=True)
class Resolution:
    """What the store answered: the version, its recorded digest, and the folder of its files
    when the store keeps them as local files ("" otherwise)."""

    provenance: str
    digest: str
    files: str


def store_state(tracking_uri: str) -> list[list[int]] | None:
    """The state of a local SQLite store's files, or None when it cannot be kept (not a local
    SQLite store, a registry elsewhere, or written too recently to tell later writes apart)."""
    registry = os.environ.get("MLFLOW_REGISTRY_URI")
    if not tracking_uri.startswith(_SQLITE) or registry not in (None, "", tracking_uri):
        return None
    database = Path(tracking_uri.removeprefix(_SQLITE))
    state: list[list[int]] = []
    now = time.time_ns()
    for suffix in _JOURNALS:
        try:
            found = Path(f"{database}{suffix}").stat()
        except FileNotFoundError:
            state.append([])
            continue
        if now - found.st_mtime_ns < SETTLED_SECONDS * 1e9:
            return None
        state.append([found.st_ino, found.st_size, found.st_mtime_ns, found.st_ctime_ns])
    return state if state[0] else None


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


def load_copy(
    cache: Path, digest: str, with_profile: bool
) -> tuple[Any, ReferenceProfile | None] | None:
    """The Pipeline (and reference profile) kept for ``digest``, verified; None if not kept."""
    from lead_conversion_prediction.monitoring.profile import ReferenceProfile
    from lead_conversion_prediction.utils.storage import load_artifact, verify_artifact

    folder = cache / "models" / digest
    if not (folder / PIPELINE_NAME).is_file():
        return None
    if with_profile and not (folder / PROFILE_NAME).is_file():
        return None
    model = load_artifact(folder / PIPELINE_NAME)
    if not with_profile:
        return model, None
    return model, ReferenceProfile.model_validate_json(verify_artifact(folder / PROFILE_NAME))


def keep_copy(cache: Path, digest: str, model: Any, profile: ReferenceProfile | None) -> None:
    """Keep a verified Pipeline (and its profile) under ``digest``, as one artifact set."""
    from lead_conversion_prediction.utils.storage import artifact_set

    with artifact_set(cache / "models" / digest) as files:
        files.save(model, PIPELINE_NAME)
        if profile is not None:
            files.path(PROFILE_NAME).write_text(profile.model_dump_json(), encoding="utf-8")
