"""Promotion under concurrency, on the team's tracking server (PostgreSQL, basic-auth).

Four checkouts, each with a model of its own (another training seed, and training labels of a
different quality), run ``lcp register --promote`` at the same moment: four processes wait at a
barrier with everything imported, then start together (once per test run: every run of the
suite is another race, with another interleaving). Each time:

- every checkout's model is registered exactly once (four versions, four distinct models);
- the champion's history is one chain: each move starts from the version the previous move
  set (a lost update, two processes acting on the same old champion, would break it);
- each move replaced a champion by a better one (by the versions' holdout ROC-AUC or
  log-loss: the rule wants a lead on one, and no more than a small loss on the other), and
  the first by one that beats the base rate: no worse model ever held the alias;
- the final champion is the best model, which the promotion rule prefers to every other.

The figures (repetitions, how many ended with the best as champion, how often a racer waited
for the registry lock) are printed and recorded as the test's properties.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.registry_server import Checkout, TrackingServer
from tests.support import die_with_parent, wait_until

pytestmark = pytest.mark.long(seconds=90)

NAME = "lead_model"
REPETITIONS = 1

# Each racer imports everything first, says it is ready, and waits for the start line.
RACER = """
import sys, time
from pathlib import Path
import mlflow, sklearn, xgboost  # noqa: F401  (the slow imports, before the start)
import lead_conversion_prediction.stages.register  # noqa: F401
import lead_conversion_prediction.stages.promote  # noqa: F401
from lead_conversion_prediction import cli
ready, start = Path(sys.argv[1]), Path(sys.argv[2])
ready.touch()
while not start.exists():
    time.sleep(0.002)
sys.argv = ["lcp", "register", "--promote"]
cli.run()
"""


@pytest.fixture
def racers(checkouts: dict[str, Checkout]) -> list[Checkout]:
    """Four checkouts, one evaluation set, four models of different quality."""
    return list(checkouts.values())


@dataclass(frozen=True)
class Outcome:
    champion: int
    best: int
    waited: int


def race(racers: list[Checkout], server: TrackingServer, folder: Path) -> Outcome:
    """One race: four `lcp register --promote` released at the same moment; then the checks."""
    from mlflow import MlflowClient

    from lead_conversion_prediction.modeling.registry import champion_version, history

    server.delete_registered_model(NAME)
    server.delete_registered_model(f"{NAME}.promotion-lock")
    folder.mkdir()
    start = folder / "start"
    processes: list[tuple[Checkout, subprocess.Popen[str]]] = []
    for racer in racers:
        process = subprocess.Popen(
            [sys.executable, "-c", RACER, str(folder / f"ready-{racer.seed}"), str(start)],
            env=racer.environment(server),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=die_with_parent,
        )
        processes.append((racer, process))
    ready: Callable[[], bool] = lambda: all(  # noqa: E731
        (folder / f"ready-{racer.seed}").exists() for racer in racers
    )
    wait_until(ready, 600, "four racers at the start line")
    start.touch()
    logs = {}
    for racer, process in processes:
        out, err = process.communicate(timeout=1800)
        logs[racer.seed] = out + err
        assert process.returncode == 0, f"racer {racer.seed} ({racer.labels}):\n{err[-3000:]}"
    for log in logs.values():
        for secret in server.secrets:
            assert secret not in log

    registry = MlflowClient()
    versions = registry.search_model_versions(f"name = '{NAME}'")
    numbers = sorted(int(v.version) for v in versions)
    assert numbers == [1, 2, 3, 4], numbers
    assert len({v.tags["lead_model_sha256"] for v in versions}) == 4
    assert {v.tags["lcp.registration"] for v in versions} == {"complete"}
    recorded = sorted(
        yaml.safe_load((r.root / "reports" / "registry.json").read_text())["version"]
        for r in racers
    )
    assert recorded == [1, 2, 3, 4], "each checkout registered its own version, once"

    score = {int(v.version): float(v.tags["holdout.roc_auc"]) for v in versions}
    loss = {int(v.version): float(v.tags["holdout.log_loss"]) for v in versions}
    moves = history(NAME)
    assert moves and moves[0].previous is None
    assert "beats the base-rate model" in moves[0].reason
    for before, after in itertools.pairwise(moves):
        assert after.previous == before.version, f"a lost update in the history: {moves}"
        better = score[after.version] > score[before.version] or (
            loss[after.version] < loss[before.version]
        )
        assert better, f"a worse champion: {moves}"
    champion = champion_version(NAME)
    assert champion is not None and int(champion.version) == moves[-1].version
    # The racers' log-loss differs clearly and their ROC-AUC within the tolerance their params
    # give it: the rule prefers the lowest log-loss to every other.
    best = min(loss, key=lambda number: loss[number])
    waited = sum("waiting up to" in log for log in logs.values())
    return Outcome(champion=int(champion.version), best=best, waited=waited)


def test_four_registrations_at_once_leave_the_best_as_champion(
    racers: list[Checkout],
    tracking_server: TrackingServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    record_property: Callable[[str, object], None],
) -> None:
    import mlflow

    for name, value in tracking_server.client_environment().items():
        monkeypatch.setenv(name, value)
    mlflow.set_tracking_uri(tracking_server.url)
    outcomes = []
    began = time.monotonic()
    try:
        for repetition in range(REPETITIONS):
            outcomes.append(race(racers, tracking_server, tmp_path / f"race-{repetition}"))
    finally:
        mlflow.set_tracking_uri("")
    seconds = time.monotonic() - began
    best = sum(outcome.champion == outcome.best for outcome in outcomes)
    waited = sum(outcome.waited for outcome in outcomes)
    record_property("repetitions", len(outcomes))
    record_property("best_is_champion", best)
    record_property("racers_that_waited_for_the_lock", waited)
    print(
        f"race: {len(outcomes)} repetitions of {len(racers)} registrations, the best model "
        f"ended as champion in {best}; {waited} racers waited for the registry lock; "
        f"{seconds:.0f} s"
    )
    assert best == len(outcomes), outcomes
