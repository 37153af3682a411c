"""The lead conversion pipeline in containers: the Makefile's `lcp` and `dvc` commands, chained.

Each function builds containers around the project's own command line and returns what it
writes; no step of the pipeline is implemented here. Every container installs the project's
environment from uv.lock (environments.py) before the source is added, so a change to the code
reuses the installed dependencies. `monitor` alone
waits for a command: it reads `lcp monitor`'s exit code, since an alert (3) still returns its
report while an error fails the call.

The arguments every function shares (the checkout and where the raw data comes from) belong to
the module itself: `dagger call --source . --dvc-remote ../mirror pipeline ...`. Each function
also takes `--source` (`dagger call pipeline --source . ...`), which wins over the module's.
"""

from collections.abc import Callable
from typing import Any, TypeVar, cast

import dagger
from dagger import dag, function, object_type

from lead_pipeline.arguments import (
    Batch,
    Commit,
    DvcRemote,
    Lane,
    Models,
    PreparedData,
    RemoteSecret,
    RemoteSecretVariable,
    RemoteUrl,
    SharedData,
    Source,
    SourceOverride,
    SourceWithGit,
    TrackingPassword,
    TrackingService,
    TrackingUri,
    TrackingUsername,
)
from lead_pipeline.environments import (
    APT_INSTALL,
    APT_UPDATE,
    BOOTSTRAP_UV,
    CACHES,
    DAGGER_DEPENDENCIES,
    DAGGER_SDK,
    DAGGER_VENV,
    DEVELOPMENT,
    ENV,
    LANES,
    LOCK_FILES,
    POSTGRES_ADMIN_URI,
    POSTGRES_HBA,
    POSTGRES_HOST,
    POSTGRES_PORT,
    POSTGRES_SERVER,
    PYTHON_IMAGE,
    RUNTIME,
    TEST_PACKAGES,
    WORKDIR,
    dependencies,
    project,
)
from lead_pipeline.inputs import COMMIT_VARIABLE, TRACKING_HOST, RawDataRemote, TrackingServer

DVC_REMOTE_MOUNT = "/dvc-remote"
SHARED_MOUNT = "/shared"
# `make validate`: the course validator's check of the pipeline's own models/model.pkl.
VALIDATE = ["lcp", "validate", "--model", "models/model.pkl"]
# `make monitor MODEL=models/lead_model.joblib OUTPUT=reports/monitoring`: the trained model's
# file (a container has no registry) and the report folder; the batch is mounted in /batch.
MONITORED_MODEL = "models/lead_model.joblib"
MONITORING = "reports/monitoring"
BATCH_MOUNT = "/batch"
# `lcp monitor`'s exit codes with a report: 0 without an alert, 3 with one (2 is an error).
MONITOR_REPORTED = (0, 3)
# `make lint`'s checks of the project (pre-commit's hooks, the workflow's schema and zizmor);
# mypy checks the Spark modules against PySpark. The Dagger module's own mypy run needs the SDK's
# environment and stays with `make lint`.
WORKFLOW = ".github/workflows/ci.yml"
LINT = (
    ("ruff", "check", "."),
    ("ruff", "format", "--check", "."),
    ("mypy",),
    ("check-jsonschema", "--builtin-schema", "vendor.github-workflows", WORKFLOW),
    ("zizmor", "--offline", WORKFLOW),
    ("mkdocs", "build", "--strict", "--site-dir", "site"),
)
Function = TypeVar("Function", bound=Callable[..., Any])


def uncached(func: Function) -> Function:
    """``@function(cache="never")``: a function that registers a model runs on every call. (The
    SDK takes ``cache`` and registers it as the function's cache policy; its typed overloads of
    ``function`` leave it out.)"""
    register: Any = function
    return cast(Function, register(cache="never")(func))


class MonitoringError(RuntimeError):
    """`lcp monitor` stopped on an error (an exit code other than 0 and 3): no report."""


@object_type
class LeadPipeline:
    """Prepare the data, train, validate and test the lead conversion model in containers."""

    source: Source
    dvc_remote: DvcRemote = None
    remote_url: RemoteUrl = ""
    remote_secret: RemoteSecret = None
    remote_secret_variable: RemoteSecretVariable = ""

    @uncached
    def pipeline(
        self,
        source: SourceOverride = None,
        commit: Commit = "",
        tracking_uri: TrackingUri = "",
        tracking_username: TrackingUsername = "",
        tracking_password: TrackingPassword = None,
        tracking_service: TrackingService = None,
    ) -> dagger.File:
        """Run every stage once and return models/models.tar (registers: never cached)."""
        tracking = TrackingServer(
            tracking_uri, tracking_username, tracking_password, tracking_service, commit
        )
        return self._finished(self._source(source), tracking).file(f"{WORKDIR}/models/models.tar")

    @uncached
    def release(
        self,
        source: SourceOverride = None,
        commit: Commit = "",
        tracking_uri: TrackingUri = "",
        tracking_username: TrackingUsername = "",
        tracking_password: TrackingPassword = None,
        tracking_service: TrackingService = None,
    ) -> dagger.Directory:
        """Run every stage once; return models.tar and reports/ of that one model (uncached)."""
        tracking = TrackingServer(
            tracking_uri, tracking_username, tracking_password, tracking_service, commit
        )
        finished = self._finished(self._source(source), tracking)
        return (
            dag.directory()
            .with_file("models.tar", finished.file(f"{WORKDIR}/models/models.tar"))
            .with_directory("reports", finished.directory(f"{WORKDIR}/reports"))
        )

    @function
    def prepare_data(self, source: SourceOverride = None) -> dagger.Directory:
        """Fetch the raw data, clean and split it: returns data/interim and data/processed."""
        return self._data_outputs(self._prepared(self._source(source)))

    @function
    def train(self, data: PreparedData = None, source: SourceOverride = None) -> dagger.Directory:
        """Search the candidate models on prepare-data's output and return the models/ folder."""
        checkout = self._source(source)
        if data is None:
            data = self._data_outputs(self._prepared(checkout))
        return self._models(self._trained(checkout, data))

    @function
    def predict(
        self, data: PreparedData = None, models: Models = None, source: SourceOverride = None
    ) -> dagger.File:
        """Check model.pkl's predictions as the course validator does; fails when they fail."""
        checkout = self._source(source)
        if data is None:
            data = self._data_outputs(self._prepared(checkout))
        if models is None:
            models = self._models(self._trained(checkout, data))
        return (
            self._with_outputs(checkout, data, models)
            .with_exec(VALIDATE)
            .file(f"{WORKDIR}/reports/validation.json")
        )

    @function
    async def monitor(
        self,
        batch: Batch,
        data: PreparedData = None,
        models: Models = None,
        source: SourceOverride = None,
    ) -> dagger.Directory:
        """Check a batch for drift: returns reports/monitoring, alert or not; an error fails."""
        checkout = self._source(source)
        if data is None:
            data = self._data_outputs(self._prepared(checkout))
        if models is None:
            models = self._models(self._trained(checkout, data))
        monitored = self._monitored(
            self._with_outputs(checkout, data, models), batch, await batch.name()
        )
        code = await monitored.exit_code()
        if code not in MONITOR_REPORTED:
            # lcp reports an error it knows on `error: ` lines, anything else with a traceback.
            lines = (await monitored.stderr()).strip().splitlines() or ["no output"]
            told = [line for line in lines if line.startswith("error: ")] or lines[-1:]
            raise MonitoringError(f"`lcp monitor` exited with {code}: " + "\n".join(told))
        return monitored.directory(f"{WORKDIR}/{MONITORING}")

    @function
    def test(
        self, shared: SharedData, source: SourceWithGit, lane: Lane = "unit"
    ) -> dagger.Container:
        """Run one lane of the suite (make test-lane) with PostgreSQL, Java 17 and Chromium."""
        if lane not in LANES:
            raise ValueError(f"--lane {lane!r}: one of {', '.join(LANES)}")
        container = self._project(source, DEVELOPMENT, TEST_PACKAGES)
        container = (
            container.with_env_variable("UV_PROJECT_ENVIRONMENT", DAGGER_VENV)
            .with_exec(list(DAGGER_DEPENDENCIES))
            .without_env_variable("UV_PROJECT_ENVIRONMENT")
            .with_exec(list(DAGGER_SDK))
        )
        mirror = RawDataRemote(shared.directory("dvc-remote"))
        return (
            self._with_raw_data(container, mirror, has_git=True)
            .with_mounted_directory(SHARED_MOUNT, shared, read_only=True)
            .with_env_variable("LCP_SHARED_DIR", SHARED_MOUNT)
            .with_service_binding(POSTGRES_HOST, self._postgres())
            .with_env_variable("LCP_TEST_POSTGRES_ADMIN_URI", POSTGRES_ADMIN_URI)
            .with_exec(["pytest", "-m", lane])
        )

    @function
    def lint(self, source: SourceOverride = None) -> dagger.Container:
        """Check style, types, the CI workflow and the docs site, as make lint does."""
        container = self._project(self._source(source), DEVELOPMENT)
        for command in LINT:
            container = container.with_exec(list(command))
        return container

    def _source(self, override: dagger.Directory | None) -> dagger.Directory:
        """The function's own --source if given, else the module's."""
        return self.source if override is None else override

    def _remote(self) -> RawDataRemote:
        """The module's DVC remote arguments; a secret needs the variable DVC reads it from."""
        if self.remote_secret is not None and not self.remote_secret_variable:
            raise ValueError("--remote-secret needs --remote-secret-variable")
        return RawDataRemote(
            self.dvc_remote, self.remote_url, self.remote_secret, self.remote_secret_variable
        )

    def _python(
        self, source: dagger.Directory, options: tuple[str, ...], packages: tuple[str, ...] = ()
    ) -> dagger.Container:
        """The pinned image with uv and the locked dependencies (environments.py), installed
        before any source is added; Debian's ``packages`` first, when given."""
        container = dag.container().from_(PYTHON_IMAGE)
        for name, value in ENV.items():
            container = container.with_env_variable(name, value)
        if packages:
            container = container.with_exec(list(APT_UPDATE)).with_exec([*APT_INSTALL, *packages])
        for path, volume in CACHES.items():
            container = container.with_mounted_cache(path, dag.cache_volume(volume))
        return (
            container.with_exec(list(BOOTSTRAP_UV))
            .with_workdir(WORKDIR)
            .with_directory(WORKDIR, source, include=LOCK_FILES)
            .with_exec(list(dependencies(options)))
        )

    def _project(
        self,
        source: dagger.Directory,
        options: tuple[str, ...] = RUNTIME,
        packages: tuple[str, ...] = (),
    ) -> dagger.Container:
        """The project installed editable in the workdir, as `make install` does."""
        return (
            self._python(source, options, packages)
            .with_directory(WORKDIR, source)
            .with_exec(list(project(options)))
        )

    def _postgres(self) -> dagger.Service:
        """Debian's PostgreSQL, trusting the clients of its network, as a service."""
        return (
            dag.container()
            .from_(PYTHON_IMAGE)
            .with_exec(list(APT_UPDATE))
            .with_exec([*APT_INSTALL, "postgresql"])
            .with_new_file(POSTGRES_HBA, "local all all trust\nhost all all all trust\n")
            .with_exposed_port(POSTGRES_PORT)
            .as_service(args=POSTGRES_SERVER)
        )

    def _prepared(self, source: dagger.Directory) -> dagger.Container:
        """The project after `make data features`: the raw data fetched, cleaned and split."""
        return (
            self._with_raw_data(self._project(source), self._remote())
            .with_exec(["lcp", "data"])
            .with_exec(["lcp", "features"])
        )

    def _with_raw_data(
        self, container: dagger.Container, remote: RawDataRemote, has_git: bool = False
    ) -> dagger.Container:
        """Fetch the raw data as `make data` does: from the given remote, else its URL."""
        if not has_git:
            # DVC works without git only when told so.
            container = container.with_exec(["dvc", "config", "--local", "core.no_scm", "true"])
        location = remote.url
        if remote.directory is not None:
            container = container.with_mounted_directory(
                DVC_REMOTE_MOUNT, remote.directory, read_only=True
            )
            location = DVC_REMOTE_MOUNT
        if location:
            container = container.with_exec(
                [
                    "dvc",
                    "remote",
                    "add",
                    "--quiet",
                    "--local",
                    "--force",
                    "--default",
                    "mirror",
                    location,
                ]
            )
        if remote.secret is None:
            return container.with_exec(["lcp", "fetch"])
        return (
            container.with_secret_variable(remote.secret_variable, remote.secret)
            .with_exec(["lcp", "fetch"])
            .without_secret_variable(remote.secret_variable)
        )

    def _data_outputs(self, prepared: dagger.Container) -> dagger.Directory:
        """The prepared data folders, laid out as in the project."""
        return (
            dag.directory()
            .with_directory("data/interim", prepared.directory(f"{WORKDIR}/data/interim"))
            .with_directory("data/processed", prepared.directory(f"{WORKDIR}/data/processed"))
        )

    def _trained(self, source: dagger.Directory, data: dagger.Directory) -> dagger.Container:
        """The project after `make train`, on prepared data."""
        return self._project(source).with_directory(WORKDIR, data).with_exec(["lcp", "train"])

    def _models(self, trained: dagger.Container) -> dagger.Directory:
        """The models/ folder of a trained project."""
        return trained.directory(f"{WORKDIR}/models")

    def _with_outputs(
        self, source: dagger.Directory, data: dagger.Directory, models: dagger.Directory
    ) -> dagger.Container:
        """The project with prepared data and trained models in place."""
        return (
            self._project(source)
            .with_directory(WORKDIR, data)
            .with_directory(f"{WORKDIR}/models", models)
        )

    def _monitored(
        self, project: dagger.Container, batch: dagger.File, name: str
    ) -> dagger.Container:
        """`make monitor` on the batch, mounted read-only under its own name (its suffix tells
        the format); any exit code ends the step: `monitor` tells an alert (3) from an error."""
        batch_folder = dag.directory().with_file(name, batch)
        command = ["lcp", "monitor", "--input", f"{BATCH_MOUNT}/{name}"]
        command += ["--model", MONITORED_MODEL, "--output", MONITORING]
        return project.with_mounted_directory(BATCH_MOUNT, batch_folder, read_only=True).with_exec(
            command, expect=dagger.ReturnType.ANY
        )

    def _finished(self, source: dagger.Directory, tracking: TrackingServer) -> dagger.Container:
        """The project after every stage, evaluated, registered, packaged and validated: in the
        container's own MLflow store (new for each run) unless a tracking server is given, where
        the version is a challenger (the champion moves only when the registry has none)."""
        tracking = tracking.checked()
        data = self._data_outputs(self._prepared(source))
        models = self._models(self._trained(source, data))
        evaluated = self._with_outputs(source, data, models).with_exec(["lcp", "evaluate"])
        return (
            self._registered(evaluated, tracking).with_exec(["lcp", "package"]).with_exec(VALIDATE)
        )

    def _registered(
        self, container: dagger.Container, tracking: TrackingServer
    ) -> dagger.Container:
        """`lcp register`, on the tracking server when one is given: its address, user and
        password reach this step alone (the password as a secret, never in the query), as does
        the commit its lineage records."""
        variables = {COMMIT_VARIABLE: tracking.commit} if tracking.commit else {}
        if tracking.service is not None:
            container = container.with_service_binding(TRACKING_HOST, tracking.service)
        if tracking.uri:
            variables["MLFLOW_TRACKING_URI"] = tracking.uri
        if tracking.username:
            variables["MLFLOW_TRACKING_USERNAME"] = tracking.username
        for name, value in variables.items():
            container = container.with_env_variable(name, value)
        if tracking.password is not None:
            container = container.with_secret_variable(
                "MLFLOW_TRACKING_PASSWORD", tracking.password
            )
        container = container.with_exec(["lcp", "register"])
        if tracking.password is not None:
            container = container.without_secret_variable("MLFLOW_TRACKING_PASSWORD")
        for name in variables:
            container = container.without_env_variable(name)
        return container
