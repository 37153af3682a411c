"""Tampered artifacts are refused with one line before anything is unpickled.

The checks of files run the command in the test's process; those that load a registered
model's stored code, or start a server, run it as a process of its own.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import joblib
import pytest

from tests.faults.conftest import LCP, Project
from tests.support import free_port

pytestmark = pytest.mark.long(seconds=78)


class RunsACommand:
    """A pickle that runs a shell command when it is loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return os.system, (f"touch {self.marker}",)


def one_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr[-2000:]
    return errors[0]


def test_a_model_pkl_that_would_run_a_command_is_refused(project: Project, tmp_path: Path) -> None:
    model = project.root / "models" / "model.pkl"
    marker = tmp_path / "the-command-ran"
    joblib.dump(RunsACommand(marker), model)
    validated = project.here("validate", "--model", str(model))
    assert "model.pkl: checksum differs from SHA256SUMS" in one_error(validated)
    assert not marker.exists()
    verified = project.here("verify")
    assert verified.returncode == 2
    assert "model.pkl: checksum differs" in verified.stderr


def test_a_flipped_bit_in_the_lead_model_is_refused(project: Project) -> None:
    model = project.root / "models" / "lead_model.joblib"
    content = bytearray(model.read_bytes())
    content[len(content) // 3] ^= 0x10
    model.write_bytes(bytes(content))
    leads = project.root / "data" / "processed" / "test.csv"
    result = project.here(
        "predict", "-i", str(leads), "-o", str(project.root / "s.csv"), "--model", str(model)
    )
    assert "lead_model.joblib: checksum differs" in one_error(result)
    assert not (project.root / "s.csv").exists()


def rewrite_bundle(bundle: Path, change: str) -> None:
    with tarfile.open(bundle) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    if change == "member":
        members["model.pkl"] = b"not the model"
    elif change == "missing":
        del members["columns_list.json"]
    else:
        members["SHA256SUMS"] = b"garbage\n"
    with tarfile.open(bundle, "w") as tar:
        for name, content in members.items():
            entry = tarfile.TarInfo(name)
            entry.size = len(content)
            tar.addfile(entry, io.BytesIO(content))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ("member", "member model.pkl does not match SHA256SUMS"),
        ("missing", "member columns_list.json is listed in SHA256SUMS but missing"),
        ("manifest", "SHA256SUMS: line 1 is not '<sha256>  <file>'"),
    ],
)
def test_a_tampered_bundle_is_refused(project: Project, change: str, problem: str) -> None:
    bundle = project.root / "models" / "models.tar"
    rewrite_bundle(bundle, change)
    assert problem in one_error(project.here("verify", str(bundle)))


def champion_folder(project: Project) -> Path:
    """Where the local store keeps the champion's files."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{project.store}")
    version = client.get_model_version_by_alias("lead_model", "champion")
    model_id = str(version.source).removeprefix("models:/")
    folder = Path(client.get_logged_model(model_id).artifact_location.removeprefix("file://"))
    assert folder.is_relative_to(project.store.parent), "the test's own copy, no other's"
    return folder


def test_a_tampered_registered_model_is_neither_scored_nor_served(own_artifacts: Project) -> None:
    project = own_artifacts
    pipeline = champion_folder(project) / "artifacts" / "pipeline.skops"
    original = pipeline.read_bytes()
    try:
        pipeline.write_bytes(original[:-10] + b"0123456789")
        leads = project.root / "data" / "processed" / "test.csv"
        scored = project.lcp(
            "predict", "-i", str(leads), "-o", str(project.root / "s.csv"),
            "--model", "models:/lead_model@champion",
        )  # fmt: skip
        assert "files differ from the digest recorded" in one_error(scored)
        served = project.lcp("serve", "--port", str(free_port()), timeout=300)
        assert "files differ from the digest recorded" in one_error(served)
    finally:
        pipeline.write_bytes(original)


def test_the_plain_mlflow_load_leaves_the_champion_usable_but_changed_code_is_refused(
    own_artifacts: Project,
) -> None:
    """`mlflow.pyfunc.load_model` imports the model's code where a local store keeps it, so
    Python writes its bytecode cache there: lcp still scores that champion. A change to the
    stored code itself is refused."""
    project = own_artifacts
    folder = champion_folder(project)
    load = (
        "import mlflow; mlflow.pyfunc.load_model('models:/lead_model@champion'); print('loaded')"
    )
    leads = project.root / "data" / "processed" / "test.csv"
    predict = ("predict", "-i", str(leads), "-o", str(project.root / "s.csv"))
    code = folder / "registered_model.py"
    original = code.read_bytes()
    try:
        env = {**project.env, "PYTHONDONTWRITEBYTECODE": ""}  # Python's default: it writes
        loaded = subprocess.run(
            [sys.executable, "-c", load], env=env, capture_output=True, text=True, check=False
        )
        assert loaded.stdout.strip() == "loaded", loaded.stderr[-2000:]
        assert list(folder.rglob("__pycache__/*.pyc")), "the load wrote bytecode beside the code"
        scored = project.lcp(*predict, "--model", "models:/lead_model@champion")
        assert scored.returncode == 0, scored.stderr[-2000:]

        code.write_bytes(original + b"\n# changed\n")
        refused = project.lcp(*predict, "--model", "models:/lead_model@champion")
        assert "files differ from the digest recorded" in one_error(refused)
    finally:
        code.write_bytes(original)
        for cache in list(folder.rglob("__pycache__")):
            shutil.rmtree(cache)


PLANTED = """
from pathlib import Path
Path({marker!r}).write_text("the planted bytecode ran")
"""


def test_planted_bytecode_beside_the_stored_code_is_never_loaded(
    own_artifacts: Project, tmp_path: Path
) -> None:
    """A .pyc of other code, compiled not to be checked against its source, placed where
    Python looks for the stored code's cache: predict and serve load the checked source."""
    import importlib.util
    import os
    import py_compile
    import signal

    from tests.faults.test_serve import answers
    from tests.support import free_port, wait_until

    project = own_artifacts
    code = champion_folder(project) / "registered_model.py"
    marker = tmp_path / "ran"
    planted = tmp_path / "planted.py"
    planted.write_text(PLANTED.format(marker=str(marker)))
    cache = Path(importlib.util.cache_from_source(str(code)))
    cache.parent.mkdir(exist_ok=True)
    py_compile.compile(
        str(planted),
        cfile=str(cache),
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    leads = project.root / "data" / "processed" / "test.csv"
    scored = project.lcp(
        "predict", "-i", str(leads), "-o", str(project.root / "s.csv"),
        "--model", "models:/lead_model@champion",
    )  # fmt: skip
    assert scored.returncode == 0, scored.stderr[-2000:]

    port = free_port()
    server = project.start("serve", "--port", str(port))
    try:
        wait_until(lambda: answers(port), 300, "lcp serve answers", process=server)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=120)
    assert not marker.exists(), "the planted bytecode ran"
    assert cache.is_file(), "the store's own files are left as they are"


def test_a_remembered_champion_is_scored_without_mlflow_and_its_files_still_checked(
    own_artifacts: Project,
) -> None:
    """Once the champion was resolved, scoring it again imports neither MLflow nor skops and
    gives the same scores, while the store takes runs that are not a version's; a write to the
    registered model makes MLflow resolve it again, and the kept copy spares skops; its stored
    files are still checked on every load."""
    from mlflow import MlflowClient

    project = own_artifacts
    leads = project.root / "data" / "processed" / "test.csv"
    predict = ("predict", "-i", str(leads), "--model", "models:/lead_model@champion")
    first = project.lcp(*predict, "-o", str(project.root / "first.csv"))
    assert first.returncode == 0, first.stderr[-2000:]

    def imports_of(output: str) -> set[str]:
        env = {**project.env, "PYTHONPROFILEIMPORTTIME": "1"}
        run = subprocess.run(
            [*LCP, *predict, "-o", str(project.root / output)],
            env=env, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr[-2000:]
        lines = run.stderr.splitlines()
        imported = {line.rsplit("|", 1)[1].strip() for line in lines if "|" in line}
        assert (project.root / output).read_bytes() == (project.root / "first.csv").read_bytes()
        return {name.split(".")[0] for name in imported}

    assert not imports_of("again.csv") & {"mlflow", "skops"}, "remembered: MLflow not asked"
    client = MlflowClient(tracking_uri=f"sqlite:///{project.store}")
    other = client.create_run(client.create_experiment("another experiment")).info.run_id
    client.set_tag(other, "note", "a run that is not a version's")
    assert not imports_of("other.csv") & {"mlflow", "skops"}, "the model's rows are unchanged"
    client.set_model_version_tag("lead_model", "1", "note", "a write to the registered model")
    assert imports_of("resolved.csv") & {"mlflow", "skops"} == {"mlflow"}, "the copy is kept"
    assert not imports_of("after.csv") & {"mlflow", "skops"}, "remembered again"
    shutil.rmtree(project.root / ".cache")  # the version is the workspace's model: no skops
    assert imports_of("no-cache.csv") & {"mlflow", "skops"} == {"mlflow"}
    shutil.rmtree(project.root / ".cache")
    workspace = project.root / "models" / "lead_model.joblib"
    workspace.rename(workspace.with_suffix(".away"))  # no such file: the store's skops file
    assert imports_of("from-store.csv") & {"mlflow", "skops"} == {"mlflow", "skops"}
    workspace.with_suffix(".away").rename(workspace)

    pipeline = champion_folder(project) / "artifacts" / "pipeline.skops"
    pipeline.write_bytes(pipeline.read_bytes()[:-10] + b"0123456789")
    refused = project.lcp(*predict, "-o", str(project.root / "third.csv"))
    assert "files differ from the digest recorded" in one_error(refused)
    assert not (project.root / "third.csv").exists()
