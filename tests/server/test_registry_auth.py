"""Who may do what on the team's tracking server, with real HTTP calls, and no secret leaks.

- A client without credentials gets 401 and changes nothing.
- A user with READ permission on the registered model loads the champion (``lcp predict
  --model models:/lead_model@champion``) but ``lcp register``, ``lcp promote`` and
  ``lcp rollback`` fail with one line and exit 2, and the registry stays as it was.
- A user with EDIT promotes; the reader's attempts left no registry lock to wait for.
- ``lcp serve`` run by that user serves the server's champion.
- A wrong password, an unreachable server and a missing database each give one line naming
  the URI without its password, and exit 2.
- No password or secret key appears in any output, run parameter or tag, ``reports/`` file, or
  the server's log.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.registry_server import PG_HOST, PG_PORT, Checkout, TrackingServer
from tests.support import free_port, lcp_here

pytestmark = pytest.mark.long(seconds=170)

NAME = "lead_model"
READER, READER_PASSWORD = "reader", secrets.token_urlsafe(18)
EDITOR, EDITOR_PASSWORD = "editor", secrets.token_urlsafe(18)


@dataclass
class Team:
    """Two checkouts registered on the server: a weak champion (version 1, made champion by
    hand: it does not beat the base rate, so the strong version 2 was the first champion) and
    a strong challenger (version 2), and a user who may only read the model."""

    server: TrackingServer
    weak: Checkout
    strong: Checkout
    outputs: list[str]

    def lcp(
        self, checkout: Checkout, *args: str, **client: str
    ) -> subprocess.CompletedProcess[str]:
        """Run ``lcp`` in a checkout as a client of the server, in this process (the server's
        answers are the matter here, not the client's start-up); keep its output for the leak
        check."""
        result = lcp_here(*args, env=checkout.environment(self.server, **client))
        self.outputs += [result.stdout, result.stderr]
        return result

    def as_reader(self, checkout: Checkout, *args: str) -> subprocess.CompletedProcess[str]:
        return self.lcp(checkout, *args, user=READER, password=READER_PASSWORD)

    def as_editor(self, checkout: Checkout, *args: str) -> subprocess.CompletedProcess[str]:
        return self.lcp(checkout, *args, user=EDITOR, password=EDITOR_PASSWORD)

    def state(self) -> tuple[str, list[str], list[str]]:
        """The champion, every version, and every registered model's name."""
        versions = self.server.api("GET", "2.0/mlflow/model-versions/search", max_results=100)
        models = self.server.api("GET", "2.0/mlflow/registered-models/search", max_results=100)
        champion = self.server.api(
            "GET", "2.0/mlflow/registered-models/alias", name=NAME, alias="champion"
        )
        return (
            champion.json()["model_version"]["version"],
            sorted(v["version"] for v in versions.json().get("model_versions", [])),
            sorted(m["name"] for m in models.json().get("registered_models", [])),
        )


# The weak version made champion by hand, past the rule, as an administrator may.
WEAK_CHAMPION = f"""
from lead_conversion_prediction.modeling.registry import move_champion
move_champion("{NAME}", 1, "a weak champion, for the test")
"""


@pytest.fixture(scope="module")
def team(checkouts: dict[str, Checkout], tracking_server: TrackingServer) -> Iterator[Team]:
    server = tracking_server
    server.delete_registered_model(NAME)
    server.delete_registered_model(f"{NAME}.promotion-lock")
    weak, strong = checkouts["shuffled"], checkouts["true"]
    team = Team(server, weak, strong, [])
    for checkout in (weak, strong):
        result = team.lcp(checkout, "register")
        assert result.returncode == 0, result.stderr[-3000:]
    assert "version 1 cannot be the first champion" in team.outputs[1]
    by_hand = subprocess.run(
        [sys.executable, "-c", WEAK_CHAMPION],
        env=weak.environment(server),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    team.outputs += [by_hand.stdout, by_hand.stderr]
    assert by_hand.returncode == 0, by_hand.stderr[-3000:]
    server.create_user(READER, READER_PASSWORD)
    server.grant(READER, NAME, "READ")
    server.create_user(EDITOR, EDITOR_PASSWORD)
    server.grant(EDITOR, NAME, "EDIT")
    yield team


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The command failed with exit 2 and exactly one error line (no traceback)."""
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    return errors[0]


def test_an_unauthenticated_client_gets_401_and_changes_nothing(team: Team) -> None:
    before = team.state()
    assert before[0] == "1" and before[1] == ["1", "2"]
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "2.0/mlflow/registered-models/alias", {"name": NAME, "alias": "champion",
                                                         "version": "2"}),
        ("POST", "2.0/mlflow/registered-models/create", {"name": f"{NAME}.promotion-lock"}),
        ("DELETE", "2.0/mlflow/model-versions/delete", {"name": NAME, "version": "1"}),
        ("GET", "2.0/mlflow/registered-models/alias", {"name": NAME, "alias": "champion"}),
    ]  # fmt: skip
    for method, path, payload in calls:
        answer = team.server.api(method, path, auth=None, **payload)
        assert answer.status_code == 401, (path, answer.status_code, answer.text)
    wrong = team.server.api(
        "POST", "2.0/mlflow/registered-models/alias", auth=("admin", "not-the-password"),
        name=NAME, alias="champion", version="2",
    )  # fmt: skip
    assert wrong.status_code == 401
    assert team.state() == before

    result = team.lcp(team.strong, "champion", user="", password="")
    line = one_error_line(result)
    assert team.server.url in line and "401" in line


def test_a_reader_loads_the_champion_but_cannot_register_promote_or_roll_back(
    team: Team, tmp_path: Path
) -> None:
    before = team.state()
    scores = tmp_path / "scores.csv"
    raw = team.strong.root / "data" / "raw" / "raw_data.csv"
    loaded = team.as_reader(
        team.strong, "predict", "--model", f"models:/{NAME}@champion", "--input", str(raw),
        "--output", str(scores),
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert len(scores.read_text().splitlines()) > 100

    # The reader's model is version 2 already: registering it again looks, finds it and
    # writes nothing, which a reader may do.
    registered = team.as_reader(team.strong, "register")
    assert registered.returncode == 0, registered.stderr[-3000:]
    assert "the same model is version 2 already; nothing logged again" in registered.stderr
    assert team.state() == before
    # Version 2 has a real lead over the weak champion: only the permission stops the reader.
    for command in (["register", "--promote"], ["promote"]):
        line = one_error_line(team.as_reader(team.strong, *command))
        assert f"user '{READER}'" in line and team.server.url in line, (command, line)
        assert team.state() == before, command

    # The reader could not even take the registry lock: the editor neither waits nor is refused.
    lock = team.server.api(
        "GET", "2.0/mlflow/registered-models/get", name=f"{NAME}.promotion-lock"
    )
    assert lock.status_code == 404, lock.text
    promoted = team.as_editor(team.strong, "promote")
    assert promoted.returncode == 0, promoted.stderr[-3000:]
    assert "waiting" not in promoted.stderr and "ignored" not in promoted.stderr
    after_promotion = team.state()
    assert after_promotion[0] == "2"
    line = one_error_line(team.as_reader(team.strong, "rollback"))
    assert f"user '{READER}'" in line
    assert team.state() == after_promotion


def test_a_wrong_password_an_unreachable_server_or_a_missing_database_is_one_line(
    team: Team,
) -> None:
    wrong = "wrong-" + secrets.token_urlsafe(12)
    line = one_error_line(team.lcp(team.strong, "champion", password=wrong))
    assert team.server.url in line and "401" in line and wrong not in line

    port = free_port()
    with_password = f"http://admin:{wrong}@127.0.0.1:{port}"
    result = team.lcp(team.strong, "champion", "--tracking-uri", with_password)
    line = one_error_line(result)
    assert f"http://admin@127.0.0.1:{port}" in line and "cannot reach" in line
    assert wrong not in result.stderr + result.stdout

    # The server's own role, with its real password, and a database that does not exist.
    role, password = team.server.database.name, team.server.database.password
    database = f"postgresql://{role}:{password}@{PG_HOST}:{PG_PORT}/lcp_no_such_database"
    result = team.lcp(team.strong, "champion", "--tracking-uri", database)
    line = one_error_line(result)
    assert f"postgresql://{role}@{PG_HOST}:{PG_PORT}/lcp_no_such_database" in line, line
    assert "does not exist" in line and password not in result.stderr + result.stdout

    server = subprocess.run(
        [sys.executable, "-m", "lead_conversion_prediction", "tracking-server"],
        env={
            **os.environ,
            "MLFLOW_AUTH_ADMIN_PASSWORD": wrong,
            "MLFLOW_FLASK_SERVER_SECRET_KEY": wrong,
            "MLFLOW_BACKEND_STORE_URI": database,
            "LCP_ROOT": str(team.strong.root),
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    line = one_error_line(server)
    assert f"postgresql://{role}@{PG_HOST}:{PG_PORT}/lcp_no_such_database" in line, line
    for secret in (wrong, password):
        assert secret not in server.stderr + server.stdout


def test_lcp_serve_as_a_reader_serves_the_servers_champion(team: Team, tmp_path: Path) -> None:
    import json
    import urllib.request

    from tests.support import start_serve, stop_group, wait_until

    champion = team.state()[0]
    port = free_port()
    log = tmp_path / "serve.log"
    env = team.strong.environment(team.server, user=READER, password=READER_PASSWORD)
    process = start_serve(port, env, log)
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=10):
                return True
        except OSError:
            return False

    record = {"lead_id": 7, "purchases": 3, "time_spent": 120.5, "n_visits": 4,
              "customer_group": 2, "onboarding": True}  # fmt: skip
    try:
        wait_until(answers, 600, "lcp serve", process, log)
        request = urllib.request.Request(
            f"{url}/invocations",
            data=json.dumps({"dataframe_records": [record]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            (prediction,) = json.loads(response.read())["predictions"]
    finally:
        stop_group(process)
        team.outputs.append(log.read_text(errors="replace"))
    assert prediction["model"] == f"models:/{NAME}/{champion}"
    assert 0.0 < prediction["conversion_probability"] < 1.0


def test_no_secret_is_printed_logged_or_recorded(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    for name, value in team.server.client_environment().items():
        monkeypatch.setenv(name, value)
    client = MlflowClient(tracking_uri=team.server.url)
    experiments = client.search_experiments()
    runs = client.search_runs([e.experiment_id for e in experiments], max_results=1000)
    versions = client.search_model_versions(f"name = '{NAME}'")
    recorded: list[str] = []
    assert runs and versions
    for run in runs:
        recorded += [*run.data.params.values(), *run.data.tags.values()]
    for version in versions:
        recorded += [*version.tags.values(), version.description or ""]
    for checkout in (team.weak, team.strong):
        recorded += [
            path.read_text(errors="replace")
            for path in (checkout.root / "reports").rglob("*")
            if path.is_file()
        ]
    recorded += team.outputs
    recorded.append(team.server.log.read_text(errors="replace"))
    text = "\n".join(recorded)
    for secret in [*team.server.secrets, READER_PASSWORD]:
        assert secret not in text
