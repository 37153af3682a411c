import errno
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from lead_conversion_prediction.exceptions import ArtifactError, InputNotFoundError
from lead_conversion_prediction.utils.atomic import TEMP_SUFFIX, atomic_path, sweep_temporary
from lead_conversion_prediction.utils.storage import (
    COMMIT_NAME,
    MANIFEST_NAME,
    artifact_set,
    check_artifact_set,
    check_bundle,
    complete_commit,
    load_artifact,
    read_manifest,
    verify_artifact,
    verify_bundle,
    write_bundle,
    write_json,
)
from tests.support import save_verified


def test_atomic_write_keeps_the_old_file_and_no_temporary_when_it_fails(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_atomic_write_replaces_the_file_with_readable_permissions(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "report.json"
    write_json(target, {"b": 1, "a": [1.5]})
    assert target.read_text() == '{\n  "a": [\n    1.5\n  ],\n  "b": 1\n}\n'
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_write_json_refuses_values_json_cannot_hold(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_json(tmp_path / "x.json", {"score": float("nan")})
    assert not (tmp_path / "x.json").exists()


def test_artifacts_load_only_when_they_match_the_manifest(tmp_path: Path) -> None:
    artifact = save_verified({"weights": [1, 2, 3]}, tmp_path / "model.joblib")
    assert load_artifact(artifact) == {"weights": [1, 2, 3]}
    assert set(read_manifest(tmp_path)) == {"model.joblib"}

    artifact.write_bytes(artifact.read_bytes() + b"tampered")
    with pytest.raises(ArtifactError, match="checksum differs"):
        load_artifact(artifact)


def test_an_artifact_missing_from_the_manifest_is_refused(tmp_path: Path) -> None:
    save_verified("x", tmp_path / "a.joblib")
    (tmp_path / "b.joblib").write_bytes(b"y")
    with pytest.raises(ArtifactError, match="not listed"):
        verify_artifact(tmp_path / "b.joblib")
    with pytest.raises(InputNotFoundError, match=r"c\.joblib: not found"):
        verify_artifact(tmp_path / "c.joblib")


def test_a_malformed_manifest_names_its_bad_line(tmp_path: Path) -> None:
    (tmp_path / MANIFEST_NAME).write_text("not a checksum line\n")
    with pytest.raises(ArtifactError, match="line 1"):
        read_manifest(tmp_path)


def test_the_bundle_is_reproducible_and_verifiable(tmp_path: Path) -> None:
    members = []
    for name, content in (("model.pkl", b"model"), ("columns_list.json", b"[]")):
        members.append(tmp_path / name)
        members[-1].write_bytes(content)
    first, second = tmp_path / "one.tar", tmp_path / "two.tar"
    write_bundle(first, members)
    (tmp_path / "model.pkl").touch()  # a new mtime must not change the bundle
    write_bundle(second, members)
    assert first.read_bytes() == second.read_bytes()
    assert sorted(verify_bundle(first)) == ["columns_list.json", "model.pkl"]
    with tarfile.open(first) as tar:
        assert tar.getnames() == ["columns_list.json", "model.pkl", MANIFEST_NAME]


def test_a_bundle_member_that_does_not_match_its_manifest_is_reported(tmp_path: Path) -> None:
    bundle = tmp_path / "bad.tar"
    payload = tmp_path / "model.pkl"
    payload.write_bytes(b"model")
    manifest = tmp_path / MANIFEST_NAME
    manifest.write_text(f"{'0' * 64}  model.pkl\n")
    with tarfile.open(bundle, "w") as tar:
        tar.add(payload, arcname="model.pkl")
        tar.add(manifest, arcname=MANIFEST_NAME)
    with pytest.raises(ArtifactError, match="does not match"):
        verify_bundle(bundle)


def test_write_json_output_is_valid_json(tmp_path: Path) -> None:
    write_json(tmp_path / "m.json", {"accuracy": 0.8})
    assert json.loads((tmp_path / "m.json").read_text()) == {"accuracy": 0.8}


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def write_set(directory: Path, members: dict[str, bytes]) -> None:
    with artifact_set(directory) as written:
        for name, content in members.items():
            written.path(name).write_bytes(content)


def test_a_set_is_switched_in_whole_and_its_subfolders_replaced(tmp_path: Path) -> None:
    write_set(tmp_path, {"a.bin": b"a1", "sub/x.bin": b"x1", "sub/old.bin": b"o"})
    write_set(tmp_path, {"a.bin": b"a2", "sub/x.bin": b"x2"})
    assert (tmp_path / "a.bin").read_bytes() == b"a2"
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == [MANIFEST_NAME, "x.bin"]
    assert check_artifact_set(tmp_path) == ([], 2)
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]


def test_a_failure_while_writing_a_set_leaves_the_old_one(tmp_path: Path) -> None:
    write_set(tmp_path, {"a.bin": b"a1", "b.bin": b"b1"})
    with pytest.raises(RuntimeError), artifact_set(tmp_path) as written:
        written.path("a.bin").write_bytes(b"a2")
        raise RuntimeError("killed")
    assert (tmp_path / "a.bin").read_bytes() == b"a1"
    assert check_artifact_set(tmp_path) == ([], 2)
    assert not list(tmp_path.glob(f"*{TEMP_SUFFIX}"))


def test_a_commit_cut_short_is_completed_by_the_next_read(tmp_path: Path) -> None:
    write_set(tmp_path, {"a.bin": b"a1", "b.bin": b"b1"})
    # A run killed after its commit, having moved one file of two: the set is mixed on disk.
    staging = tmp_path / COMMIT_NAME
    staging.mkdir()
    (staging / "b.bin").write_bytes(b"b2")
    (tmp_path / "a.bin").write_bytes(b"a2")
    (staging / MANIFEST_NAME).write_text(
        "".join(
            f"{hashlib.sha256(c).hexdigest()}  {n}\n"
            for n, c in (("a.bin", b"a2"), ("b.bin", b"b2"))
        )
    )
    assert verify_artifact(tmp_path / "b.bin") == b"b2"  # completes the commit first
    assert not staging.exists() and check_artifact_set(tmp_path) == ([], 2)
    assert not complete_commit(tmp_path)


def test_temporary_files_of_killed_runs_are_swept(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    stale = [tmp_path / f".model.pkl.x{TEMP_SUFFIX}", tmp_path / "models" / f".set.y{TEMP_SUFFIX}"]
    stale[0].write_bytes(b"half")
    stale[1].mkdir()
    kept = tmp_path / "models" / "model.pkl"
    kept.write_bytes(b"whole")
    assert sorted(sweep_temporary([tmp_path])) == sorted(stale)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [kept]


@pytest.mark.parametrize(
    ("members", "manifest", "problem"),
    [
        ({"model.pkl": b"m"}, None, "has no SHA256SUMS"),
        ({"model.pkl": b"m"}, "garbage\n", "line 1 is not"),
        (
            {},
            f"{hashlib.sha256(b'm').hexdigest()}  model.pkl\n",
            "listed in SHA256SUMS but missing",
        ),
        (
            {"model.pkl": b"m", "extra.pkl": b"e"},
            f"{hashlib.sha256(b'm').hexdigest()}  model.pkl\n",
            "extra.pkl is not listed",
        ),
    ],
    ids=["no-manifest", "malformed", "missing-member", "unlisted-member"],
)
def test_every_bundle_problem_is_named(
    tmp_path: Path, members: dict[str, bytes], manifest: str | None, problem: str
) -> None:
    bundle = tmp_path / "models.tar"
    with tarfile.open(bundle, "w") as tar:
        for name, content in {
            **members,
            **({MANIFEST_NAME: manifest.encode()} if manifest else {}),
        }.items():
            entry = tarfile.TarInfo(name)
            entry.size = len(content)
            tar.addfile(entry, io.BytesIO(content))
    problems, _ = check_bundle(bundle)
    assert len(problems) == 1 and problem in problems[0]
    with pytest.raises(ArtifactError, match=problem):
        verify_bundle(bundle)


@pytest.mark.parametrize("kept", [[], ["a.bin"]], ids=["empty", "a-line-deleted"])
def test_a_manifest_that_leaves_out_a_member_of_every_set_fails(
    tmp_path: Path, kept: list[str]
) -> None:
    write_set(tmp_path, {"a.bin": b"a", "b.bin": b"b"})
    assert check_artifact_set(tmp_path, ["a.bin", "b.bin"]) == ([], 2)
    manifest = tmp_path / MANIFEST_NAME
    lines = manifest.read_text().splitlines(keepends=True)
    manifest.write_text("".join(line for line in lines if line.split()[1] in kept))
    problems, _ = check_artifact_set(tmp_path, ["a.bin", "b.bin"])
    assert problems == [
        f"{manifest}: does not list {name}, which every model set holds"
        for name in ("a.bin", "b.bin")
        if name not in kept
    ]


def test_a_bundle_whose_manifest_was_emptied_fails(tmp_path: Path) -> None:
    bundle = tmp_path / "models.tar"
    with tarfile.open(bundle, "w") as tar:
        for name, content in {"a.bin": b"a", MANIFEST_NAME: b""}.items():
            entry = tarfile.TarInfo(name)
            entry.size = len(content)
            tar.addfile(entry, io.BytesIO(content))
    problems, _ = check_bundle(bundle, ["a.bin"])
    assert (
        f"{bundle}:{MANIFEST_NAME}: does not list a.bin, which every model set holds" in problems
    )


def test_the_temporary_file_of_a_dead_writer_is_swept_and_a_live_ones_kept(
    tmp_path: Path,
) -> None:
    import socket
    import subprocess
    import sys

    from lead_conversion_prediction.utils.atomic import sweep_abandoned

    target = tmp_path / "scores.csv"
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    host = socket.gethostname()
    dead = tmp_path / f".scores.csv.{host}.{gone}.abc{TEMP_SUFFIX}"
    alive = tmp_path / f".scores.csv.{host}.{os.getpid()}.def{TEMP_SUFFIX}"
    elsewhere = tmp_path / f".scores.csv.other-host.{gone}.ghi{TEMP_SUFFIX}"
    other_file = tmp_path / f".scores.csv.rejects.csv.{host}.{gone}.jkl{TEMP_SUFFIX}"
    for path in (dead, alive, elsewhere, other_file):
        path.write_text("partial")
    assert sweep_abandoned(target) == [dead]
    assert alive.exists() and elsewhere.exists() and other_file.exists()


def test_an_atomic_write_names_its_temporary_file_after_its_host_and_process(
    tmp_path: Path,
) -> None:
    import socket

    with atomic_path(tmp_path / "x.csv") as temporary:
        assert temporary.name.startswith(f".x.csv.{socket.gethostname()}.{os.getpid()}.")
        assert temporary.name.endswith(TEMP_SUFFIX)


@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC, errno.EACCES])
def test_a_place_that_cannot_be_written_is_one_error_and_the_old_file_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    from lead_conversion_prediction.exceptions import WriteError

    target = tmp_path / "scores.csv"
    target.write_text("the old scores")

    def refuse(self: Path, other: Path) -> None:
        raise OSError(code, os.strerror(code), str(self))

    monkeypatch.setattr(Path, "replace", refuse)
    expected = f"scores.csv: cannot write it: {os.strerror(code)}"
    with pytest.raises(WriteError, match=expected), atomic_path(target) as temporary:
        temporary.write_text("new")
    assert target.read_text() == "the old scores"
    assert [path.name for path in tmp_path.iterdir()] == ["scores.csv"]


def test_an_error_of_the_program_is_not_turned_into_a_write_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError), atomic_path(tmp_path / "x.csv") as temporary:
        raise FileNotFoundError(errno.ENOENT, "gone", str(temporary))


def test_a_full_or_read_only_place_elsewhere_is_told_in_one_line() -> None:
    from lead_conversion_prediction.cli.errors import one_line

    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/tmp/lcp-scores-1/ids.npy")
    assert one_line(full) == [f"error: /tmp/lcp-scores-1/ids.npy: {os.strerror(errno.ENOSPC)}"]
    assert one_line(OSError(errno.EIO, "I/O error")) is None, "not the user's to fix: a trace"
