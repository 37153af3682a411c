"""The lead conversion pipeline in containers: the Makefile's `lcp` and `dvc` commands, chained.

Each function builds containers around the project's own command line and returns what it
writes; no step of the pipeline is implemented here. Requirements are installed before the
source is added, so a change to the code reuses the installed dependencies.
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
RAW_DATA_PIN = "data/raw/raw_data.csv.dvc"
RUNTIME_REQUIREMENTS = "requirements.txt"
DEV_REQUIREMENTS = "requirements-dev.txt"

# What `--source` leaves out: everything the host's .gitignore files ignore, so that only the
# project's own files reach the containers (Dagger does not read .gitignore here).
SOURCE_IGNORE = [
    ".git",
    ".venv",
    "**/__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".hypothesis",
    "*.egg-info",
    ".dvc/cache",
    ".dvc/tmp",
    ".dvc/config.local",
    "mlflow.db",
    "mlruns",
    "models.tar",
    "dvc_plots",
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
    "dagger/sdk",
    "dagger/.venv",
]

Source = Annotated[
    dagger.Directory,
    Doc("The project checkout (defaults to the repository root)"),
    DefaultPath("/"),
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
        "DVC downloads the raw data from the URL it was imported from"
    ),
]
RemoteSecret = Annotated[
    dagger.Secret | None,
    Doc("Credential of the DVC remote, given to DVC as --remote-secret-variable"),
]
RemoteSecretVariable = Annotated[
    str,
    Doc(
        "Environment variable DVC reads the credential from, e.g. AZURE_STORAGE_CONNECTION_STRING"
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
SharedData = Annotated[
    dagger.Directory,
    Doc(
        "The shared data folder the tests read: data/raw_data.csv, validator/X_test.csv, "
        "validator/y_test.csv and the DVC mirror dvc-remote/"
    ),
]


@dataclass(frozen=True)
class RawDataRemote:
    """Where DVC pulls the raw data from, and the credential it needs there."""

    directory: dagger.Directory | None = None
    url: str = ""
    secret: dagger.Secret | None = None
    secret_variable: str = ""


@object_type
class LeadPipeline:
    """Prepare the data, train, validate and test the lead conversion model in containers."""

    @function
    def pipeline(
        self,
        source: Source,
        dvc_remote: DvcRemote = None,
        remote_url: RemoteUrl = "",
        remote_secret: RemoteSecret = None,
        remote_secret_variable: RemoteSecretVariable = "",
    ) -> dagger.File:
        """Run every stage, chaining prepare-data and train, and return models/models.tar."""
        remote = _remote(dvc_remote, remote_url, remote_secret, remote_secret_variable)
        data = self._data_outputs(self._prepared(source, remote))
        models = self._models(self._trained(source, data))
        return (
            self._with_outputs(source, data, models)
            .with_exec(["lcp", "evaluate"])
            .with_exec(["lcp", "register"])
            .with_exec(["lcp", "package"])
            .with_exec(["lcp", "validate"])
            .file(f"{WORKDIR}/models/models.tar")
        )

    @function
    def prepare_data(
        self,
        source: Source,
        dvc_remote: DvcRemote = None,
        remote_url: RemoteUrl = "",
        remote_secret: RemoteSecret = None,
        remote_secret_variable: RemoteSecretVariable = "",
    ) -> dagger.Directory:
        """Pull the raw data with DVC, clean and split it: returns data/interim, data/processed."""
        remote = _remote(dvc_remote, remote_url, remote_secret, remote_secret_variable)
        return self._data_outputs(self._prepared(source, remote))

    @function
    def train(
        self,
        source: Source,
        data: PreparedData = None,
        dvc_remote: DvcRemote = None,
        remote_url: RemoteUrl = "",
        remote_secret: RemoteSecret = None,
        remote_secret_variable: RemoteSecretVariable = "",
    ) -> dagger.Directory:
        """Search the candidate models on prepare-data's output and return the models/ folder."""
        remote = _remote(dvc_remote, remote_url, remote_secret, remote_secret_variable)
        if data is None:
            data = self._data_outputs(self._prepared(source, remote))
        return self._models(self._trained(source, data))

    @function
    def predict(
        self,
        source: Source,
        data: PreparedData = None,
        models: Models = None,
        dvc_remote: DvcRemote = None,
        remote_url: RemoteUrl = "",
        remote_secret: RemoteSecret = None,
        remote_secret_variable: RemoteSecretVariable = "",
    ) -> dagger.File:
        """Check model.pkl's predictions as the course validator does; fails when they fail."""
        remote = _remote(dvc_remote, remote_url, remote_secret, remote_secret_variable)
        if data is None:
            data = self._data_outputs(self._prepared(source, remote))
        if models is None:
            models = self._models(self._trained(source, data))
        return (
            self._with_outputs(source, data, models)
            .with_exec(["lcp", "validate"])
            .file(f"{WORKDIR}/reports/validation.json")
        )

    @function
    def test(self, source: SourceWithGit, shared: SharedData) -> dagger.Container:
        """Run the test suite (pytest) against the shared data folder."""
        return (
            self._project(source, dev=True)
            .with_mounted_directory(SHARED_MOUNT, shared, read_only=True)
            .with_env_variable("LCP_SHARED_DIR", SHARED_MOUNT)
            .with_exec(["pytest"])
        )

    @function
    def lint(self, source: Source) -> dagger.Container:
        """Check style, formatting and types (ruff, mypy)."""
        return (
            self._project(source, dev=True)
            .with_exec(["ruff", "check", "."])
            .with_exec(["ruff", "format", "--check", "."])
            .with_exec(["mypy"])
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

    def _prepared(self, source: dagger.Directory, remote: RawDataRemote) -> dagger.Container:
        """The project after `make data features`: the raw data pulled, cleaned and split."""
        return (
            self._with_raw_data(self._project(source), remote)
            .with_exec(["lcp", "data"])
            .with_exec(["lcp", "features"])
        )

    def _with_raw_data(
        self, container: dagger.Container, remote: RawDataRemote
    ) -> dagger.Container:
        """Pull the raw data with DVC from the given remote, else from its upstream URL."""
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
                ["dvc", "remote", "add", "--local", "--force", "--default", "mirror", location]
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


def _remote(
    directory: dagger.Directory | None,
    url: str,
    secret: dagger.Secret | None,
    secret_variable: str,
) -> RawDataRemote:
    """Collect the DVC remote arguments; a secret needs the variable DVC reads it from."""
    if secret is not None and not secret_variable:
        raise ValueError("--remote-secret needs --remote-secret-variable")
    return RawDataRemote(directory, url, secret, secret_variable)
