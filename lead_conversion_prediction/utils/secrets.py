"""Keep secrets out of what the project prints and records: URIs lose their passwords.

A tracking URI or a database URI may carry a password (``http://user:pw@host``,
``postgresql://user:pw@host/db``, ``?password=...``). Every URI the project logs, prints in an
error or writes to a report goes through :func:`redact_uri`; free text that may quote one
(an error message of MLflow, of SQLAlchemy or of the HTTP client) goes through
:func:`redact_text`, which also blanks the values of the password variables themselves.
"""

from __future__ import annotations

import os
import re

# The variables whose values are secrets, wherever they might be quoted.
SECRET_VARIABLES = (
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_AUTH_ADMIN_PASSWORD",
    "MLFLOW_FLASK_SERVER_SECRET_KEY",
    "PGPASSWORD",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
)
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^:@/\s]*):[^@/\s]*@")
_QUERY_SECRET = re.compile(r"(?P<key>[?&;](?:password|passwd|pwd|token|secret)=)[^&;\s]*", re.I)
HIDDEN = "***"


def redact_uri(uri: str) -> str:
    """The URI without its password: ``http://ann:pw@host`` becomes ``http://ann@host``."""
    without = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}@", uri)
    return _QUERY_SECRET.sub(lambda m: f"{m['key']}{HIDDEN}", without)


def redact_text(text: str) -> str:
    """Free text with every URI's password and every known secret value blanked."""
    text = redact_uri(text)
    for name in SECRET_VARIABLES:
        value = os.environ.get(name, "")
        if len(value) >= 4:  # a very short value would blank innocent text, and guards little
            text = text.replace(value, HIDDEN)
    return text
