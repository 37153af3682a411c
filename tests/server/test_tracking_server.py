"""`lcp tracking-server`'s settings: refused with one line when wrong, never a secret in the
command line, the auth config readable by its owner only."""

from __future__ import annotations

import configparser
import os
import stat
from pathlib import Path

import pytest

from lead_conversion_prediction.config import Paths
from lead_conversion_prediction.exceptions import ConfigError
from lead_conversion_prediction.stages.tracking_server import (
    server_command,
    server_settings,
    write_auth_config,
)
from tests.registry_server import TrackingServer
from tests.support import run_lcp

PASSWORD = "an-admin-password-long-enough"
DATABASE = "postgresql://mlflow:db%password@127.0.0.1:5432/mlflow"


def settings_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    return {
        "MLFLOW_AUTH_ADMIN_PASSWORD": PASSWORD,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "a-secret-key",
        "MLFLOW_BACKEND_STORE_URI": DATABASE,
        "LCP_TRACKING_SERVER_DIR": str(tmp_path / "state"),
        **overrides,
    }


def test_the_settings_come_from_the_environment_with_their_defaults(tmp_path: Path) -> None:
    settings = server_settings(Paths(tmp_path), settings_env(tmp_path))
    assert settings.url == "http://127.0.0.1:5000"
    assert settings.auth_database_uri == settings.backend_store_uri == DATABASE
    assert settings.artifacts_destination == str(tmp_path / "state" / "artifacts")
    assert (settings.default_permission, settings.auth_cache_seconds) == ("READ", 60)
    command = server_command(settings)
    assert "--app-name" in command and "basic-auth" in command
    assert "--artifacts-destination" in command
    assert not [part for part in command if "password" in part or "secret" in part]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"MLFLOW_AUTH_ADMIN_PASSWORD": ""}, "MLFLOW_AUTH_ADMIN_PASSWORD is not set"),
        ({"MLFLOW_AUTH_ADMIN_PASSWORD": "short"}, "shorter than 12 characters"),
        ({"MLFLOW_FLASK_SERVER_SECRET_KEY": ""}, "MLFLOW_FLASK_SERVER_SECRET_KEY is not set"),
        ({"MLFLOW_BACKEND_STORE_URI": "sqlite:///x.db"}, "is not a PostgreSQL URI"),
        ({"LCP_AUTH_DEFAULT_PERMISSION": "ALL"}, "'ALL' is not one of"),
        ({"LCP_TRACKING_PORT": "http"}, "'http' is not a positive whole number"),
        ({"LCP_AUTH_CACHE_SECONDS": "-1"}, "not a whole number of seconds"),
    ],
)
def test_a_wrong_setting_is_refused_with_one_line(
    tmp_path: Path, overrides: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as refused:
        server_settings(Paths(tmp_path), settings_env(tmp_path, **overrides))
    assert "\n" not in str(refused.value) and PASSWORD not in str(refused.value)


def test_the_auth_config_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    settings = server_settings(Paths(tmp_path), settings_env(tmp_path, LCP_AUTH_CACHE_SECONDS="0"))
    path = write_auth_config(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    config = configparser.ConfigParser()
    config.read(path)
    assert config["mlflow"]["database_uri"] == DATABASE  # '%' survives ConfigParser
    assert config["mlflow"]["auth_cache_ttl_seconds"] == "0"
    assert PASSWORD not in path.read_text()


def test_the_command_refuses_a_missing_setting_with_exit_code_2(tmp_path: Path) -> None:
    result = run_lcp(
        "tracking-server",
        env={"LCP_ROOT": str(tmp_path)},
        unset=("MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"),
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: MLFLOW_AUTH_ADMIN_PASSWORD and MLFLOW_FLASK_SERVER_SECRET_KEY")


def test_the_running_server_starts_no_job_runner(tracking_server: TrackingServer) -> None:
    """MLflow's job runners are off unless asked for: the server's process group holds the
    server and its web workers only."""
    assert tracking_server.process is not None
    group = tracking_server.process.pid
    commands = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.getpgid(int(entry.name)) == group:
                commands.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, ProcessLookupError):
            continue  # gone meanwhile
    assert any("mlflow" in command for command in commands), commands
    assert not any("huey" in command for command in commands), commands
