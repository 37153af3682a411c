"""Atomic writes, checksummed artifact sets and the reproducible model bundle.

Every file the project writes goes through :func:`atomic_path`: it is written to a temporary
file in the same folder and renamed over the target only when complete, so a failed or
interrupted stage never leaves a partial artifact, nor destroys the previous one. Temporary
files and folders end in ``.lcp-tmp``, which git, DVC and the MLflow logging ignore, and
which :func:`sweep_temporary` removes at the start of the next writing run.

Model artifacts are written as a set (:func:`artifact_set`): every file to a staging folder,
then a ``SHA256SUMS`` manifest of them (the format ``sha256sum -c`` reads), then one rename
of the staging folder to ``.lcp-commit`` (the commit), then each file moved into place. A
kill before the commit leaves the old set; a kill after it is completed by the next access
(:func:`complete_commit`), so a set is always wholly old or wholly new. Artifacts are
verified against their manifest before they are unpickled.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lead_conversion_prediction.exceptions import ArtifactError, InputNotFoundError
from lead_conversion_prediction.utils.atomic import TEMP_SUFFIX, atomic_path, default_file_mode
from lead_conversion_prediction.utils.files import reading

if TYPE_CHECKING:
    import pandas as pd

MANIFEST_NAME = "SHA256SUMS"
COMMIT_NAME = ".lcp-commit"
_CHUNK = 1 << 20


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_json(path: Path, payload: Any) -> None:
    """Write ``payload`` as stable JSON (sorted keys, two-space indent) atomically."""
    write_text(path, _stable_json(payload))


def _stable_json(payload: Any) -> str:
    return json.dumps(payload, indent=2, sort_keys=True, allow_nan=False) + "\n"


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


class SetWriter:
    """Where the files of an artifact set are written before the set is committed."""

    def __init__(self, staging: Path) -> None:
        self.staging = staging
        self.names: list[str] = []

    def path(self, name: str) -> Path:
        """The staging path of member ``name`` (``sub/name`` for a member of a subfolder)."""
        self.names.append(name)
        target = self.staging / name
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def save(self, obj: object, name: str) -> None:
        """Pickle ``obj`` with joblib as member ``name``."""
        import joblib

        joblib.dump(obj, self.path(name))

    def write_json(self, payload: Any, name: str) -> None:
        """Write ``payload`` as stable JSON as member ``name``."""
        self.path(name).write_text(_stable_json(payload), encoding="utf-8")

    def write_csv(self, frame: pd.DataFrame, name: str) -> None:
        """Write a frame as CSV without its index as member ``name``."""
        frame.to_csv(self.path(name), index=False, lineterminator="\n")

    def seal(self) -> None:
        """Write a manifest in each folder of the set, the top one last."""
        by_folder: dict[Path, list[str]] = {}
        for name in self.names:
            member = Path(name)
            by_folder.setdefault(member.parent, []).append(member.name)
        for folder in sorted(by_folder, key=lambda f: len(f.parts), reverse=True):
            names = by_folder[folder]
            lines = [f"{file_digest(self.staging / folder / n)}  {n}\n" for n in sorted(names)]
            (self.staging / folder / MANIFEST_NAME).write_text("".join(lines), encoding="utf-8")
        for path in self.staging.rglob("*"):
            if path.is_file():
                path.chmod(default_file_mode())
                with path.open("rb") as stream:
                    os.fsync(stream.fileno())


@contextmanager
def artifact_set(directory: Path) -> Iterator[SetWriter]:
    """Write a set of artifacts into ``directory`` as one transaction (see the module's
    docstring). Subfolders written into the set are replaced whole."""
    from lead_conversion_prediction.utils.locking import directory_lock

    directory.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".set.", suffix=TEMP_SUFFIX, dir=directory))
    try:
        writer = SetWriter(staging)
        yield writer
        writer.seal()
        with directory_lock(directory, exclusive=True):
            _complete_commit(directory)
            staging.replace(directory / COMMIT_NAME)  # the commit: from here, the new set
            _complete_commit(directory)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def complete_commit(directory: Path) -> bool:
    """Finish moving a committed set into ``directory``; True when there was one to finish."""
    from lead_conversion_prediction.utils.locking import directory_lock

    if not (directory / COMMIT_NAME).is_dir():
        return False
    with directory_lock(directory, exclusive=True):
        return _complete_commit(directory)


def _complete_commit(directory: Path) -> bool:
    """Move a committed set's files into place, manifests last; idempotent after a kill."""
    commit = directory / COMMIT_NAME
    if not commit.is_dir():
        return False
    members = sorted(path for path in commit.rglob("*") if path.is_file())
    folders = {path.parent.relative_to(commit) for path in members}
    for folder in folders:
        if folder != Path():  # a subfolder of the set is replaced whole
            kept = {path.name for path in (commit / folder).iterdir()}
            for old in (directory / folder).glob("*"):
                if old.is_file() and old.name not in kept:
                    old.unlink()
    manifests_last = sorted(
        members, key=lambda path: (path.name == MANIFEST_NAME, -len(path.parts))
    )
    for path in manifests_last:
        target = directory / path.relative_to(commit)
        target.parent.mkdir(parents=True, exist_ok=True)
        path.replace(target)
    shutil.rmtree(commit)
    return True


def verify_artifact(path: Path) -> bytes:
    """Return the bytes of ``path`` once they match its entry in ``SHA256SUMS``.

    An interrupted commit of the set it belongs to is completed first. The bytes that are
    checked are the bytes returned, so nothing can change between the check and the use.
    """
    for folder in (path.parent, path.parent.parent):
        complete_commit(folder)
    if not path.is_file():
        raise InputNotFoundError(path)
    expected = read_manifest(path.parent).get(path.name)
    if expected is None:
        raise ArtifactError(f"{path}: not listed in {path.parent / MANIFEST_NAME}")
    with reading(path):
        content = path.read_bytes()
    if hashlib.sha256(content).hexdigest() != expected:
        raise ArtifactError(f"{path}: checksum differs from {MANIFEST_NAME}; the file is corrupt")
    return content


def load_artifact(path: Path) -> Any:
    """Verify ``path`` against its manifest, then unpickle those same bytes with joblib."""
    import joblib

    return joblib.load(io.BytesIO(verify_artifact(path)))


def directory_digest(
    folder: Path, exclude: Iterable[str] = (), skip_folders: Iterable[str] = ()
) -> str:
    """One SHA-256 for a folder: of each file's relative path and SHA-256, in order.

    Files whose relative path is in ``exclude``, and those in a folder named in
    ``skip_folders`` at any depth, are left out.
    """
    left_out, skipped = set(exclude), set(skip_folders)
    lines = sorted(
        f"{relative.as_posix()}  {file_digest(path)}\n"
        for path in folder.rglob("*")
        if path.is_file()
        and (relative := path.relative_to(folder)).as_posix() not in left_out
        and not skipped.intersection(relative.parts[:-1])
    )
    return hashlib.sha256("".join(lines).encode()).hexdigest()


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
    """Return a bundle's member names; raise :class:`ArtifactError` on its first problem."""
    problems, names = check_bundle(path)
    if problems:
        raise ArtifactError(problems[0])
    return names


def check_bundle(path: Path, required: Iterable[str] = ()) -> tuple[list[str], list[str]]:
    """Every problem of a bundle against its manifest (one line each), and its members.

    Each ``required`` member must be listed in the manifest.
    """
    try:
        with reading(path), tarfile.open(path) as tar:
            return _check_members(path, tar, required)
    except tarfile.TarError as error:
        return [f"{path}: not a tar archive ({error})"], []


def _unlisted(manifest: str, expected: Iterable[str], required: Iterable[str]) -> list[str]:
    listed = set(expected)
    return [
        f"{manifest}: does not list {name}, which every model set holds"
        for name in required
        if name not in listed
    ]


def _check_members(
    path: Path, tar: tarfile.TarFile, required: Iterable[str]
) -> tuple[list[str], list[str]]:
    members = {member.name: member for member in tar.getmembers() if member.isfile()}
    manifest = members.pop(MANIFEST_NAME, None)
    stream = tar.extractfile(manifest) if manifest is not None else None
    if stream is None:
        return [f"{path}: bundle has no {MANIFEST_NAME}"], list(members)
    try:
        expected = parse_manifest(stream.read().decode(), f"{path}:{MANIFEST_NAME}")
    except (ArtifactError, UnicodeDecodeError) as error:
        return [str(error)], list(members)
    problems = _unlisted(f"{path}:{MANIFEST_NAME}", expected, required)
    problems += [
        f"{path}: member {name} is listed in {MANIFEST_NAME} but missing"
        for name in expected
        if name not in members
    ]
    for name, member in members.items():
        content = tar.extractfile(member)
        if name not in expected:
            problems.append(f"{path}: member {name} is not listed in {MANIFEST_NAME}")
        elif content is None or hashlib.sha256(content.read()).hexdigest() != expected[name]:
            problems.append(f"{path}: member {name} does not match {MANIFEST_NAME}")
    return problems, list(members)


def check_artifact_set(directory: Path, required: Iterable[str] = ()) -> tuple[list[str], int]:
    """Every problem of a folder's artifacts against their manifests, subfolders included
    (one line each), and how many files were checked. Each ``required`` file must be listed
    in the folder's own manifest."""
    problems: list[str] = []
    checked = 0
    manifests = sorted(directory.rglob(MANIFEST_NAME))
    if not (directory / MANIFEST_NAME).is_file():
        problems.append(f"{directory / MANIFEST_NAME}: not found; nothing to verify against")
    for manifest in manifests:
        folder = manifest.parent
        try:
            expected = read_manifest(folder)
        except ArtifactError as error:
            problems.append(str(error))
            continue
        if folder == directory:
            problems += _unlisted(str(manifest), expected, required)
        for name, digest in expected.items():
            member = folder / name
            checked += 1
            if not member.is_file():
                problems.append(f"{member}: listed in {manifest} but missing")
            elif file_digest(member) != digest:
                problems.append(f"{member}: checksum differs from {manifest}")
    return problems, checked
