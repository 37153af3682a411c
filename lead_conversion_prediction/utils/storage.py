"""Atomic writes, checksummed artifacts and the reproducible model bundle.

Every file the project writes goes through :func:`atomic_path`: it is written to a temporary
file in the same folder and renamed over the target only when complete, so a failed or
interrupted stage never leaves a partial artifact, nor destroys the previous one.
Model artifacts are listed with their SHA-256 in a ``SHA256SUMS`` file beside them (the format
``sha256sum -c`` reads) and verified before they are unpickled.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lead_conversion_prediction.exceptions import ArtifactError, InputNotFoundError
from lead_conversion_prediction.utils.files import producer_hint, reading

if TYPE_CHECKING:
    import pandas as pd

MANIFEST_NAME = "SHA256SUMS"
_CHUNK = 1 << 20


def _default_file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        temporary.chmod(_default_file_mode())
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_json(path: Path, payload: Any) -> None:
    """Write ``payload`` as stable JSON (sorted keys, two-space indent) atomically."""
    write_text(path, json.dumps(payload, indent=2, sort_keys=True, allow_nan=False) + "\n")


def read_json(path: Path) -> Any:
    """Read a JSON file, naming the file when it is missing or invalid."""
    try:
        with reading(path):
            return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ArtifactError(f"{path}: not valid JSON ({error})") from None


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    """Write a frame as CSV without its index, atomically."""
    with atomic_path(path) as temporary:
        frame.to_csv(temporary, index=False, lineterminator="\n")


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Return the hex digest of a file's bytes."""
    digest = hashlib.new(algorithm)
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def save_artifact(obj: object, path: Path) -> None:
    """Pickle ``obj`` with joblib to ``path`` atomically."""
    import joblib

    with atomic_path(path) as temporary:
        joblib.dump(obj, temporary)


def write_manifest(directory: Path, names: Iterable[str]) -> Path:
    """Write ``SHA256SUMS`` for the named files of ``directory`` and return its path."""
    lines = [f"{file_digest(directory / name)}  {name}\n" for name in sorted(names)]
    manifest = directory / MANIFEST_NAME
    write_text(manifest, "".join(lines))
    return manifest


def read_manifest(directory: Path) -> dict[str, str]:
    """Return ``{file name: sha256}`` from the directory's ``SHA256SUMS``."""
    manifest = directory / MANIFEST_NAME
    with reading(manifest):
        text = manifest.read_text(encoding="utf-8")
    return parse_manifest(text, str(manifest))


def parse_manifest(text: str, where: str) -> dict[str, str]:
    """Return ``{file name: sha256}`` from the text of a ``SHA256SUMS`` file."""
    entries: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        digest, separator, name = line.partition("  ")
        if not separator or len(digest) != 64 or not name:
            raise ArtifactError(f"{where}: line {number} is not '<sha256>  <file>'")
        entries[name] = digest
    return entries


def verify_artifact(path: Path) -> None:
    """Raise :class:`ArtifactError` unless ``path`` matches its entry in ``SHA256SUMS``."""
    if not path.is_file():
        raise InputNotFoundError(path, producer_hint(path))
    expected = read_manifest(path.parent).get(path.name)
    if expected is None:
        raise ArtifactError(f"{path}: not listed in {path.parent / MANIFEST_NAME}")
    if file_digest(path) != expected:
        raise ArtifactError(f"{path}: checksum differs from {MANIFEST_NAME}; the file is corrupt")


def load_artifact(path: Path) -> Any:
    """Verify ``path`` against its manifest, then unpickle it with joblib."""
    import joblib

    verify_artifact(path)
    return joblib.load(path)


def write_bundle(path: Path, members: Iterable[Path]) -> None:
    """Write a reproducible tar of ``members`` plus a ``SHA256SUMS`` of them, atomically.

    Members sit at the archive's root; timestamps, owners and order are fixed, so the same
    files always give the same bytes.
    """
    files = sorted(members, key=lambda member: member.name)
    manifest = "".join(f"{file_digest(file)}  {file.name}\n" for file in files).encode()
    with (
        atomic_path(path) as temporary,
        tarfile.open(temporary, "w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for file in files:
            with file.open("rb") as stream:
                tar.addfile(_tar_entry(file.name, file.stat().st_size), stream)
        tar.addfile(_tar_entry(MANIFEST_NAME, len(manifest)), io.BytesIO(manifest))


def _tar_entry(name: str, size: int) -> tarfile.TarInfo:
    entry = tarfile.TarInfo(name)
    entry.size = size
    entry.mode = 0o644
    entry.mtime = 0
    entry.uid = entry.gid = 0
    entry.uname = entry.gname = ""
    return entry


def verify_bundle(path: Path) -> list[str]:
    """Check every member of a bundle against its manifest; return the member names."""
    with reading(path), tarfile.open(path) as tar:
        members = {member.name: member for member in tar.getmembers()}
        manifest = members.pop(MANIFEST_NAME, None)
        stream = tar.extractfile(manifest) if manifest is not None else None
        if stream is None:
            raise ArtifactError(f"{path}: bundle has no {MANIFEST_NAME}")
        expected = parse_manifest(stream.read().decode(), f"{path}:{MANIFEST_NAME}")
        for name, member in members.items():
            content = tar.extractfile(member)
            if content is None or hashlib.sha256(content.read()).hexdigest() != expected.get(name):
                raise ArtifactError(f"{path}: member {name} does not match {MANIFEST_NAME}")
    return list(members)
