"""The GitHub workflow's structure: triggers, job graph, the data, the artifacts, the validator.

Pinning by commit is zizmor's to check (``test_zizmor_finds_nothing_to_fix``); the workflow's
steps themselves run in tests/integration/test_workflow_run.py.
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from typing import Any

import dagger
import pytest
import yaml

from lead_conversion_prediction.config import PROJ_ROOT
from lead_pipeline.main import LeadPipeline
from tests.conftest import LANES

WORKFLOW = PROJ_ROOT / ".github" / "workflows" / "ci.yml"
VALIDATOR = "lasselundstenjensen/itu-sdse-project-model-validator"
DAGGER = "dagger/dagger-for-github"


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


def test_every_action_names_its_release_beside_its_commit() -> None:
    uses = re.findall(r"uses: (\S+)@(\S+)(.*)", WORKFLOW.read_text(encoding="utf-8"))
    assert uses
    for action, ref, comment in uses:
        assert re.fullmatch(r"[0-9a-f]{40}", ref), action
        assert re.fullmatch(r" # \S+.*", comment), action


def test_only_a_pull_requests_older_run_is_cancelled(workflow: dict[Any, Any]) -> None:
    """A push to main never cancels the run before it, which may be registering a model."""
    concurrency = workflow["concurrency"]
    assert concurrency["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"
    assert "github.ref" in concurrency["group"]


def test_run_steps_use_bash_with_pipefail(workflow: dict[Any, Any]) -> None:
    assert workflow["defaults"] == {"run": {"shell": "bash"}}
    shells = {step.get("shell") for job in workflow["jobs"] for step in steps(workflow, job)}
    assert shells == {None}


def test_every_checkout_drops_its_credentials(workflow: dict[Any, Any]) -> None:
    checkouts = [
        step for job in workflow["jobs"] for step in using(workflow, job, "actions/checkout")
    ]
    assert len(checkouts) == 5
    assert all(step["with"]["persist-credentials"] is False for step in checkouts)


def test_the_lanes_run_in_parallel_jobs_each_lane_once(workflow: dict[Any, Any]) -> None:
    """Lint and every lane of the suite (tests/conftest.py's LANES) run side by side: the test
    job's matrix gives each job a marker expression of its lanes for `make test-lane`."""
    assert "needs" not in workflow["jobs"]["lint"] and "needs" not in workflow["jobs"]["test"]
    assert [step.get("run") for step in steps(workflow, "lint")][-1] == "make lint"
    matrix = workflow["jobs"]["test"]["strategy"]
    assert matrix["fail-fast"] is False
    lanes = [lane for group in matrix["matrix"]["lanes"] for lane in group.split(" or ")]
    assert sorted(lanes) == sorted(LANES)
    test_step = steps(workflow, "test")[position(workflow, "test", "make test-lane")]
    assert test_step["run"] == 'make test-lane LANE="$LANES"'
    assert test_step["env"] == {
        "LCP_SHARED_DIR": "${{ runner.temp }}/shared",
        "LANES": "${{ matrix.lanes }}",
    }
    assert set(workflow["jobs"]["train"]["needs"]) == {"lint", "test"}


def test_the_test_jobs_test_with_the_shared_data_laid_out(workflow: dict[Any, Any]) -> None:
    (python,) = using(workflow, "test", "actions/setup-python")
    assert python["with"] == {"python-version": "3.11"}
    texts = ("make install spark", "make data/raw/raw_data.csv", VALIDATOR)
    order = [position(workflow, "test", text) for text in texts]
    layout = position(workflow, "test", 'shared="$RUNNER_TEMP/shared"')
    order += [layout, position(workflow, "test", "make test-lane")]
    assert order == sorted(order)

    (validator,) = using(workflow, "test", "actions/checkout")[1:]
    assert validator["with"]["repository"] == VALIDATOR
    (action,) = using(workflow, "validate", VALIDATOR)
    assert validator["with"]["ref"] == action["uses"].partition("@")[2], "the same commit"
    script = steps(workflow, "test")[layout]["run"]
    for laid_out in ("$shared/data/raw_data.csv", "$shared/dvc-remote", "$shared/validator/"):
        assert laid_out in script
    assert "cp -R .dvc/cache" in script, "the fetched file's DVC cache is the tests' mirror"


def test_every_job_that_installs_sets_up_the_locks_uv_with_its_cache(
    workflow: dict[Any, Any],
) -> None:
    for job in ("lint", "test", "validate"):
        (setup,) = using(workflow, job, "astral-sh/setup-uv")
        assert setup["with"]["version-file"] == "uv.lock", job
        assert setup["with"]["enable-cache"] is True, job
        installs = [
            index
            for index, step in enumerate(steps(workflow, job))
            if re.search(r"\bmake (lint|install)|uv sync", step.get("run", ""))
        ]
        assert installs and steps(workflow, job).index(setup) < installs[0], job
    assert using(workflow, "validate", "astral-sh/setup-uv")[0]["with"]["working-directory"] == (
        "project"
    )


def test_the_lint_job_builds_the_docs_site_strictly_and_uploads_it(
    workflow: dict[Any, Any],
) -> None:
    (upload,) = using(workflow, "lint", "actions/upload-artifact")
    assert upload["with"] == {"name": "docs-site", "path": "site", "if-no-files-found": "error"}
    build = position(workflow, "lint", "make site")
    assert build < steps(workflow, "lint").index(upload) < position(workflow, "lint", "make lint")
    makefile = (PROJ_ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = makefile.split("\nsite/index.html:")[1].split("\n\n")[0]
    assert "\tmkdocs build --strict --site-dir site " in recipe
    assert "--quiet" not in recipe, "strict mode counts no warning that --quiet hides"
    assert re.search(r"^lint: .*\bsite/index\.html\b", makefile, flags=re.MULTILINE)
    assert re.search(r"^site: site/index\.html$", makefile, flags=re.MULTILINE)
    config = yaml.safe_load((PROJ_ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert config["site_dir"] == "site" and config["theme"]["font"] is False


def test_the_raw_data_comes_through_lcp_fetch_with_no_remote_and_no_secret(
    workflow: dict[Any, Any],
) -> None:
    text = WORKFLOW.read_text(encoding="utf-8")
    assert "DVC_REMOTE" not in text
    # The one secret is the team registry's password, given to the Dagger calls alone.
    assert set(re.findall(r"secrets\.\w+", text)) == {"secrets.MLFLOW_TRACKING_PASSWORD"}
    assert "iterative/setup-dvc" not in text
    runs = [step.get("run", "") for job in workflow["jobs"] for step in steps(workflow, job)]
    assert not [run for run in runs if re.search(r"\bdvc (pull|remote)", run)]
    recipe = (PROJ_ROOT / "Makefile").read_text(encoding="utf-8").split("$(RAW_DATA):")[1]
    assert recipe.splitlines()[1].strip() == "lcp fetch"


REGISTRY_FLAGS = "${{ steps.registry.outputs.flags }}"
# The commit the run is on, given to the call (one word in the calls read below: COMMIT).
COMMIT = "${{ github.sha }}"


def dagger_call(step: dict[str, Any]) -> tuple[str, dict[str, str], list[str]]:
    """The function a dagger-for-github step calls, its flags, and what follows them."""
    config = json.loads((PROJ_ROOT / "dagger.json").read_text(encoding="utf-8"))
    assert f"v{step['with']['version']}" == config["engineVersion"]
    assert step["with"]["verb"] == "call" and "module" not in step["with"]
    # The registry's flags: none without the repository's variables (see the registry test).
    args = step["with"]["args"].replace(REGISTRY_FLAGS, "").replace(COMMIT, "COMMIT")
    function, *rest = args.split()
    export = rest.index("export")
    flags = dict(zip(rest[:export:2], rest[1:export:2], strict=True))
    return function, flags, rest[export:]


def test_the_train_job_makes_one_call_for_the_model_and_its_reports_and_uploads_them(
    workflow: dict[Any, Any],
) -> None:
    (release,) = using(workflow, "train", DAGGER)
    assert dagger_call(release) == (
        "release",
        {"--source": ".", "--commit": "COMMIT"},
        ["export", "--path", "./release"],
    )
    _, flags, _ = dagger_call(release)
    called = LeadPipeline.release
    parameters = inspect.signature(called).parameters
    assert {flag[2:].replace("-", "_") for flag in flags} <= set(parameters)
    annotation = inspect.signature(called).return_annotation
    assert annotation in (dagger.Directory, "dagger.Directory")

    order = [position(workflow, "train", text) for text in (DAGGER, "tar -xf")]
    assert order == sorted(order)
    uploads = using(workflow, "train", "actions/upload-artifact")
    assert [upload["with"]["name"] for upload in uploads] == ["model", "model-bundle", "report"]
    assert all(upload["with"]["if-no-files-found"] == "error" for upload in uploads)
    model, bundle, folder = (upload["with"]["path"] for upload in uploads)
    assert Path(model).name == "model.pkl" and "*" not in model  # one file: the artifact's root
    assert bundle == "release/models.tar" and folder == "release/reports"
    assert "release/models.tar" in steps(workflow, "train")[order[-1]]["run"]


def test_the_dagger_call_gets_the_registry_flags_and_only_the_password_secret(
    workflow: dict[Any, Any],
) -> None:
    choose = position(workflow, "train", "--tracking-uri $TRACKING_URI")
    step = steps(workflow, "train")[choose]
    assert step["id"] == "registry"
    assert step["env"] == {
        "TRACKING_URI": "${{ vars.MLFLOW_TRACKING_URI }}",
        "TRACKING_USERNAME": "${{ vars.MLFLOW_TRACKING_USERNAME }}",
    }
    calls = using(workflow, "train", DAGGER)
    assert all(REGISTRY_FLAGS in call["with"]["args"] for call in calls)
    assert all(
        call["env"] == {"MLFLOW_TRACKING_PASSWORD": "${{ secrets.MLFLOW_TRACKING_PASSWORD }}"}
        for call in calls
    )
    assert choose < position(workflow, "train", DAGGER)
    # No other step of any job sees a secret.
    others = [
        step
        for job in workflow["jobs"]
        for step in steps(workflow, job)
        if step not in calls and "secrets." in json.dumps(step)
    ]
    assert others == []


def test_the_validate_job_installs_the_runtime_verifies_then_pins_the_validators_packages(
    workflow: dict[Any, Any],
) -> None:
    (project,) = using(workflow, "validate", "actions/checkout")
    assert project["with"] == {"path": "project", "persist-credentials": False}
    (download,) = using(workflow, "validate", "actions/download-artifact")
    assert download["with"] == {"name": "model-bundle", "path": "bundle"}
    verify = position(workflow, "validate", "lcp verify bundle/models.tar")
    install = position(workflow, "validate", "uv sync --locked --no-dev")
    assert steps(workflow, "validate")[install]["working-directory"] == "project"
    assert install < verify and verify > steps(workflow, "validate").index(download)
    ours, python = using(workflow, "validate", "actions/setup-python")
    assert ours["with"]["python-version"] == "3.11" and python["with"]["python-version"] == "3.12"
    assert verify < steps(workflow, "validate").index(python)
    pin = position(workflow, "validate", "PIP_CONSTRAINT")
    script = steps(workflow, "validate")[pin]["run"]
    assert "uv export --frozen --no-dev" in script and '>> "$GITHUB_ENV"' in script
    for name in ("scikit-learn", "pandas", "numpy", "joblib", "xgboost-cpu"):
        assert name in script
    xgboost = position(workflow, "validate", "pip install xgboost-cpu")
    assert "==" not in steps(workflow, "validate")[xgboost]["run"], "the lock's version"
    last = len(steps(workflow, "validate")) - 1
    assert pin < steps(workflow, "validate").index(python) < xgboost
    assert xgboost < position(workflow, "validate", VALIDATOR) == last


MONITORING_PAGE = PROJ_ROOT / "docs" / "monitoring.md"


def docs_block(language: str, containing: str) -> str:
    """The monitoring page's first ``language`` code block that holds ``containing``."""
    text = MONITORING_PAGE.read_text(encoding="utf-8")
    blocks: list[str] = re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)
    found = [block for block in blocks if containing in block]
    assert found, f"no {language} block of {MONITORING_PAGE.name} holds {containing!r}"
    return found[0]


def test_the_docs_scheduled_monitoring_job_is_a_valid_workflow_that_fails_on_an_alert(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    text = docs_block("yaml", "schedule:")
    job = yaml.safe_load(text)
    assert job[True]["schedule"][0]["cron"]  # PyYAML reads the key `on` as True
    (run,) = [
        step["run"]
        for step in job["jobs"]["drift"]["steps"]
        if "lcp monitor" in step.get("run", "")
    ]
    assert "||" not in run and "; true" not in run  # its exit code (3 on an alert) is the job's
    path = tmp_path / "monitoring.yml"
    path.write_text(text, encoding="utf-8")
    tool = Path(sys.executable).with_name("check-jsonschema")
    checked = subprocess.run(
        [str(tool), "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    cron = docs_block("cron", "lcp monitor")
    assert cron.split()[:5] == ["0", "7", "*", "*", "1"] and "||" in cron  # mails on exit != 0
