"""The tracking server's gate: MLflow's basic-auth, with the project's four rules on top.

``lcp tracking-server`` names :func:`authenticate` as the auth app's ``authorization_function``.
MLflow calls it first for every protected request (``mlflow.server.auth._before_request``),
before its own permission checks, and again wherever it needs the request's user. It checks the
password as MLflow's own function does, then:

- **Repeated failures are refused for a while.** After ``LCP_AUTH_MAX_FAILURES`` (10) wrong
  passwords from one address within ``LCP_AUTH_LOCKOUT_SECONDS`` (300), that address gets 429
  with ``Retry-After`` until the oldest failure is that old, without a password being checked.
  Each server worker counts on its own: N workers allow N times as many.
- **An unknown user costs what a wrong password costs.** A name that does not exist is checked
  against a dummy hash of the same kind, so the answer's time does not tell which names exist.
- **Only admins list users.** MLflow lets any member list every user and their grants.
- **Only a user who may change a model may take or break its registry lock**
  (``modeling/registry_lock.py``): creating, deleting or tagging ``<model>.promotion-lock``
  needs EDIT or MANAGE on ``<model>``, and such a user is given MANAGE on the lock's name, so an
  editor can release or break a lock another editor took (``lcp unlock``). Without this, any
  user may create the lock and lock the team out.

MLflow's native FastAPI routes (traces, gateway, jobs) authenticate on their own path and do
not pass here; the registry and the runs do.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections import defaultdict, deque
from functools import cache
from typing import Any

from lead_conversion_prediction.modeling.registry_lock import LOCK_SUFFIX

MAX_FAILURES_ENV_VAR = "LCP_AUTH_MAX_FAILURES"
LOCKOUT_ENV_VAR = "LCP_AUTH_LOCKOUT_SECONDS"
DEFAULT_MAX_FAILURES = 10
DEFAULT_LOCKOUT_SECONDS = 300
_LOCK_ROUTES = (
    "/mlflow/registered-models/create",
    "/mlflow/registered-models/delete",
    "/mlflow/registered-models/update",
    "/mlflow/registered-models/rename",
    "/mlflow/registered-models/set-tag",
    "/mlflow/registered-models/delete-tag",
)
_DONE = "lcp_authenticated"  # set on flask.g once a request has passed


class FailureCounter:
    """Wrong passwords per address within a sliding window; thread-safe."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._guard = threading.Lock()

    def wait_left(self, address: str, now: float) -> float:
        """Seconds until ``address`` may try again: 0 when it may now."""
        with self._guard:
            failures = self._failures.get(address)
            if failures is None:
                return 0.0
            while failures and now - failures[0] >= self.window:
                failures.popleft()
            if not failures:
                del self._failures[address]
                return 0.0
            return self.window - (now - failures[0]) if len(failures) >= self.limit else 0.0

    def failed(self, address: str, now: float) -> None:
        with self._guard:
            self._failures[address].append(now)


def limits(environ: Any = os.environ) -> tuple[int, int]:
    """The failures allowed and the lockout window, from the environment (checked by the
    server command before it starts)."""
    failures = environ.get(MAX_FAILURES_ENV_VAR) or str(DEFAULT_MAX_FAILURES)
    seconds = environ.get(LOCKOUT_ENV_VAR) or str(DEFAULT_LOCKOUT_SECONDS)
    return int(failures), int(seconds)


@cache
def _counter() -> FailureCounter:
    failures, seconds = limits()
    return FailureCounter(failures, float(seconds))


@cache
def _dummy_hash() -> str:
    """A password hash of the kind MLflow stores, of no one's password."""
    from werkzeug.security import generate_password_hash

    return generate_password_hash(secrets.token_urlsafe(24))


def authenticate() -> Any:
    """The auth app's ``authorization_function``: an ``Authorization``, or the answer to send."""
    from flask import g, request
    from mlflow.server.auth import authenticate_request_basic_auth
    from werkzeug.datastructures import Authorization

    if g.get(_DONE):
        return request.authorization
    address = request.remote_addr or "?"
    wait = _counter().wait_left(address, time.monotonic())
    if wait > 0:
        return _answer(429, "Too many failed logins; try again later.", wait)
    result = authenticate_request_basic_auth()
    if not isinstance(result, Authorization):
        if request.authorization is not None:
            _equal_time(request.authorization.username or "")
            _counter().failed(address, time.monotonic())
        return result
    setattr(g, _DONE, True)
    refusal = _project_rules(result.username or "", request)
    return result if refusal is None else refusal


def _equal_time(username: str) -> None:
    """Spend on an unknown name what checking a known user's password spends."""
    from mlflow.server.auth import store
    from werkzeug.security import check_password_hash

    if not store.has_user(username):
        check_password_hash(_dummy_hash(), secrets.token_urlsafe(12))


def _project_rules(username: str, request: Any) -> Any:
    """403 for what the project forbids beyond MLflow's checks; None to let MLflow decide."""
    from mlflow.server.auth import sender_is_admin

    path = request.path
    if sender_is_admin():
        return None
    if path.endswith("/mlflow/users/list"):
        return _answer(403, "Permission denied")
    if path.endswith(_LOCK_ROUTES):
        name = _request_name(request)
        if name.endswith(LOCK_SUFFIX):
            return _lock_rule(username, name)
    return None


def _request_name(request: Any) -> str:
    if request.method == "GET":
        return str(request.args.get("name", ""))
    body = request.get_json(silent=True)
    if isinstance(body, dict) and body.get("name"):
        return str(body["name"])
    return str(request.args.get("name", ""))


def _lock_rule(username: str, lock: str) -> Any:
    """A lock of ``<model>``: only EDIT or MANAGE on ``<model>``, and those may break it."""
    from mlflow.exceptions import MlflowException
    from mlflow.server.auth import _get_registered_model_permission, store
    from mlflow.server.auth.permissions import MANAGE

    model = lock.removesuffix(LOCK_SUFFIX)
    try:
        allowed = _get_registered_model_permission(model).can_update
    except MlflowException:
        allowed = False
    if not allowed:
        return _answer(403, f"Permission denied: the lock of '{model}' needs EDIT on it")
    store.grant_user_permission(username, "registered_model", lock, MANAGE.name)
    return None


def _answer(status: int, text: str, retry_after: float = 0.0) -> Any:
    from flask import make_response

    response = make_response(text)
    response.status_code = status
    if retry_after:
        response.headers["Retry-After"] = str(max(1, round(retry_after)))
    return response
