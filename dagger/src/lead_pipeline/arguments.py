"""The module's arguments: their types, defaults and the help `dagger call --help` shows."""

from typing import Annotated

import dagger
from dagger import DefaultPath, Doc, Ignore

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
        "The team's MLflow tracking server to register on (MLFLOW_TRACKING_URI), an address "
        "the engine's containers reach (not localhost); without it or --tracking-service, the "
        "run registers in a store of its own, new for each run"
    ),
]
TrackingService = Annotated[
    dagger.Service | None,
    Doc(
        "The tracking server as a Dagger service listening on port 5000 (e.g. tcp://localhost:"
        "5000 for the caller's own), reached as http://tracking:5000"
    ),
]
TrackingUsername = Annotated[
    str, Doc("The tracking server's user (MLFLOW_TRACKING_USERNAME); needs a tracking server")
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


Commit = Annotated[
    str,
    Doc(
        "The git commit of the source (e.g. $GITHUB_SHA), recorded in the registered version's "
        "lineage: the source reaches the containers without .git"
    ),
]
Lane = Annotated[str, Doc("The lane: unit, integration, spark, server, browser or faults")]
