"""The lead conversion pipeline in containers: the Makefile's `lcp` and `dvc` commands, chained.

Each function builds containers around the project's own command line and returns what it
writes; no step of the pipeline is implemented here. Requirements are installed before the
source is added, so a change to the code reuses the installed dependencies. `monitor` alone
waits for a command: it reads `lcp monitor`'s exit code, since an alert (3) still returns its
report while an error fails the call.

The arguments every function shares (the checkout and where the raw data comes from) belong to
the module itself: `dagger call --source . --dvc-remote ../mirror pipeline ...`. Each function
also takes `--source` (`dagger call pipeline --source . ...`), which wins over the module's.
"""

from dataclasses import dataclass
from typing import Annotated

import dagger
from dagger import DefaultPath, Doc, Ignore, dag, function, object_type

PYTHON_IMAGE = (
    "python:3.11.15-slim-bookworm"
    "@sha256:b18992999dbe963a45a8a4da40ac2b1975be1a776d939d098c647482bcad5cba"
)
WORKDIR = "/app"
PIP_CACHE = "/root/.cache/pip"
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
RUNTIME_REQUIREMENTS = "requirements.txt"
DEV_REQUIREMENTS = "requirements-dev.txt"

# What `--source` leaves out: what the repository's .gitignore files ignore, so that only the
# project's own files reach the containers (Dagger does not read .gitignore here). Unlike a
# .gitignore line, an Ignore pattern is anchored at the root: `**/` makes it match at any
# depth, as the .gitignore lines without a leading slash do.
SOURCE_IGNORE = [
    ".git",
    # .gitignore
    "**/.venv",
    "**/__pycache__",
    "**/*.egg-info",
    "**/.pytest_cache",
    "**/.mypy_cache",
    "**/.ruff_cache",
    "**/.hypothesis",
    "**/.ipynb_checkpoints",
    "**/mlflow.db",
    "**/mlruns",
    "models.tar",
    "**/dvc_plots",
    "**/.lcp.lock",
    "**/*.lcp-tmp",
    "**/.lcp-commit",
    "tracking-server",
    "**/.cache",
    "site",
    # .dvc/.gitignore
    ".dvc/cache",
    ".dvc/tmp",
    ".dvc/config.local",
    ".dvc/plots-offline.html",
    # dagger/.gitignore (its .venv and __pycache__ are covered above)
    "dagger/sdk",
    # The pipeline's outputs (data/, models/ and reports/ .gitignore files)
    "data/raw/raw_data.csv",
    "data/interim/*",
    "!data/interim/.gitignore",
    "data/processed/*",
    "!data/processed/.gitignore",
    "models/*.joblib",
    "models/*.pkl",
    "models/*.json",
    "models/*.tar",
    "models/candidates",
    "models/SHA256SUMS",
    "reports/registry.json",
    "reports/figures",
    "reports/model_card.md",
    "reports/evaluation.json",
    "reports/plots",
    "reports/monitoring",
]

Source = Annotated[
    dagger.Directory,
    Doc("The project checkout (defaults to the repository root)"),
    DefaultPath("/"),
    Ignore(SOURCE_IGNORE),
]
SourceOverride = Annotated[
    dagger.Directory | None,
    Doc("The project checkout, instead of the module's --source"),
    Ignore(SOURCE_IGNORE),
]
# The test suite compares the checkout with git (`git ls-files`), so its source keeps .git.
SourceWithGit = Annotated[
    dagger.Directory,
    Doc("The project checkout with its .git folder (defaults to the repository root)"),
    DefaultPath("/"),
    Ignore([pattern for pattern in SOURCE_IGNORE if pattern != ".git"]),
]
DvcRemote = Annotated[
    dagger.Directory | None,
    Doc(
        "A local DVC remote or DVC cache folder holding the raw data's object, mounted "
        "read-only; takes precedence over --remote-url"
    ),
]
RemoteUrl = Annotated[
    str,
    Doc(
        "URL of the DVC remote to pull the raw data from; with neither this nor --dvc-remote, "
        "`lcp fetch` downloads the raw data from the URL it was imported from"
    ),
]
RemoteSecret = Annotated[
    dagger.Secret | None,
    Doc("Credential of the DVC remote, given to `lcp fetch` as --remote-secret-variable"),
]
RemoteSecretVariable = Annotated[
    str,
    Doc(
        "Environment variable DVC reads the credential from, e.g. AZURE_STORAGE_CONNECTION_STRING"
    ),
]
TrackingUri = Annotated[
    str,
    Doc(
        "The team's MLflow tracking server to register on (MLFLOW_TRACKING_URI); without it, "
        "the run registers in a store of its own, new for each run"
    ),
]
TrackingUsername = Annotated[
    str, Doc("The tracking server's user (MLFLOW_TRACKING_USERNAME); needs --tracking-uri")
]
TrackingPassword = Annotated[
    dagger.Secret | None,
    Doc(
        "The user's password (MLFLOW_TRACKING_PASSWORD), e.g. env:MLFLOW_TRACKING_PASSWORD; "
        "given to the register step alone"
    ),
]
PreparedData = Annotated[
    dagger.Directory | None,
    Doc("The output of prepare-data (data/interim and data/processed); prepared when omitted"),
]
Models = Annotated[
    dagger.Directory | None,
    Doc("The output of train (the models/ folder); trained when omitted"),
]
Batch = Annotated[
    dagger.File,
    Doc(
        "The batch to monitor: raw leads, or the scores lcp predict wrote for them (.csv, "
        ".csv.gz or .parquet: the format is read from the name)"
    ),
]
SharedData = Annotated[
    dagger.Directory,
    Doc(
        "The shared data folder the tests read: data/raw_data.csv, validator/X_test.csv, "
        "validator/y_test.csv and the DVC mirror dvc-remote/"
    ),
]


@dataclass(frozen=True)
class RawDataRemote:
    """Where `lcp fetch` pulls the raw data from, and the credential it needs there."""

    directory: dagger.Directory | None = None
    url: str = ""
    secret: dagger.Secret | None = None
    secret_variable: str = ""


@dataclass(frozen=True)
class TrackingServer:
    """The MLflow tracking server the register step uses, and its credentials."""

    uri: str = ""
    username: str = ""
    password: dagger.Secret | None = None


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

    @function
    def pipeline(
        self,
        source: SourceOverride = None,
        tracking_uri: TrackingUri = "",
        tracking_username: TrackingUsername = "",
        tracking_password: TrackingPassword = None,
    ) -> dagger.File:
        """Run every stage, chaining prepare-data and train, and return models/models.tar."""
        tracking = TrackingServer(tracking_uri, tracking_username, tracking_password)
        return self._finished(self._source(source), tracking).file(f"{WORKDIR}/models/models.tar")

    @function
    def report(
        self,
        source: SourceOverride = None,
        tracking_uri: TrackingUri = "",
        tracking_username: TrackingUsername = "",
        tracking_password: TrackingPassword = None,
    ) -> dagger.Directory:
        """Run every stage and return reports/: metrics, figures, model card, validation."""
        tracking = TrackingServer(tracking_uri, tracking_username, tracking_password)
        return self._finished(self._source(source), tracking).directory(f"{WORKDIR}/reports")

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
    def test(self, shared: SharedData, source: SourceWithGit) -> dagger.Container:
        """Run the unit lane of the test suite (make test-fast) against the shared data folder."""
        return (
            self._project(source, dev=True)
            .with_mounted_directory(SHARED_MOUNT, shared, read_only=True)
            .with_env_variable("LCP_SHARED_DIR", SHARED_MOUNT)
            .with_exec(["pytest", "-m", "unit"])
        )

    @function
    def lint(self, source: SourceOverride = None) -> dagger.Container:
        """Check style, formatting and types (ruff, mypy)."""
        return (
            self._project(self._source(source), dev=True)
            .with_exec(["ruff", "check", "."])
            .with_exec(["ruff", "format", "--check", "."])
            .with_exec(["mypy"])
        )

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

    def _python(self, source: dagger.Directory, dev: bool) -> dagger.Container:
        """Pinned Python with the project's requirements, installed before any source is added."""
        requirements = [RUNTIME_REQUIREMENTS, DEV_REQUIREMENTS] if dev else [RUNTIME_REQUIREMENTS]
        container = (
            dag.container()
            .from_(PYTHON_IMAGE)
            .with_env_variable("PYTHONUNBUFFERED", "1")
            .with_env_variable("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .with_env_variable("PIP_ROOT_USER_ACTION", "ignore")
        )
        if dev:
            # The DVC tests run `git init` and `dvc exp run`, which need git.
            container = container.with_exec(["apt-get", "update"]).with_exec(
                ["apt-get", "install", "--yes", "--no-install-recommends", "git"]
            )
        return (
            container.with_mounted_cache(PIP_CACHE, dag.cache_volume("lead-pipeline-pip"))
            .with_workdir(WORKDIR)
            .with_directory(WORKDIR, source, include=requirements)
            .with_exec(["python", "-m", "pip", "install", "-r", requirements[-1]])
        )

    def _project(self, source: dagger.Directory, dev: bool = False) -> dagger.Container:
        """The project installed editable in the workdir, as `make install` does."""
        return (
            self._python(source, dev)
            .with_directory(WORKDIR, source)
            .with_exec(["python", "-m", "pip", "install", "--no-deps", "-e", "."])
        )

    def _prepared(self, source: dagger.Directory) -> dagger.Container:
        """The project after `make data features`: the raw data fetched, cleaned and split."""
        return (
            self._with_raw_data(self._project(source), self._remote())
            .with_exec(["lcp", "data"])
            .with_exec(["lcp", "features"])
        )

    def _with_raw_data(
        self, container: dagger.Container, remote: RawDataRemote
    ) -> dagger.Container:
        """Fetch the raw data as `make data` does: from the given remote, else its URL."""
        # The source has no .git: DVC works without git only when told so.
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
        """`make monitor` on the batch, mounted read-only under its own name, whose suffix tells
        `lcp monitor` the format (CSV, gzipped CSV, Parquet).

        The command may exit with any code: an alert (3) is a result, with its report, not a
        failure of the step. The monitor function reads the exit code and fails on anything but
        0 and 3, so an error (2, no report) still fails the call, with `lcp monitor`'s message.
        """
        batch_folder = dag.directory().with_file(name, batch)
        command = ["lcp", "monitor", "--input", f"{BATCH_MOUNT}/{name}"]
        command += ["--model", MONITORED_MODEL, "--output", MONITORING]
        return project.with_mounted_directory(BATCH_MOUNT, batch_folder, read_only=True).with_exec(
            command, expect=dagger.ReturnType.ANY
        )

    def _finished(
        self, source: dagger.Directory, tracking: TrackingServer | None = None
    ) -> dagger.Container:
        """The project after every stage: evaluated, registered, packaged and validated.

        Without a tracking server, its MLflow store is the container's own, new for each run:
        the new version is the registry's only one. With one, the version is registered there,
        as a challenger (the champion moves only when the registry has none).
        """
        data = self._data_outputs(self._prepared(source))
        models = self._models(self._trained(source, data))
        evaluated = self._with_outputs(source, data, models).with_exec(["lcp", "evaluate"])
        return (
            self._registered(evaluated, tracking or TrackingServer())
            .with_exec(["lcp", "package"])
            .with_exec(VALIDATE)
        )

    def _registered(
        self, container: dagger.Container, tracking: TrackingServer
    ) -> dagger.Container:
        """`lcp register`, on the tracking server when one is given: its address, user and
        password reach this step alone (the password as a secret, never in the query)."""
        if not tracking.uri:
            if tracking.username or tracking.password is not None:
                raise ValueError("--tracking-username and --tracking-password need --tracking-uri")
            return container.with_exec(["lcp", "register"])
        variables = {"MLFLOW_TRACKING_URI": tracking.uri}
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
