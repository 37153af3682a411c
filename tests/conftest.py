"""Shared fixtures: tiny lead frames built here, and the real data read from ``../shared``.

Each run gets a base temporary folder of its own (``--basetemp`` unless given), so that test
runs of other checkouts going on at the same time never prune or reuse this run's folders, as
they may under pytest's shared ``pytest-of-<user>`` folder. It is removed when the run passes
and kept, with its path printed, when it fails.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # as the lcp command line does
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

from tests.registry_server import (
    Checkout,
    PostgresDatabase,
    TrackingServer,
    checkouts_in,
    make_checkouts,
)
from tests.support import RAW_MD5, make_project, make_raw_leads, md5_of, shared_file
from tests.trained import PipelineRun, copy_of, once_per_run, pipeline_copy

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# The tests that import the Dagger SDK run in the Dagger module's environment.
pytest_plugins = ("tests.dagger_sdk",)

TESTS_DIR = Path(__file__).resolve().parent
# The lanes, each a folder of tests/ (CONTRIBUTING.md: "Tests"). A test is in the lane of its
# folder, unless it uses a fixture that needs a lane's service: then it is in that lane.
LANES = {
    "unit": "in-process, small frames: no pipeline run, JVM, database or browser",
    "integration": "the real commands on the real data",
    "spark": "Spark in local mode (a JVM)",
    "server": "the team's tracking server on PostgreSQL",
    "browser": "headless Chromium",
    "faults": "kills, tampering and concurrent runs on a trained project",
}
FIXTURE_LANES = {"spark": "spark", "tracking_server": "server"}
# The replay of the GitHub workflow: on GitHub (GITHUB_ACTIONS=true) the suite runs inside that
# workflow, whose jobs run for real, so it leaves the replay out (deselected, never skipped).
WORKFLOW_REPLAY = (
    "tests/integration/test_workflow_run.py::test_the_workflow_runs_job_by_job_on_a_fresh_clone"
)

OWN_BASETEMP = pytest.StashKey[Path]()
PASSED = pytest.StashKey[bool]()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    for lane, meaning in LANES.items():
        config.addinivalue_line("markers", f"{lane}: the {lane} lane: {meaning}")
    config.addinivalue_line(
        "markers",
        "long(seconds): a module that takes about that long on two busy cores; the longest "
        "are run first so that the pytest-xdist workers finish together",
    )
    if config.option.basetemp is None and not hasattr(config, "workerinput"):
        own = Path(tempfile.mkdtemp(prefix="lcp-pytest-"))
        config.stash[OWN_BASETEMP] = own
        config.option.basetemp = str(own / "run")


def lane_of(item: pytest.Item) -> str:
    """The lane of a test: that of a service its fixtures need, else that of its folder."""
    fixtures = getattr(item, "fixturenames", ())
    for fixture, lane in FIXTURE_LANES.items():
        if fixture in fixtures:
            return lane
    params = getattr(getattr(item, "callspec", None), "params", {})
    if params.get("tracking_store") == "server":
        return "server"
    folder = item.path.relative_to(TESTS_DIR).parts[0]
    if folder not in LANES:
        raise pytest.UsageError(f"{item.nodeid} is in no lane: tests live in {', '.join(LANES)}")
    return folder


def expected_seconds(item: pytest.Item) -> float:
    """How long the item's module takes, as its ``long`` marker says (0 without one)."""
    marker = item.get_closest_marker("long")
    return float(marker.kwargs["seconds"]) if marker is not None else 0.0


def inside_the_workflow(items: list[pytest.Item], env: Mapping[str, str]) -> list[pytest.Item]:
    """The items that replay the workflow this run is part of: none outside GitHub Actions."""
    if env.get("GITHUB_ACTIONS") != "true":
        return []
    return [item for item in items if item.nodeid == WORKFLOW_REPLAY]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if deselected := inside_the_workflow(items, os.environ):
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item not in deselected]
    for item in items:
        item.add_marker(getattr(pytest.mark, lane_of(item)))
    # Longest modules first (pytest-xdist hands out whole modules in this order, with
    # --no-loadscope-reorder): the workers then finish together, with no long module left
    # for one of them at the end. The sort is stable: a module's tests keep their order.
    items.sort(key=lambda item: -expected_seconds(item))


# Lanes whose tests share one service that is slow to start (each pytest-xdist worker starts
# its own): their modules go to one worker together, as one unit of work of ``--dist loadfile``.
SHARED_SERVICE_LANES = ("server",)


@pytest.hookimpl(tryfirst=True, optionalhook=True)  # the Dagger SDK's environment has no xdist
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile`` with the modules of each of ``SHARED_SERVICE_LANES`` as one unit:
    one tracking server (its MLflow start and schema migrations) for the run, not one per
    worker."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling  # type: ignore[import-untyped]

    class LaneFileScheduling(LoadFileScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            parts = Path(path).parts
            if len(parts) > 2 and parts[0] == TESTS_DIR.name and parts[1] in SHARED_SERVICE_LANES:
                return str(Path(*parts[:2]))
            return path

    return LaneFileScheduling(config, log)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[PASSED] = exitstatus in (
        pytest.ExitCode.OK,
        pytest.ExitCode.NO_TESTS_COLLECTED,
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    own = terminalreporter.config.stash.get(OWN_BASETEMP, None)
    if own is not None and not terminalreporter.config.stash.get(PASSED, False):
        terminalreporter.write_line(f"temporary files of this run kept in {own}")


def pytest_unconfigure(config: pytest.Config) -> None:
    own = config.stash.get(OWN_BASETEMP, None)
    if own is not None and config.stash.get(PASSED, False):
        shutil.rmtree(own, ignore_errors=True)


@pytest.fixture(scope="session")
def real_raw_data() -> Path:
    """The real raw lead file, read-only."""
    path = shared_file("data", "raw_data.csv")
    assert md5_of(path) == RAW_MD5, f"{path} is not the pinned raw data"
    return path


@pytest.fixture(scope="session")
def validator_pair() -> tuple[Path, Path]:
    """The course validator's own X_test.csv and y_test.csv."""
    return shared_file("validator", "X_test.csv"), shared_file("validator", "y_test.csv")


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory: pytest.TempPathFactory, real_raw_data: Path) -> PipelineRun:
    """The whole pipeline, run once per test run on the real data; this worker's copy."""
    return pipeline_copy(tmp_path_factory, "pipeline", real_raw_data)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty project root in a temporary folder, with LCP_ROOT and MLflow pointing there."""
    root = make_project(tmp_path / "project")
    monkeypatch.setenv("LCP_ROOT", str(root))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    yield root


@pytest.fixture
def make_leads() -> Callable[..., pd.DataFrame]:
    """Build a small raw lead frame: ``make_leads(n=60, seed=0)``."""
    return make_raw_leads


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """One local Spark session for the whole run: two cores, few shuffle partitions."""
    from lead_conversion_prediction.scoring import CHUNK_ROWS
    from lead_conversion_prediction.scoring.spark_session import spark_session

    with spark_session("local[2]", CHUNK_ROWS) as session:
        session.conf.set("spark.sql.shuffle.partitions", "4")
        yield session


@pytest.fixture(scope="session")
def tracking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackingServer]:
    """The team's registry: `lcp tracking-server` on a throw-away PostgreSQL database, with
    basic-auth, for the whole session; stopped and its database dropped afterwards."""
    database = PostgresDatabase().create()
    server = TrackingServer(tmp_path_factory.mktemp("tracking-server"), database)
    try:
        yield server.start()
    finally:
        server.stop()
        database.drop()


REGISTRY_STORES = ("sqlite", "server")


@pytest.fixture(params=REGISTRY_STORES)
def tracking_store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A registry store, empty of the lead model, and the environment of its clients: a SQLite
    file of this test, or the tracking server (as its admin). Returns the tracking URI.

    A test that needs one store only says ``@pytest.mark.parametrize("tracking_store",
    ["sqlite"], indirect=True)``.
    """
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    if request.param == "sqlite":
        uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        return uri
    server: TrackingServer = request.getfixturevalue("tracking_server")
    for name, value in server.client_environment().items():
        monkeypatch.setenv(name, value)
    for model in ("lead_model", "lead_model.promotion-lock"):
        server.delete_registered_model(model)
    return server.url


# The training labels of the checkouts below: the true outcome, one of its two causes alone,
# and noise: four models of clearly different quality.
CHECKOUT_LABELS = ("true", "blurred", "very blurred", "shuffled")


@pytest.fixture(scope="session")
def checkouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Checkout]:
    """Four checkouts of one small project, split alike, each with a model trained on labels
    of its own quality (``CHECKOUT_LABELS``), evaluated and validated: ready to register.
    Trained once per run; each worker registers from a copy of its own."""

    def build(base: Path) -> None:
        make_checkouts(base, CHECKOUT_LABELS)

    made = once_per_run(tmp_path_factory, "checkouts", build)
    names = [checkout.root.name for checkout in checkouts_in(made, CHECKOUT_LABELS)]
    copied = copy_of(made, tmp_path_factory.mktemp("checkouts"), *names)
    return {checkout.labels: checkout for checkout in checkouts_in(copied, CHECKOUT_LABELS)}
