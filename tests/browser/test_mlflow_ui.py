"""The MLflow UI of the project's environment shows the runs the pipeline logged.

`mlflow ui` of the environment running the tests (``python -m mlflow``) serves the store of a
real pipeline run. Its GraphQL endpoint must return a run (it answers 500 when graphene and
graphql-core do not match, and the run pages then show "Can't load run details"), and headless
Chromium must show the run's metrics on its page.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    browser_page,
    die_with_parent,
    free_port,
    start_lcp,
    stop_group,
    wait_until,
)
from tests.trained import PipelineRun

START_SECONDS = 240  # an idle machine needs about 5 s
PAGE_MILLISECONDS = 180_000  # an idle machine needs about 7 s
ERROR_BANNERS = re.compile("Can't load run details|Experiment load error")
QUERY = 'query { mlflowGetRun(input: {runId: "%s"}) { run { info { runId } } } }'


@dataclass(frozen=True)
class LoggedRun:
    experiment_id: str
    run_id: str
    metrics: dict[str, float]


@pytest.fixture(scope="module")
def logged_run(pipeline_run: PipelineRun) -> LoggedRun:
    """The pipeline's run with the most metrics (a candidate with its holdout scores)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=pipeline_run.tracking_uri)
    # The pipeline's experiment: other tests of this worker may have logged monitoring runs.
    (experiment,) = client.search_experiments(filter_string="name = 'lead-conversion'")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    assert runs, "the pipeline logged no run"
    run = max(runs, key=lambda each: len(each.data.metrics))
    assert run.data.metrics, "the pipeline logged no metric"
    return LoggedRun(run.info.experiment_id, run.info.run_id, dict(run.data.metrics))


@dataclass(frozen=True)
class Server:
    url: str
    log: Path

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:]


@pytest.fixture(scope="module")
def mlflow_ui(
    pipeline_run: PipelineRun, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """`mlflow ui` of this environment on a free loopback port, stopped with all it started."""
    folder = tmp_path_factory.mktemp("mlflow-ui")
    log = folder / "server.log"
    port = free_port()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "mlflow", "ui",
                "--backend-store-uri", pipeline_run.tracking_uri,
                "--host", "127.0.0.1",
                "--port", str(port),
                "--workers", "1",
            ],
            cwd=folder,
            # Background jobs (GenAI evaluations) have no part in showing runs.
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(f"{url}/health"), START_SECONDS, "mlflow ui", process, log)
        yield Server(url, log)
    finally:
        stop_group(process)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def post_json(url: str, body: dict[str, Any]) -> tuple[int, str]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def test_the_graphql_endpoint_returns_a_run(mlflow_ui: Server, logged_run: LoggedRun) -> None:
    status, text = post_json(f"{mlflow_ui.url}/graphql", {"query": QUERY % logged_run.run_id})
    assert status == 200, (
        f"/graphql answered {status}; the server's log ends:\n{mlflow_ui.log_tail()}"
    )
    answer = json.loads(text)
    assert not answer.get("errors"), answer["errors"]
    assert answer["data"]["mlflowGetRun"]["run"]["info"]["runId"] == logged_run.run_id


def test_the_run_page_shows_the_runs_metrics(
    mlflow_ui: Server, logged_run: LoggedRun, tmp_path: Path
) -> None:
    page_url = f"{mlflow_ui.url}/#/experiments/{logged_run.experiment_id}/runs/{logged_run.run_id}"
    with browser_page(tmp_path / "profile") as page:
        page.goto(page_url, timeout=PAGE_MILLISECONDS)
        heading = page.get_by_text(f"Metrics ({len(logged_run.metrics)})", exact=True)
        banner = page.get_by_text(ERROR_BANNERS)
        heading.or_(banner).first.wait_for(timeout=PAGE_MILLISECONDS)
        if banner.count():
            error = banner.first.locator("xpath=..").inner_text()
            pytest.fail(f"the run page shows an error: {' / '.join(error.splitlines())}")
        rows = [row.split("\n") for row in page.get_by_role("row").all_inner_texts()]

    shown = {cells[0]: cells[1] for cells in rows if cells and cells[0] in logged_run.metrics}
    assert shown.keys() == logged_run.metrics.keys()
    for key, value in logged_run.metrics.items():
        assert float(shown[key]) == pytest.approx(value, rel=1e-12), key


def test_the_link_lcp_mlflow_ui_prints_opens_the_runs_table(
    pipeline_run: PipelineRun, tmp_path: Path
) -> None:
    """A browser that never saw the UI (a fresh profile) opens the printed link: the runs
    table with the pipeline's run, not MLflow 3's GenAI overview."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=pipeline_run.tracking_uri)
    (experiment,) = client.search_experiments(filter_string="name = 'lead-conversion'")
    assert experiment.tags.get("mlflow.experimentKind") == "custom_model_development"
    parent = client.search_runs(
        [experiment.experiment_id], "tags.mlflow.parentRunId IS NULL", max_results=1
    )[0].info.run_name
    port, log = free_port(), tmp_path / "ui.log"
    env = {
        **os.environ,
        "LCP_ROOT": str(pipeline_run.root),
        "MLFLOW_TRACKING_URI": pipeline_run.tracking_uri,
    }
    process = start_lcp(["mlflow-ui", "--port", str(port)], env, log)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: answers(f"{url}/health"), START_SECONDS, "lcp mlflow-ui", process, log)
        (link,) = re.findall(r"open (http\S+)", log.read_text())
        assert (
            link
            == f"{url}/#/experiments/{experiment.experiment_id}/runs?workflowType=machine_learning"
        )
        with browser_page(tmp_path / "fresh-profile") as page:
            page.goto(link, timeout=PAGE_MILLISECONDS)
            page.get_by_text(parent, exact=True).first.wait_for(timeout=PAGE_MILLISECONDS)
            shown = page.inner_text("body")
    finally:
        stop_group(process)
    assert parent in shown
    assert "No data available" not in shown
