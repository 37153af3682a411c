"""The GitHub workflow: triggers, job graph, pinned actions, the model artifact and validator."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagger
import pytest
import yaml

from lead_conversion_prediction.config import PROJ_ROOT
from lead_pipeline.main import LeadPipeline

WORKFLOW = PROJ_ROOT / ".github" / "workflows" / "ci.yml"
TOOLS = Path(sys.executable).parent
VALIDATOR = "lasselundstenjensen/itu-sdse-project-model-validator"
PINS = {
    "actions/checkout": "3d3c42e5aac5ba805825da76410c181273ba90b1",
    "actions/setup-python": "5fda3b95a4ea91299a34e894583c3862153e4b97",
    "actions/upload-artifact": "bbbca2ddaa5d8feaa63e36b76fdaad77386f024f",
    "iterative/setup-dvc": "2508d098217d24eef3c0e8d7bc0ce7b9ca0723c3",
    "dagger/dagger-for-github": "27b130bf0f79a7f6fbbbe0fbca6760dc9bb40a77",
    VALIDATOR: "8d884e9b3de5e363acae79b9a8e819adf55aa56d",
}


@pytest.fixture(scope="module")
def workflow() -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    return loaded


def steps(workflow: dict[Any, Any], job: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = workflow["jobs"][job]["steps"]
    return found


def using(workflow: dict[Any, Any], job: str, action: str) -> list[dict[str, Any]]:
    """The job's steps that use the given action."""
    return [step for step in steps(workflow, job) if step.get("uses", "").startswith(f"{action}@")]


def position(workflow: dict[Any, Any], job: str, text: str) -> int:
    """The index of the job's first step whose command, action or repository holds ``text``."""
    for index, step in enumerate(steps(workflow, job)):
        repository = step.get("with", {}).get("repository", "")
        if any(text in part for part in (step.get("run", ""), step.get("uses", ""), repository)):
            return index
    raise AssertionError(f"no step of {job} runs {text!r}")


def test_it_runs_on_pushes_and_pull_requests_to_main(workflow: dict[Any, Any]) -> None:
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert triggers == {"push": {"branches": ["main"]}, "pull_request": {"branches": ["main"]}}


def test_it_reads_only_and_cancels_superseded_runs(workflow: dict[Any, Any]) -> None:
    assert workflow["permissions"] == {"contents": "read"}
    assert all("permissions" not in job for job in workflow["jobs"].values())
    assert workflow["concurrency"]["cancel-in-progress"] is True
    assert "github.ref" in workflow["concurrency"]["group"]


def test_test_then_train_then_validate_each_with_a_timeout(workflow: dict[Any, Any]) -> None:
    jobs = workflow["jobs"]
    assert list(jobs) == ["test", "train", "validate"]
    assert "needs" not in jobs["test"]
    assert jobs["train"]["needs"] == "test"
    assert jobs["validate"]["needs"] == "train"
    assert all(0 < job["timeout-minutes"] <= 60 for job in jobs.values())


def test_every_action_is_pinned_by_commit_with_its_version_in_a_comment() -> None:
    uses = re.findall(r"uses: (\S+)@(\S+)(.*)", WORKFLOW.read_text(encoding="utf-8"))
    assert {action for action, _, _ in uses} == set(PINS)
    for action, ref, comment in uses:
        assert ref == PINS[action], action
        assert re.fullmatch(r" # \S+.*", comment), action


def test_every_checkout_drops_its_credentials(workflow: dict[Any, Any]) -> None:
    checkouts = [
        step for job in workflow["jobs"] for step in using(workflow, job, "actions/checkout")
    ]
    assert len(checkouts) == 3
    assert all(step["with"]["persist-credentials"] is False for step in checkouts)


def test_the_test_job_lints_and_tests_with_the_shared_data_laid_out(
    workflow: dict[Any, Any],
) -> None:
    (python,) = using(workflow, "test", "actions/setup-python")
    assert python["with"]["python-version"] == "3.11" and python["with"]["cache"] == "pip"
    order = [position(workflow, "test", text) for text in ("make install", "make lint")]
    layout = position(workflow, "test", 'shared="$RUNNER_TEMP/shared"')
    order += [
        position(workflow, "test", VALIDATOR),
        layout,
        position(workflow, "test", "make test"),
    ]
    assert order == sorted(order)

    (validator,) = using(workflow, "test", "actions/checkout")[1:]
    assert validator["with"]["repository"] == VALIDATOR
    assert validator["with"]["ref"] == PINS[VALIDATOR]
    script = steps(workflow, "test")[layout]["run"]
    for laid_out in ("$shared/data/raw_data.csv", "$shared/dvc-remote", "$shared/validator/"):
        assert laid_out in script
    test_step = steps(workflow, "test")[position(workflow, "test", "make test")]
    assert test_step["env"]["LCP_SHARED_DIR"] == "${{ runner.temp }}/shared"


def test_the_train_job_runs_the_modules_pipeline_and_uploads_the_model(
    workflow: dict[Any, Any],
) -> None:
    order = [
        position(workflow, "train", text)
        for text in ("iterative/setup-dvc", "dvc pull", "dagger/dagger-for-github", "tar -xf")
    ]
    assert order == sorted(order)

    (dagger_step,) = using(workflow, "train", "dagger/dagger-for-github")
    config = json.loads((PROJ_ROOT / "dagger.json").read_text(encoding="utf-8"))
    assert f"v{dagger_step['with']['version']}" == config["engineVersion"]
    assert dagger_step["with"]["verb"] == "call"
    function, *rest = dagger_step["with"]["args"].split()
    export = rest.index("export")
    flags = dict(zip(rest[:export:2], rest[1:export:2], strict=True))
    assert flags == {"--source": ".", "--dvc-remote": ".dvc/cache"}
    assert rest[export:] == ["export", "--path", "./models.tar"]

    called = getattr(LeadPipeline, function.replace("-", "_"))
    parameters = inspect.signature(called).parameters
    assert {flag[2:].replace("-", "_") for flag in flags} <= set(parameters)
    assert inspect.signature(called).return_annotation in (dagger.File, "dagger.File")

    uploads = using(workflow, "train", "actions/upload-artifact")
    assert [upload["with"]["name"] for upload in uploads] == ["model", "model-bundle"]
    model, bundle = (upload["with"]["path"] for upload in uploads)
    assert Path(model).name == "model.pkl" and "*" not in model  # one file: the artifact's root
    assert bundle == "models.tar"
    assert "model.pkl" in steps(workflow, "train")[order[-1]]["run"]


def test_the_validate_job_installs_xgboost_then_runs_the_pinned_validator(
    workflow: dict[Any, Any],
) -> None:
    (python,) = using(workflow, "validate", "actions/setup-python")
    assert python["with"]["python-version"] == "3.12"
    runtime = (PROJ_ROOT / "requirements.txt").read_text(encoding="utf-8").split()
    xgboost = next(pin for pin in runtime if pin.startswith("xgboost"))
    install = position(workflow, "validate", f"pip install {xgboost}")
    assert (
        install < position(workflow, "validate", VALIDATOR) == len(steps(workflow, "validate")) - 1
    )


def test_the_workflow_matches_githubs_schema() -> None:
    result = subprocess.run(
        [TOOLS / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", WORKFLOW],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing_to_fix() -> None:
    result = subprocess.run(
        [TOOLS / "zizmor", "--offline", "--no-progress", WORKFLOW],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout
