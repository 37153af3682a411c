"""Check that the tracking store answers before a command relies on it: one line if it cannot.

A tracking server that is unreachable, that refuses the credentials, or a database that is
missing would otherwise surface deep inside MLflow, after minutes of retries or of training.
Each message names the URI without its password. A SQLite store whose file does not exist yet
holds nothing: the commands that only read it say so without opening it, since MLflow would
create the file (and its tables) on first use.
"""

from __future__ import annotations

import os
from pathlib import Path

from lead_conversion_prediction.exceptions import RegistryError
from lead_conversion_prediction.utils.secrets import redact_text, redact_uri

CONNECT_SECONDS = 10.0
ANSWER_SECONDS = 60.0
DATABASE_SCHEMES = ("postgresql", "mysql", "mssql")


def check_tracking_store(uri: str) -> None:
    """Raise :class:`RegistryError` (one line) unless the store at ``uri`` can be used."""
    if uri.startswith(("http://", "https://")):
        check_server(uri)
    elif uri.startswith(DATABASE_SCHEMES):
        check_database(uri)


def sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` tracking URI; None for any other store."""
    if not uri.startswith("sqlite:///"):
        return None
    name = uri.removeprefix("sqlite:///").split("?", 1)[0]
    return Path(name) if name not in ("", ":memory:") else None


def store_exists(uri: str) -> bool:
    """False only for a SQLite store whose file is not there yet: it holds nothing."""
    path = sqlite_file(uri)
    return path is None or path.exists()


def check_server(uri: str) -> None:
    """The tracking server answers an authenticated request."""
    import requests

    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD")
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    where = redact_uri(uri)
    try:
        answer = requests.get(
            f"{uri.rstrip('/')}/api/2.0/mlflow/experiments/search",
            params={"max_results": 1},
            auth=(user, password or "") if user else None,
            headers=headers,
            timeout=(CONNECT_SECONDS, ANSWER_SECONDS),
        )
    except requests.exceptions.Timeout:
        raise RegistryError(f"{where}: the tracking server did not answer in time") from None
    except requests.exceptions.RequestException as error:
        reason = _reason(error)
        raise RegistryError(f"{where}: cannot reach the tracking server ({reason})") from None
    if answer.status_code == 401:
        who = f"user '{user}'" if user else "no user (MLFLOW_TRACKING_USERNAME is not set)"
        raise RegistryError(
            f"{where}: the tracking server refused the credentials of {who} (401); "
            "check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
        )
    if answer.status_code == 403:
        raise RegistryError(f"{where}: user '{user}' may not read the tracking server (403)")
    if answer.status_code >= 400:
        text = " ".join(answer.text.split())[:200]
        raise RegistryError(
            f"{where}: the tracking server answered {answer.status_code}: {redact_text(text)}"
        )


def check_database(uri: str) -> None:
    """The database behind a tracking URI accepts a connection."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(uri, connect_args=_connect_args(uri))
    try:
        with engine.connect():
            pass
    except sqlalchemy.exc.SQLAlchemyError as error:
        raise RegistryError(f"{redact_uri(uri)}: {_reason(error)}") from None
    finally:
        engine.dispose()


def _connect_args(uri: str) -> dict[str, object]:
    return {"connect_timeout": int(CONNECT_SECONDS)} if uri.startswith("postgresql") else {}


def _reason(error: BaseException) -> str:
    """The gist of a driver's or client's error, on one line, without secrets."""
    cause: BaseException = getattr(error, "orig", None) or error
    text = " ".join(str(cause).split())
    for marker in ("FATAL:", "Failed to establish a new connection:", "error:"):
        if marker in text:
            # The tail of nested reprs, such as `...refused"))`, closes what was cut off.
            text = text.rsplit(marker, 1)[1].strip().rstrip("\"')")
    text = text.split(" (Background on this error")[0]
    return redact_text(text)[:300] or type(error).__name__
