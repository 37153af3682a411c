"""How each container gets its Python environment: uv, from the project's hashed uv.lock.

The commands are data, so that the tests replay exactly these into a folder of their own
(tests/integration/test_container_environments.py) and compare what they installed with the lock.
Every environment is `make install`'s: `uv sync --locked` into the project's .venv, the locked
dependencies first (from pyproject.toml and uv.lock alone, so a change to the code reuses them),
then the project itself, editable, once the source is in. The pipeline's containers take the
runtime alone (requirements.txt's set); lint and test take the dev group and the Spark extra too
(`make install spark`).
"""

from importlib import metadata

PYTHON_IMAGE = (
    "python:3.11.15-slim-bookworm"
    "@sha256:b18992999dbe963a45a8a4da40ac2b1975be1a776d939d098c647482bcad5cba"
)
WORKDIR = "/app"
# The project's environment where `make install` puts it: the Makefile's targets find it there.
VENV = f"{WORKDIR}/.venv"
# The image's PATH, with the environment first.
IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PATH = f"{VENV}/bin:{IMAGE_PATH}"
# uv.lock's uv (its dev group pins it; a unit test compares): the image's pip bootstraps it.
UV_VERSION = "0.13.9"
# The Dagger SDK of the engine (dagger.json), for the test container's dagger/.venv.
DAGGER_SDK_VERSION = metadata.version("dagger-io")
LOCK_FILES = ["pyproject.toml", "uv.lock"]

# One cache volume per tool, shared by every run of the module on an engine.
UV_CACHE = "/root/.cache/uv"
PIP_CACHE = "/root/.cache/pip"
CACHES = {UV_CACHE: "lead-pipeline-uv", PIP_CACHE: "lead-pipeline-pip"}

# What the containers are told: the environment's commands first; uv uses the image's Python,
# never one it downloads.
ENV = {
    "PATH": PATH,
    "VIRTUAL_ENV": VENV,
    "PYTHONUNBUFFERED": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PIP_ROOT_USER_ACTION": "ignore",
    "UV_PYTHON_DOWNLOADS": "never",
}

# The `uv sync` options of each environment.
RUNTIME = ("--no-dev",)
DEVELOPMENT = ("--extra", "spark")

BOOTSTRAP_UV = ("python", "-m", "pip", "install", f"uv=={UV_VERSION}")


def dependencies(options: tuple[str, ...]) -> tuple[str, ...]:
    """The locked dependencies of an environment, from pyproject.toml and uv.lock alone."""
    return ("uv", "sync", "--locked", "--python", "3.11", "--no-install-project", *options)


def project(options: tuple[str, ...]) -> tuple[str, ...]:
    """The same environment with the project installed, editable, from the source."""
    return ("uv", "sync", "--locked", "--python", "3.11", *options)


# The test container's system tools, from Debian: git and make for the DVC and workflow tests,
# Java 17 for Spark, Chromium for the browser lane, psql for the registry tests' database.
TEST_PACKAGES = ("git", "make", "openjdk-17-jre-headless", "chromium", "postgresql-client")
APT_UPDATE = ("apt-get", "update", "-qq")
APT_INSTALL = ("apt-get", "install", "--yes", "-qq", "--no-install-recommends")
# `make dagger-env`: the Dagger module's lock without the module and its generated SDK (with
# UV_PROJECT_ENVIRONMENT set to it), then the SDK from PyPI.
DAGGER_VENV = f"{WORKDIR}/dagger/.venv"
DAGGER_DEPENDENCIES = (
    "uv",
    "sync",
    "--frozen",
    "--python",
    "3.11",
    "--project",
    "dagger",
    "--no-install-project",
    "--no-install-package",
    "dagger-io",
)
DAGGER_SDK = (
    "uv",
    "pip",
    "install",
    "--no-deps",
    "--python",
    f"{DAGGER_VENV}/bin/python",
    f"dagger-io=={DAGGER_SDK_VERSION}",
)

# The test suite's lanes (tests/conftest.py's LANES), each run by `make test-lane LANE=...`.
LANES = ("unit", "integration", "spark", "server", "browser", "faults")
# PostgreSQL for the registry tests: Debian's, as a service the test container reaches under
# this name; it trusts the throw-away clients of its own network (no password to pass around).
POSTGRES_HOST = "postgres"
POSTGRES_PORT = 5432
POSTGRES_ADMIN_URI = f"postgresql://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}/postgres"
POSTGRES_HBA = "/etc/lcp-postgres/pg_hba.conf"
# Debian's cluster (bookworm's one version) in the foreground, on every address, with that file.
POSTGRES_SERVER = [
    "sh",
    "-c",
    'exec pg_ctlcluster --foreground "$(ls /etc/postgresql)" main start -o '
    f'"-c listen_addresses=* -c hba_file={POSTGRES_HBA}"',
]
