"""The Dagger module's inputs: the commit and tracking server a registration gets, refused in one
line when a container could not use them, and the facts the module repeats from the project."""

from __future__ import annotations

import json
import tomllib
from typing import Any

import dagger
import pytest
from dagger import dag

from lead_conversion_prediction.config import PROJ_ROOT
from lead_conversion_prediction.modeling.lineage import COMMIT_ENV_VAR
from lead_pipeline.environments import (
    APT_INSTALL,
    DAGGER_SDK_VERSION,
    DEVELOPMENT,
    LANES,
    POSTGRES_ADMIN_URI,
    POSTGRES_HOST,
    PYTHON_IMAGE,
    TEST_PACKAGES,
    UV_VERSION,
    project,
)
from lead_pipeline.inputs import COMMIT_VARIABLE, TRACKING_SERVICE_URI
from lead_pipeline.main import LeadPipeline
from tests.conftest import LANES as SUITE_LANES
from tests.unit.test_dagger_module import execs, make_module, selections, steps

SHA = "3f5a9c0d1e2b4a6c8d0e1f2a3b4c5d6e7f8a9b0c"


@pytest.fixture(scope="module")
def module() -> LeadPipeline:
    return make_module(source=dag.host().directory(str(PROJ_ROOT)))


def register_step(result: Any) -> Any:
    (register,) = [step for step in execs(result) if step.args == ("lcp", "register")]
    return register


def test_the_module_repeats_the_projects_facts_exactly() -> None:
    lock = tomllib.loads((PROJ_ROOT / "uv.lock").read_text(encoding="utf-8"))
    (uv,) = [package for package in lock["package"] if package["name"] == "uv"]
    assert uv["version"] == UV_VERSION
    config = json.loads((PROJ_ROOT / "dagger.json").read_text(encoding="utf-8"))
    assert config["engineVersion"] == f"v{DAGGER_SDK_VERSION}"
    assert tuple(SUITE_LANES) == LANES
    assert COMMIT_VARIABLE == COMMIT_ENV_VAR


def test_the_commit_reaches_the_register_step_alone(module: LeadPipeline) -> None:
    for result in (module.pipeline(commit=SHA), module.release(commit=SHA)):
        told = [step for step in execs(result) if COMMIT_VARIABLE in step.env]
        assert [step.args for step in told] == [("lcp", "register")]
        assert told[0].env[COMMIT_VARIABLE] == SHA
    assert COMMIT_VARIABLE not in register_step(module.pipeline()).env


@pytest.mark.parametrize(
    "commit", ["main", "HEAD~1", "3f5a9c0d1e2b4a6c8d0e1f2a3b4c5d6e7f8a9b0cX", "abc"]
)
def test_a_commit_that_is_not_a_hex_sha_is_refused_in_one_line(
    module: LeadPipeline, commit: str
) -> None:
    with pytest.raises(ValueError, match=r"^--commit .*: give a git commit's hex SHA$"):
        module.release(commit=commit)


@pytest.mark.parametrize(
    "uri",
    [
        "http://localhost:5000",
        "http://127.0.0.1:5000",
        "https://[::1]:5000",
        "http://mlflow.localhost",
    ],
)
def test_a_tracking_url_on_the_callers_loopback_is_refused_in_one_line(
    module: LeadPipeline, uri: str
) -> None:
    password = dag.set_secret("password", "not-a-real-password")
    with pytest.raises(ValueError) as refused:
        module.pipeline(tracking_uri=uri, tracking_username="ci", tracking_password=password)
    message = str(refused.value)
    assert "\n" not in message and "is the container itself" in message
    assert "--tracking-service" in message


def test_a_tracking_url_without_credentials_is_refused_in_one_line(module: LeadPipeline) -> None:
    password = dag.set_secret("password", "not-a-real-password")
    uri = "https://mlflow.example.internal"
    for given in ({}, {"tracking_username": "ci"}, {"tracking_password": password}):
        with pytest.raises(ValueError, match=r"^--tracking-uri .*: the container cannot log in "):
            module.release(tracking_uri=uri, **given)


def test_a_tracking_service_is_bound_to_the_register_step_under_its_name(
    module: LeadPipeline,
) -> None:
    server = dag.container().from_(PYTHON_IMAGE).with_exposed_port(5000).as_service()
    result = module.release(tracking_service=server, commit=SHA)
    register = register_step(result)
    assert register.env["MLFLOW_TRACKING_URI"] == TRACKING_SERVICE_URI
    bindings = [step.args for step in steps(result) if step.name == "withServiceBinding"]
    assert bindings == [{"alias": "tracking", "service": server}]
    with pytest.raises(ValueError, match="not both"):
        module.release(tracking_service=server, tracking_uri="https://mlflow.example.internal")


def test_the_test_container_has_debians_tools_and_postgresql_as_a_service(
    module: LeadPipeline,
) -> None:
    shared = dag.host().directory("../shared")
    result = module.test(shared, dag.host().directory(str(PROJ_ROOT)), lane="server")
    commands = [step.args for step in execs(result)]
    assert (*APT_INSTALL, *TEST_PACKAGES) in commands
    assert commands.index((*APT_INSTALL, *TEST_PACKAGES)) < commands.index(project(DEVELOPMENT))
    assert commands[-1] == ("pytest", "-m", "server")
    assert execs(result)[-1].env["LCP_TEST_POSTGRES_ADMIN_URI"] == POSTGRES_ADMIN_URI
    (binding,) = [step.args for step in steps(result) if step.name == "withServiceBinding"]
    assert binding["alias"] == POSTGRES_HOST
    service = binding["service"]
    assert isinstance(service, dagger.Service)
    assert [step.name for step in selections(service)][-2:] == ["withExposedPort", "asService"]
    database = [step.args for step in execs(service)]
    assert (*APT_INSTALL, "postgresql") in database
    assert {"openjdk-17-jre-headless", "chromium"} <= set(TEST_PACKAGES)
    with pytest.raises(ValueError, match=r"^--lane 'slow': one of unit, integration"):
        module.test(shared, dag.host().directory(str(PROJ_ROOT)), lane="slow")


def test_lint_type_checks_with_pyspark_installed(module: LeadPipeline) -> None:
    commands = [step.args for step in execs(module.lint())]
    assert project(DEVELOPMENT) in commands
    assert "spark" in DEVELOPMENT
    assert commands.index(project(DEVELOPMENT)) < commands.index(("mypy",))
    extras = tomllib.loads((PROJ_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert any(
        pin.startswith("pyspark==") for pin in extras["project"]["optional-dependencies"]["spark"]
    )
