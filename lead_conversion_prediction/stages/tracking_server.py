"""``lcp tracking-server``: the team's MLflow tracking server, on PostgreSQL, with basic-auth.

The command checks its settings and the database, writes the auth app's config, then replaces
itself with ``mlflow server`` (``exec``): signals reach MLflow, which stops its workers on
SIGTERM or Ctrl-C. Settings come from the environment:

- ``MLFLOW_AUTH_ADMIN_PASSWORD`` and ``MLFLOW_FLASK_SERVER_SECRET_KEY`` (required): the
  password of the admin user, made at the first start, and the key that signs the UI's forms.
- ``MLFLOW_BACKEND_STORE_URI``: the PostgreSQL database of runs and registry
  (``postgresql://mlflow@127.0.0.1:5432/mlflow``); its password in the URI, or in
  ``PGPASSWORD`` or ``~/.pgpass`` (libpq reads them).
- ``LCP_AUTH_DATABASE_URI``: the auth app's users and permissions (the same database by
  default: its tables and schema version are its own).
- ``MLFLOW_ARTIFACTS_DESTINATION``: where the server keeps artifacts, a folder or any URI MLflow
  supports (``tracking-server/artifacts`` of the project); clients upload and download through
  the server, so they need no storage credentials.
- ``LCP_TRACKING_HOST`` (``127.0.0.1``), ``LCP_TRACKING_PORT`` (``5000``),
  ``LCP_TRACKING_WORKERS`` (MLflow's default), ``LCP_AUTH_DEFAULT_PERMISSION`` (``READ``).
- ``LCP_AUTH_CACHE_SECONDS`` (``60``): how long a worker trusts a checked user and password.
  Checking a password hash costs tens of milliseconds of CPU by design, and a registration
  makes hundreds of requests; a password change or a deleted user reaches the other workers
  within this time. ``0`` checks every request.
- ``LCP_AUTH_MAX_FAILURES`` (``10``) and ``LCP_AUTH_LOCKOUT_SECONDS`` (``300``): wrong
  passwords allowed from one address within that time, after which it is refused until the
  oldest is that old; the project's other rules on top of MLflow's are in ``server_auth.py``.
- ``MLFLOW_SERVER_ENABLE_JOB_EXECUTION`` (``false``): MLflow's background job runners, which
  this project does not use; ``true`` starts them.
- ``LCP_TRACKING_SERVER_DIR``: the folder of the auth config (``tracking-server``), a file
  readable by its owner only since the database URI in it may hold a password.

Nothing here logs a password: URIs are shown without theirs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

from lead_conversion_prediction.config import Paths
from lead_conversion_prediction.exceptions import ConfigError, RegistryError
from lead_conversion_prediction.server_auth import LOCKOUT_ENV_VAR, MAX_FAILURES_ENV_VAR
from lead_conversion_prediction.utils.logging import MLFLOW_CONFIGURE_LOGGING
from lead_conversion_prediction.utils.secrets import redact_uri

REQUIRED = ("MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY")
MIN_PASSWORD = 12  # MLflow's auth app refuses shorter passwords
DEFAULT_AUTH_CACHE_SECONDS = "60"
DEFAULT_BACKEND = "postgresql://mlflow@127.0.0.1:5432/mlflow"
PERMISSIONS = ("READ", "USE", "EDIT", "MANAGE", "NO_PERMISSIONS")
AUTH_CONFIG = "basic_auth.ini"
JOB_EXECUTION = "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"  # MLflow's background job runners
# MLflow's basic-auth check, with the project's rules on top (``server_auth.py``).
AUTHORIZATION_FUNCTION = "lead_conversion_prediction.server_auth:authenticate"


@dataclass(frozen=True)
class ServerSettings:
    """What ``mlflow server`` is started with."""

    backend_store_uri: str
    auth_database_uri: str
    artifacts_destination: str
    host: str
    port: int
    workers: int | None
    default_permission: str
    admin_username: str
    state_dir: Path
    auth_cache_seconds: int = int(DEFAULT_AUTH_CACHE_SECONDS)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def server_settings(paths: Paths, environ: Mapping[str, str]) -> ServerSettings:
    """Read and check the settings; a missing or wrong one is a one-line error."""
    missing = [name for name in REQUIRED if not environ.get(name)]
    if missing:
        raise ConfigError(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: the "
            "tracking server's basic-auth app takes the admin's password and the Flask "
            "secret key from the environment"
        )
    if len(environ["MLFLOW_AUTH_ADMIN_PASSWORD"]) < MIN_PASSWORD:
        raise ConfigError(
            f"MLFLOW_AUTH_ADMIN_PASSWORD is shorter than {MIN_PASSWORD} characters: MLflow's "
            "auth app refuses it"
        )
    backend = environ.get("MLFLOW_BACKEND_STORE_URI") or DEFAULT_BACKEND
    auth = environ.get("LCP_AUTH_DATABASE_URI") or backend
    for variable, uri in (("MLFLOW_BACKEND_STORE_URI", backend), ("LCP_AUTH_DATABASE_URI", auth)):
        if not uri.startswith("postgresql"):
            raise ConfigError(
                f"{variable}: {redact_uri(uri)} is not a PostgreSQL URI "
                "(postgresql://USER@HOST:PORT/DATABASE)"
            )
    state = Path(environ.get("LCP_TRACKING_SERVER_DIR") or paths.root / "tracking-server")
    destination = environ.get("MLFLOW_ARTIFACTS_DESTINATION") or str(state / "artifacts")
    if "://" not in destination:
        destination = str(Path(destination).resolve())
    permission = environ.get("LCP_AUTH_DEFAULT_PERMISSION") or "READ"
    if permission not in PERMISSIONS:
        raise ConfigError(
            f"LCP_AUTH_DEFAULT_PERMISSION: '{permission}' is not one of {', '.join(PERMISSIONS)}"
        )
    workers = environ.get("LCP_TRACKING_WORKERS")
    cache = environ.get("LCP_AUTH_CACHE_SECONDS") or DEFAULT_AUTH_CACHE_SECONDS
    if not cache.isdigit():
        raise ConfigError(f"LCP_AUTH_CACHE_SECONDS: '{cache}' is not a whole number of seconds")
    for variable in (MAX_FAILURES_ENV_VAR, LOCKOUT_ENV_VAR):  # read by the server's workers
        if environ.get(variable):
            _number(variable, environ[variable])
    return ServerSettings(
        backend_store_uri=backend,
        auth_database_uri=auth,
        artifacts_destination=destination,
        host=environ.get("LCP_TRACKING_HOST") or "127.0.0.1",
        port=_number("LCP_TRACKING_PORT", environ.get("LCP_TRACKING_PORT") or "5000"),
        workers=_number("LCP_TRACKING_WORKERS", workers) if workers else None,
        default_permission=permission,
        admin_username=environ.get("MLFLOW_AUTH_ADMIN_USERNAME") or "admin",
        state_dir=state.resolve(),
        auth_cache_seconds=int(cache),
    )


def _number(variable: str, value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"{variable}: '{value}' is not a positive whole number")
    return int(value)


def check_database(uri: str) -> None:
    """Connect to the PostgreSQL database once: a missing one is a one-line error."""
    import psycopg

    from lead_conversion_prediction.modeling.tracking_check import CONNECT_SECONDS, _reason

    libpq = "postgresql://" + uri.split("://", 1)[1]  # postgresql+psycopg:// is SQLAlchemy's
    try:
        with psycopg.connect(libpq, connect_timeout=int(CONNECT_SECONDS)):
            pass
    except psycopg.Error as error:
        raise RegistryError(f"{redact_uri(uri)}: {_reason(error)}") from None


def write_auth_config(settings: ServerSettings) -> Path:
    """Write the auth app's config, readable by its owner only, and return its path."""
    import configparser
    import io

    config = configparser.ConfigParser()
    config["mlflow"] = {
        "default_permission": settings.default_permission,
        # ConfigParser reads '%' as interpolation: a password may hold one.
        "database_uri": settings.auth_database_uri.replace("%", "%%"),
        "admin_username": settings.admin_username,
        "authorization_function": AUTHORIZATION_FUNCTION,
        "auth_cache_ttl_seconds": str(settings.auth_cache_seconds),
    }
    text = io.StringIO()
    config.write(text)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    path = settings.state_dir / AUTH_CONFIG
    temporary = path.with_name(f".{AUTH_CONFIG}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text.getvalue())
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    path.chmod(0o600)  # an older file keeps its mode through os.replace: make sure
    return path


def server_command(settings: ServerSettings) -> list[str]:
    """The ``mlflow server`` command line: no secret in it (``ps`` shows it to everyone)."""
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        "--artifacts-destination",
        settings.artifacts_destination,
        "--app-name",
        "basic-auth",
    ]
    if settings.workers is not None:
        command += ["--workers", str(settings.workers)]
    return command


def run_tracking_server(paths: Paths) -> None:
    """Check, configure, then become ``mlflow server`` (never returns)."""
    settings = server_settings(paths, os.environ)
    check_database(settings.backend_store_uri)
    if settings.auth_database_uri != settings.backend_store_uri:
        check_database(settings.auth_database_uri)
    config = write_auth_config(settings)
    if "://" not in settings.artifacts_destination:
        Path(settings.artifacts_destination).mkdir(parents=True, exist_ok=True)
    environment = {
        **os.environ,
        # The store's URI goes through the environment, never the command line.
        "MLFLOW_BACKEND_STORE_URI": settings.backend_store_uri,
        "MLFLOW_AUTH_CONFIG_PATH": str(config),
        # MLflow's job runners (GenAI judges, trace roll-ups: three more processes of ~250 MB)
        # serve nothing this project logs; a team that wants them sets the variable to true.
        JOB_EXECUTION: os.environ.get(JOB_EXECUTION) or "false",
        MLFLOW_CONFIGURE_LOGGING: "true",  # the server logs as MLflow does, not as lcp
    }
    logger.info(
        "tracking-server: {} (store {}, artifacts {}, users in {})",
        settings.url,
        redact_uri(settings.backend_store_uri),
        redact_uri(settings.artifacts_destination),
        redact_uri(settings.auth_database_uri),
    )
    command = server_command(settings)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(command[0], command, environment)
