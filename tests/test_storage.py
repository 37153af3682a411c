import json
import os
import tarfile
from pathlib import Path

import pytest

from lead_conversion_prediction.exceptions import ArtifactError, InputNotFoundError
from lead_conversion_prediction.utils.storage import (
    MANIFEST_NAME,
    atomic_path,
    load_artifact,
    read_manifest,
    save_artifact,
    verify_artifact,
    verify_bundle,
    write_bundle,
    write_json,
    write_manifest,
)


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
    artifact = tmp_path / "model.joblib"
    save_artifact({"weights": [1, 2, 3]}, artifact)
    write_manifest(tmp_path, [artifact.name])
    assert load_artifact(artifact) == {"weights": [1, 2, 3]}
    assert set(read_manifest(tmp_path)) == {"model.joblib"}

    artifact.write_bytes(artifact.read_bytes() + b"tampered")
    with pytest.raises(ArtifactError, match="checksum differs"):
        load_artifact(artifact)


def test_an_artifact_missing_from_the_manifest_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.joblib").write_bytes(b"x")
    (tmp_path / "b.joblib").write_bytes(b"y")
    write_manifest(tmp_path, ["a.joblib"])
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
