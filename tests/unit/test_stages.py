"""Each stage run in-process on a small project, held against what ``dvc.yaml`` says of it.

A stage runs with only the inputs ``dvc.yaml`` lists, writes exactly the outputs it lists,
reads exactly the ``params.yaml`` keys it lists, and its code deps are its import closure.
Besides them a stage reads only ``params.yaml`` itself (DVC tracks its keys) and the raw
data's pin (DVC forbids a ``.dvc`` file as a dependency; the raw file's hash stands for it).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from sklearn.dummy import DummyClassifier

from lead_conversion_prediction.config import PROJ_ROOT, load_params
from lead_conversion_prediction.exceptions import (
    ArtifactError,
    DataContractError,
    InputNotFoundError,
    RawDataChangedError,
)
from lead_conversion_prediction.modeling.report import FIGURES, curve_tables
from lead_conversion_prediction.stages._io import read_pin
from lead_conversion_prediction.stages.data import check_raw_data
from lead_conversion_prediction.stages.validate import (
    load_validator_model,
    read_validation_pair,
)
from tests.imports import PACKAGE, import_closure
from tests.support import make_raw_leads, new_project, run_stage, save_verified

DVC_YAML = yaml.safe_load((PROJ_ROOT / "dvc.yaml").read_text(encoding="utf-8"))
# What a stage with a side effect outside the workspace writes as its record: not an output
# DVC caches or tracks (it names the tracking store's runs).
RECORDS = {"register": ["reports/registry.json"]}
# What a stage keeps for later commands, outside git and DVC and safe to delete: register keeps
# the version it registered and the champion's resolution for scoring (scoring/model_cache.py).
CACHES = {"register": [".cache"]}
STAGES = list(DVC_YAML["stages"])


def declared(stage: str, section: str) -> list[str]:
    """A stage's entries of ``deps``, ``outs``, ``metrics`` or ``params`` in dvc.yaml."""
    entries = DVC_YAML["stages"][stage].get(section, [])
    return [next(iter(entry)) if isinstance(entry, dict) else str(entry) for entry in entries]


def files_under(root: Path) -> dict[str, int]:
    """Every file below ``root`` with its modification time, by relative path."""
    return {
        str(path.relative_to(root)): path.stat().st_mtime_ns
        for path in root.rglob("*")
        if path.is_file()
    }


def within(path: str, entries: list[str]) -> bool:
    return any(path == entry or path.startswith(f"{entry}/") for entry in entries)


@dataclass
class StageRuns:
    """A small project where every stage ran in order, and what each one wrote."""

    root: Path
    tracking_uri: str
    written: dict[str, set[str]]


@pytest.fixture(scope="module")
def stage_runs(tmp_path_factory: pytest.TempPathFactory) -> StageRuns:
    base = tmp_path_factory.mktemp("stages")
    root = new_project(base / "project")
    make_raw_leads(n=400, seed=5).to_csv(root / "data" / "raw" / "raw_data.csv", index=False)
    tracking_uri = f"sqlite:///{base / 'mlflow.db'}"
    params = load_params(root / "params.yaml")
    written: dict[str, set[str]] = {}
    for stage in STAGES:
        before = files_under(root)
        run_stage(stage, root, params, tracking_uri)
        after = files_under(root)
        written[stage] = {path for path, mtime in after.items() if before.get(path) != mtime}
    return StageRuns(root, tracking_uri, written)


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_writes_exactly_its_declared_outputs(stage_runs: StageRuns, stage: str) -> None:
    outputs = declared(stage, "outs") + declared(stage, "metrics") + RECORDS.get(stage, [])
    assert outputs, "every stage writes something"
    written = stage_runs.written[stage]
    kept = CACHES.get(stage, [])
    assert {path for path in written if not within(path, outputs + kept)} == set()
    for output in outputs:
        assert any(within(path, [output]) for path in written), f"{output} was not written"


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_runs_with_only_its_declared_inputs(
    stage_runs: StageRuns, stage: str, tmp_path: Path
) -> None:
    root = new_project(tmp_path / "project")
    for dep in declared(stage, "deps"):
        if dep == PACKAGE or dep.startswith(f"{PACKAGE}/"):
            continue  # code: imported from the package
        source, target = stage_runs.root / dep, root / dep
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)
    run_stage(stage, root, load_params(root / "params.yaml"), f"sqlite:///{tmp_path / 'm.db'}")


class Recorder:
    """Stands for a parameter object and notes the dotted key of every value read through it.

    A method call (``model_dump``, ``section``) counts as reading its whole section.
    """

    def __init__(self, target: Any, prefix: str, seen: set[str]) -> None:
        self._target, self._prefix, self._seen = target, prefix, seen

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        key = f"{self._prefix}.{name}" if self._prefix else name
        if isinstance(value, BaseModel):
            return Recorder(value, key, self._seen)
        self._seen.add(self._prefix if callable(value) else key)
        return value


def covers(declared_key: str, read_key: str) -> bool:
    """A dvc.yaml params entry covers a key read when it is that key or a section of it."""
    return declared_key in ("params.yaml", read_key) or read_key.startswith(f"{declared_key}.")


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_reads_exactly_its_declared_params(
    stage_runs: StageRuns, stage: str, tmp_path: Path
) -> None:
    root = tmp_path / "project"
    shutil.copytree(stage_runs.root, root, symlinks=True)
    seen: set[str] = set()
    params = Recorder(load_params(root / "params.yaml"), "", seen)
    run_stage(stage, root, params, f"sqlite:///{tmp_path / 'm.db'}")
    read = {"params.yaml" if key == "" else key for key in seen}
    keys = declared(stage, "params")
    assert {key for key in read if not any(covers(d, key) for d in keys)} == set()
    for key in keys:
        assert any(covers(key, r) or covers(r, key) for r in read), f"{key} is never read"


@pytest.mark.parametrize("stage", STAGES)
def test_a_stages_code_deps_are_its_module_and_what_it_imports(stage: str) -> None:
    deps = set(declared(stage, "deps"))
    if PACKAGE in deps:  # the whole package: its logged models carry the package's code
        assert not {dep for dep in deps if dep.startswith(f"{PACKAGE}/")}
        return
    closure = {
        str(path.relative_to(PROJ_ROOT)) for path in import_closure(f"{PACKAGE}.stages.{stage}")
    }
    templates = {dep for dep in deps if dep.startswith(f"{PACKAGE}/templates/")}
    code = {dep for dep in deps if dep.startswith(f"{PACKAGE}/")} - templates
    assert code == closure
    for template in templates:
        name = Path(template).name
        assert any(name in path.read_text() for path in map(PROJ_ROOT.joinpath, closure))


def test_dvc_lock_records_the_code_each_stage_reads_as_it_is_now() -> None:
    """A change to the package needs `make pipeline` before its commit, or a fresh clone's
    `dvc repro` re-runs stages and its quick start leaves dvc.lock modified."""
    from dvc.repo import Repo

    with Repo(str(PROJ_ROOT)) as repo:
        stale = {
            f"{stage.addressing}: {dep.def_path}"
            for stage in repo.index.stages
            if stage.path_in_repo == "dvc.yaml"
            for dep in stage.deps
            if str(dep.def_path).startswith(PACKAGE) and dep.changed_checksum()
        }
    assert stale == set(), "run `make pipeline` and commit dvc.lock"


def test_the_plots_dvc_shows_are_what_the_report_writes() -> None:
    import numpy as np

    images = [entry for entry in DVC_YAML["plots"] if isinstance(entry, str)]
    assert images == [f"reports/figures/{name}" for name in FIGURES]
    data = {
        file
        for entry in DVC_YAML["plots"]
        if isinstance(entry, dict)
        for plot in entry.values()
        for file in plot["y"]
    }
    y, probability = np.array([0, 1, 0, 1]), np.array([0.2, 0.7, 0.4, 0.9])
    assert data == {f"reports/plots/{name}" for name in curve_tables(y, probability)}


def test_the_pinned_md5_and_url_are_read_from_the_dvc_file(tmp_path: Path) -> None:
    pin = tmp_path / "raw.csv.dvc"
    pin.write_text("deps:\n- path: https://example.com/raw.csv\nouts:\n- md5: abc123\n")
    assert (read_pin(pin).md5, read_pin(pin).url) == ("abc123", "https://example.com/raw.csv")
    pin.write_text("outs: []\n")
    with pytest.raises(ArtifactError, match="no 'outs"):
        read_pin(pin)


def test_a_raw_file_that_is_not_the_pinned_version_is_refused(tmp_path: Path) -> None:
    raw = tmp_path / "raw.csv"
    raw.write_text("lead_id\n1\n")
    with pytest.raises(RawDataChangedError, match="is not the pinned 0566"):
        check_raw_data(raw, "05663184eaf8f324162e4d1bc14be387")
    assert check_raw_data(raw, "40232aeebe0a7ca28ae6065859a2e11d") == (
        "40232aeebe0a7ca28ae6065859a2e11d"
    )
    with pytest.raises(InputNotFoundError, match="make fetch"):
        check_raw_data(tmp_path / "absent.csv", "x")


class RunsACommand:
    """A pickle that runs a shell command when it is loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        import os

        return os.system, (f"touch {self.marker}",)


def test_the_validator_model_is_unpickled_only_once_its_checksum_matches(tmp_path: Path) -> None:
    import joblib

    path = save_verified(DummyClassifier().fit([[0], [1]], [0, 1]), tmp_path / "model.pkl")
    assert isinstance(load_validator_model(path), DummyClassifier)
    good = path.read_bytes()

    marker = tmp_path / "the-command-ran"
    joblib.dump(RunsACommand(marker), path)  # replaced, the manifest left as it was
    with pytest.raises(ArtifactError, match="checksum differs"):
        load_validator_model(path)
    assert not marker.exists()

    flipped = bytearray(good)
    flipped[len(flipped) // 2] ^= 0x01
    path.write_bytes(bytes(flipped))
    with pytest.raises(ArtifactError, match="checksum differs"):
        load_validator_model(path)
    with pytest.raises(InputNotFoundError, match=r"absent\.pkl: not found"):
        load_validator_model(tmp_path / "absent.pkl")


def test_a_missing_pipeline_output_names_the_stage_that_writes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lead_conversion_prediction.cli.errors import one_line
    from lead_conversion_prediction.config import Paths
    from lead_conversion_prediction.stages.features import run_features
    from lead_conversion_prediction.utils.storage import read_json

    monkeypatch.setenv("LCP_ROOT", str(tmp_path))
    leads = tmp_path / "data" / "interim" / "leads.csv"
    with pytest.raises(InputNotFoundError) as caught:  # the stage names the file only
        run_features(Paths(tmp_path), load_params(PROJ_ROOT / "params.yaml"))
    assert caught.value.hint == ""
    # The hint is built where the error is shown.
    shown = f"error: {leads}: not found; run 'lcp data' first (or 'dvc repro')"
    assert one_line(caught.value) == [shown]
    with pytest.raises(InputNotFoundError) as elsewhere:
        read_json(tmp_path / "elsewhere" / "metrics.json")
    assert one_line(elsewhere.value) == [f"error: {tmp_path}/elsewhere/metrics.json: not found"]
    given = InputNotFoundError(leads, "fetch it first")
    assert one_line(given) == [f"error: {leads}: not found; fetch it first"]


def test_a_validation_pair_of_different_lengths_is_refused(tmp_path: Path) -> None:
    (tmp_path / "X.csv").write_text("a\n1\n2\n")
    (tmp_path / "y.csv").write_text("lead_indicator\n1.0\n")
    with pytest.raises(DataContractError, match="has 1 rows but"):
        read_validation_pair(tmp_path / "X.csv", tmp_path / "y.csv")


def test_targets_that_are_not_one_column_of_0_and_1_are_named(tmp_path: Path) -> None:
    (tmp_path / "X.csv").write_text("a,b\n1,2\n2,3\n3,4\n")
    with pytest.raises(DataContractError, match=r"has 2 columns; the targets are one column"):
        read_validation_pair(tmp_path / "X.csv", tmp_path / "X.csv")  # the features as targets
    (tmp_path / "y.csv").write_text("lead_indicator\n1.0\n0.7\n0\n")
    with pytest.raises(DataContractError) as raised:
        read_validation_pair(tmp_path / "X.csv", tmp_path / "y.csv")
    assert str(raised.value) == (
        f"{tmp_path / 'y.csv'}: column 'lead_indicator': value 0.7 is not 0 or 1 at line 3"
    )
    (tmp_path / "y.csv").write_text("lead_indicator\n1.0\n0.0\n1\n")
    X, y = read_validation_pair(tmp_path / "X.csv", tmp_path / "y.csv")
    assert y.tolist() == [1, 0, 1] and len(X) == 3


@pytest.fixture(autouse=True)
def _no_stray_root(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Stages here get their root explicitly; a stray LCP_ROOT must not redirect anything."""
    monkeypatch.delenv("LCP_ROOT", raising=False)
    yield
