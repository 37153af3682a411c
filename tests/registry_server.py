"""The team's registry for the tests: a throw-away PostgreSQL database and `lcp tracking-server`.

``PostgresDatabase`` creates a role and a database of its own on the PostgreSQL server that
answers on 127.0.0.1:5432 (``scripts/postgres.sh`` starts this machine's cluster first) and drops
both afterwards. ``TrackingServer`` runs ``lcp tracking-server`` on that database, on a free
loopback port, with basic-auth and an admin password made up here; it dies with the test run.
When PostgreSQL cannot be started or reached, the tests fail with a message that says so: they
are never skipped.

The administrative statements (CREATE/DROP ROLE and DATABASE) run with ``psql``: through the
superuser URI in ``$LCP_TEST_POSTGRES_ADMIN_URI`` when it is set, else as the ``postgres``
user (``runuser`` as root, ``sudo -n`` otherwise, as on GitHub's runners). That URI also names
the server (its host and port; the Dagger module's test container reaches a service so), which
is then the caller's to start.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import pytest

from lead_conversion_prediction.config import PROJ_ROOT
from tests.support import die_with_parent, free_port, stop_group, wait_until

ADMIN_URI_VAR = "LCP_TEST_POSTGRES_ADMIN_URI"
_ADMIN = urlsplit(os.environ.get(ADMIN_URI_VAR, ""))
PG_HOST, PG_PORT = _ADMIN.hostname or "127.0.0.1", _ADMIN.port or 5432
STARTUP_SECONDS = 900.0  # a cold start migrates the schema and imports MLflow in each worker


def ensure_postgres() -> None:
    """Start this machine's PostgreSQL cluster when needed; fail the test run if it cannot.
    A server named by the admin URI is the caller's: psql tells when it does not answer."""
    if os.environ.get(ADMIN_URI_VAR):
        return
    script = PROJ_ROOT / "scripts" / "postgres.sh"
    try:
        result = subprocess.run(
            [str(script)], capture_output=True, text=True, timeout=300, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        pytest.fail(f"PostgreSQL: {script.name} could not run ({error})")
    if result.returncode != 0:
        pytest.fail(
            f"PostgreSQL does not answer on {PG_HOST}:{PG_PORT} and could not be started "
            f"({script.name}: {' '.join(result.stderr.split())[-500:]}); the registry tests "
            "need a real PostgreSQL server (apt-get install -y postgresql)"
        )


def psql(*statements: str) -> None:
    """Run SQL statements as PostgreSQL's superuser, one at a time (not in a transaction)."""
    admin_uri = os.environ.get(ADMIN_URI_VAR)
    if admin_uri:
        command = ["psql", admin_uri]
    elif os.geteuid() == 0 and shutil.which("runuser"):
        command = ["runuser", "-u", "postgres", "--", "psql"]
    elif shutil.which("sudo") and _runs(["sudo", "-n", "-u", "postgres", "true"]):
        command = ["sudo", "-n", "-u", "postgres", "psql"]
    else:
        pytest.fail(
            "PostgreSQL: cannot create the test database: run the tests as root or with "
            f"`sudo -n -u postgres` allowed (psql as the postgres user), or set {ADMIN_URI_VAR} "
            "to a superuser's URI"
        )
    arguments = [*command, "--no-psqlrc", "-q", "-v", "ON_ERROR_STOP=1"]
    for statement in statements:
        arguments += ["-c", statement]
    result = subprocess.run(arguments, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        pytest.fail(f"PostgreSQL: {' '.join(result.stderr.split())[-500:]}")


def _runs(command: list[str]) -> bool:
    try:
        result = subprocess.run(command, capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


@dataclass
class PostgresDatabase:
    """A role and a database of its own, created now and dropped by :meth:`drop`."""

    name: str = field(default_factory=lambda: f"lcp_test_{secrets.token_hex(4)}")
    password: str = field(default_factory=lambda: secrets.token_urlsafe(18))

    def create(self) -> PostgresDatabase:
        ensure_postgres()
        psql(
            f"CREATE ROLE {self.name} LOGIN PASSWORD '{self.password}'",
            f"CREATE DATABASE {self.name} OWNER {self.name}",
        )
        return self

    @property
    def uri(self) -> str:
        return f"postgresql://{self.name}:{self.password}@{PG_HOST}:{PG_PORT}/{self.name}"

    def drop(self) -> None:
        psql(
            f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)",
            f"DROP ROLE IF EXISTS {self.name}",
        )


@dataclass
class TrackingServer:
    """``lcp tracking-server`` running on a throw-away database, with basic-auth."""

    folder: Path
    database: PostgresDatabase
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    admin_username: str = "admin"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    @property
    def secrets(self) -> list[str]:
        """Every secret the server and its clients were given: none may appear anywhere."""
        return [self.admin_password, self.secret_key, self.database.password]

    def server_environment(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
        return {
            **keep,
            "MLFLOW_AUTH_ADMIN_PASSWORD": self.admin_password,
            "MLFLOW_FLASK_SERVER_SECRET_KEY": self.secret_key,
            "MLFLOW_BACKEND_STORE_URI": self.database.uri,
            "LCP_TRACKING_SERVER_DIR": str(self.folder / "state"),
            "MLFLOW_ARTIFACTS_DESTINATION": str(self.folder / "artifacts"),
            "LCP_TRACKING_HOST": "127.0.0.1",
            "LCP_TRACKING_PORT": str(self.port),
            "LCP_TRACKING_WORKERS": "2",
        }

    def client_environment(
        self, user: str | None = None, password: str | None = None
    ) -> dict[str, str]:
        """What a client of this server is given: the URI, a user and its password (the admin
        by default; empty strings for none)."""
        return {
            "MLFLOW_TRACKING_URI": self.url,
            "MLFLOW_TRACKING_USERNAME": self.admin_username if user is None else user,
            "MLFLOW_TRACKING_PASSWORD": self.admin_password if password is None else password,
        }

    def start(self) -> TrackingServer:
        import sys

        self.folder.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "lead_conversion_prediction", "tracking-server"],
                cwd=self.folder,
                env=self.server_environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        wait_until(
            self.healthy,
            STARTUP_SECONDS,
            f"lcp tracking-server on {self.url}",
            process=self.process,
            log=self.log,
        )
        return self

    def healthy(self) -> bool:
        import requests

        try:
            return requests.get(f"{self.url}/health", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process)
            self.process = None

    def api(
        self,
        method: str,
        path: str,
        auth: tuple[str, str] | str | None = "admin",  # "admin", a user and password, or none
        **payload: Any,
    ) -> Any:
        """Call the server's REST API (``path`` after ``/api/``, e.g. ``2.0/mlflow/...``)."""
        import requests

        credentials = (self.admin_username, self.admin_password) if isinstance(auth, str) else auth
        url = f"{self.url}/api/{path}"
        keyword = "params" if method == "GET" else "json"
        return requests.request(
            method,
            url,
            auth=credentials,
            timeout=60,
            **{keyword: payload},  # type: ignore[arg-type]
        )

    def create_user(self, username: str, password: str) -> None:
        answer = self.api("POST", "2.0/mlflow/users/create", username=username, password=password)
        assert answer.status_code == 200, answer.text

    def grant(self, username: str, model: str, permission: str) -> None:
        """Give ``username`` ``permission`` on the registered model ``model``."""
        answer = self.api(
            "POST",
            "3.0/mlflow/users/permissions/grant",
            username=username,
            resource_type="registered_model",
            resource_id=model,
            permission=permission,
        )
        assert answer.status_code == 200, answer.text

    def delete_registered_model(self, name: str) -> None:
        """Delete a registered model (and its versions) if it exists: a fresh registry."""
        answer = self.api("DELETE", "2.0/mlflow/registered-models/delete", name=name)
        assert answer.status_code in (200, 404), answer.text


def outcome(frame: pd.DataFrame, labels: str, seed: int) -> pd.Series:
    """Training labels of a given quality: from the leads' true causes (``true``), from those
    causes blurred by seeded noise (``blurred``, ``very blurred``), or from none of them
    (``shuffled``). Each model then ranks the true outcomes worse than the one before it, and
    is less sure of them: worse on both ROC-AUC and log-loss, the shuffled one no better than
    the base rate."""
    import numpy as np

    true = frame["purchases"] / 10 + frame["n_visits"] / 20
    if labels == "shuffled":
        score = true.sample(frac=1.0, random_state=seed).set_axis(frame.index)
    else:
        blur = {"true": 0.0, "blurred": 0.6, "very blurred": 1.5}[labels]
        noise = np.random.default_rng(seed).normal(0.0, blur * true.std(), len(frame))
        score = true + noise
    return (score > score.median()).astype(float)


@dataclass(frozen=True)
class Checkout:
    """A checkout with a trained, evaluated and validated model, ready to register."""

    root: Path
    seed: int
    labels: str

    def environment(self, server: TrackingServer, **client: str) -> dict[str, str]:
        """The environment of an ``lcp`` command in this checkout, as a client of ``server``."""
        return {**os.environ, **server.client_environment(**client), "LCP_ROOT": str(self.root)}


def checkouts_in(base: Path, labels: tuple[str, ...]) -> list[Checkout]:
    """The checkouts :func:`make_checkouts` makes in ``base``: seed 1, 2, ... in label order."""
    return [
        Checkout(base / f"checkout-{seed}", seed, quality)
        for seed, quality in enumerate(labels, start=1)
    ]


def make_checkouts(base: Path, labels: tuple[str, ...]) -> list[Checkout]:
    """Checkouts of one small project, split alike (one evaluation set, the true outcomes), each
    trained with its own seed (1, 2, ...) on training labels of the given quality."""
    import shutil

    import yaml

    from lead_conversion_prediction.config import Paths, load_params
    from tests.support import REGISTRY_CANDIDATES, make_raw_leads, new_project, run_stage

    template = new_project(base / "template", REGISTRY_CANDIDATES)
    raw = make_raw_leads(n=1000, seed=11)
    raw["lead_indicator"] = outcome(raw, "true", 0)
    raw.to_csv(template / "data" / "raw" / "raw_data.csv", index=False)
    for stage in ("data", "features"):
        run_stage(stage, template, load_params(template / "params.yaml"), "unused")
    checkouts = checkouts_in(base, labels)
    for checkout in checkouts:
        root, seed, quality = checkout.root, checkout.seed, checkout.labels
        shutil.copytree(template, root)
        settings = yaml.safe_load((root / "params.yaml").read_text())
        settings["train"]["random_state"] = seed
        # On these few holdout rows, models taught blurred labels rank almost alike (ROC-AUC
        # 0.97 to 0.99, intervals of +-0.02) while their log-loss differs clearly: a wider
        # tolerance on ROC-AUC lets the rule see the log-loss leads, so the race has moves.
        settings["promotion"]["tolerance"]["roc_auc"] = 0.05
        (root / "params.yaml").write_text(yaml.safe_dump(settings))
        params = load_params(root / "params.yaml")
        paths = Paths(root)
        leads = pd.read_csv(paths.leads)
        leads["lead_indicator"] = outcome(leads, quality, seed)
        shutil.rmtree(paths.processed_dir)
        leads.to_csv(paths.leads, index=False)
        for stage in ("features", "train"):
            run_stage(stage, root, params, "unused")
        # Every checkout is evaluated on the template's holdout, with its true outcomes.
        shutil.rmtree(paths.processed_dir)
        shutil.copytree(Paths(template).processed_dir, paths.processed_dir)
        for stage in ("evaluate", "validate"):
            run_stage(stage, root, params, "unused")
    return checkouts
