"""The tracking server's own rules on top of MLflow's basic-auth (``server_auth.py``), by real
HTTP calls to ``lcp tracking-server``: only admins list users, an unknown name is answered as
slowly as a wrong password, an address that keeps failing is refused for a while, and only a
user who may change a model may take or break its registry lock.

Wrong passwords count against the address they come from, and every other test reaches the
server from 127.0.0.1: these tests send theirs from other loopback addresses.
"""

from __future__ import annotations

import secrets
import statistics
import time
from typing import Any

import pytest

from lead_conversion_prediction.modeling.registry_lock import HOLDER_TAG, lock_name
from lead_conversion_prediction.server_auth import DEFAULT_MAX_FAILURES
from tests.registry_server import TrackingServer

pytestmark = pytest.mark.long(seconds=30)

MODEL = "lead_model_auth_rules"  # a model of these tests alone
LOCK = lock_name(MODEL)


def from_address(address: str) -> Any:
    """A requests session whose connections leave from ``address`` (a loopback one)."""
    import requests
    from requests.adapters import HTTPAdapter

    class Bound(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            kwargs["source_address"] = (address, 0)
            super().init_poolmanager(*args, **kwargs)

    session = requests.Session()
    session.mount("http://", Bound())
    return session


def user(server: TrackingServer, name: str, permission: str | None = None) -> tuple[str, str]:
    """A new user (with ``permission`` on MODEL); its name and password."""
    password = secrets.token_urlsafe(18)
    server.create_user(name, password)
    if permission is not None:
        server.grant(name, MODEL, permission)
    return name, password


@pytest.fixture(scope="module")
def server(tracking_server: TrackingServer) -> TrackingServer:
    for name in (MODEL, LOCK):
        tracking_server.delete_registered_model(name)
    answer = tracking_server.api("POST", "2.0/mlflow/registered-models/create", name=MODEL)
    assert answer.status_code == 200, answer.text
    return tracking_server


def test_only_an_admin_lists_the_users(server: TrackingServer) -> None:
    reader = user(server, "lister", "READ")
    for path in ("2.0/mlflow/users/list", "3.0/mlflow/users/list"):
        refused = server.api("GET", path, auth=reader)
        assert refused.status_code in (403, 404), (path, refused.status_code)
    assert server.api("GET", "2.0/mlflow/users/list", auth=reader).status_code == 403
    listed = server.api("GET", "2.0/mlflow/users/list")
    assert listed.status_code == 200 and "lister" in listed.text


def test_an_unknown_name_is_answered_as_slowly_as_a_wrong_password(
    server: TrackingServer,
) -> None:
    """Timed from one address, alternately, fewer times than the lockout allows."""
    known, _ = user(server, "timed")
    session = from_address("127.0.0.3")
    url = f"{server.url}/api/2.0/mlflow/experiments/search"
    seconds: dict[str, list[float]] = {"known": [], "unknown": []}
    for _ in range((DEFAULT_MAX_FAILURES - 1) // 2):
        for kind, name in (("known", known), ("unknown", f"nobody-{secrets.token_hex(4)}")):
            started = time.perf_counter()
            answer = session.get(url, auth=(name, "wrong-password"), params={"max_results": 1})
            seconds[kind].append(time.perf_counter() - started)
            assert answer.status_code == 401
    # Without the rule an unknown name took a quarter of a wrong password's time.
    ratio = statistics.median(seconds["unknown"]) / statistics.median(seconds["known"])
    assert ratio > 0.6, seconds


def test_an_address_that_keeps_failing_is_refused_for_a_while(server: TrackingServer) -> None:
    name, password = user(server, "guesser")
    session = from_address("127.0.0.2")
    url = f"{server.url}/api/2.0/mlflow/experiments/search"
    in_a_row = attempts = 0
    # Each server worker counts its own failures: fail until every one refuses.
    while in_a_row < 20:
        attempts += 1
        assert attempts < 200, "never refused"
        answer = session.get(url, auth=(name, "wrong-password"), params={"max_results": 1})
        assert answer.status_code in (401, 429)
        in_a_row = in_a_row + 1 if answer.status_code == 429 else 0
    assert int(answer.headers["Retry-After"]) > 0
    for _ in range(5):  # the right password too, from that address
        right = session.get(url, auth=(name, password), params={"max_results": 1})
        assert right.status_code == 429
    other = from_address("127.0.0.4").get(url, auth=(name, password), params={"max_results": 1})
    assert other.status_code == 200, "another address is not refused"


def test_only_who_may_change_the_model_takes_or_breaks_its_lock(server: TrackingServer) -> None:
    reader = user(server, "squatter", "READ")
    editor, other_editor = user(server, "editor1", "EDIT"), user(server, "editor2", "EDIT")
    tags = [{"key": HOLDER_TAG, "value": "{}"}]
    squat = server.api("POST", "2.0/mlflow/registered-models/create", auth=reader, name=LOCK)
    assert squat.status_code == 403, squat.text
    assert server.api("GET", "2.0/mlflow/registered-models/get", name=LOCK).status_code == 404

    taken = server.api(
        "POST", "2.0/mlflow/registered-models/create", auth=editor, name=LOCK, tags=tags
    )
    assert taken.status_code == 200, taken.text
    refused = server.api("DELETE", "2.0/mlflow/registered-models/delete", auth=reader, name=LOCK)
    assert refused.status_code == 403
    broken = server.api(
        "DELETE", "2.0/mlflow/registered-models/delete", auth=other_editor, name=LOCK
    )
    assert broken.status_code == 200, broken.text
    assert server.api("GET", "2.0/mlflow/registered-models/get", name=LOCK).status_code == 404
