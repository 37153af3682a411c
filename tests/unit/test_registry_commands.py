"""The registry's commands as a newcomer meets them: no champion is one line that creates no
store, a rollback walks back along the champions' line, a refused promotion has one code and
one wording on every path, and ``lcp champion`` tells each fact once."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from lead_conversion_prediction.cli.options import (
    PROMOTION_REFUSED_EXIT_CODE,
    exit_on_refused_release,
)
from lead_conversion_prediction.config import Paths, default_tracking_uri
from lead_conversion_prediction.exceptions import NoChampionError
from lead_conversion_prediction.modeling.registry import (
    REGISTRATION_TAG,
    ChampionMove,
    champion_line,
)
from tests.support import lcp_here, make_raw_leads, write_registry_record

NAME = "lead_model"  # params.yaml's registry.model_name
NO_CHAMPION = f"error: {NoChampionError(NAME)}"
TAGS = {
    "candidate": "xgboost",
    "promotion_metric": "roc_auc",
    "holdout.roc_auc": "0.901234",
    "holdout.roc_auc.low": "0.870000",
    "holdout.roc_auc.high": "0.930000",
    "evaluation_set_md5": "e" * 32,
    "raw_md5": "d" * 32,
    "git_commit": "c" * 40,
    "git_dirty": "false",
}


@pytest.fixture(scope="module")
def store_made() -> Iterator[tuple[Path, str]]:
    """A tracking store with its tables and nothing else, made by a command that reads the
    registry (MLflow creates the store), and what the command told the user. Made once per
    module: MLflow takes seconds to create its tables."""
    with tempfile.TemporaryDirectory(prefix="lcp-store-") as folder:
        path = Path(folder) / "mlflow.db"
        done = lcp_here("unlock", env={"MLFLOW_TRACKING_URI": f"sqlite:///{path}"})
        assert done.returncode == 0, done.stderr
        yield path, done.stderr


@pytest.fixture
def store(project: Path, store_made: tuple[Path, str]) -> Iterator[Path]:
    """The project's tracking store (where MLFLOW_TRACKING_URI points), empty."""
    path = Path(default_tracking_uri().removeprefix("sqlite:///"))
    shutil.copy(store_made[0], path)
    yield path


def leads_file(project: Path) -> str:
    path = project / "leads.csv"
    make_raw_leads(20).to_csv(path, index=False)
    return str(path)


def validation_pair(project: Path) -> list[str]:
    """The options of an X/y pair that reads well: a store's question is what is left."""
    (project / "X.csv").write_text("purchases\n1\n2\n")
    (project / "y.csv").write_text("converted\n0\n1\n")
    return ["--x", str(project / "X.csv"), "--y", str(project / "y.csv")]


def no_champion_commands(project: Path) -> list[list[str]]:
    return [
        ["champion"],
        ["rollback"],
        ["predict", "--input", leads_file(project), "--output", str(project / "scores.csv")],
        ["validate", *validation_pair(project)],
        ["serve", "--port", "5999"],
    ]


@pytest.mark.parametrize(
    "command", range(5), ids=["champion", "rollback", "predict", "validate", "serve"]
)
def test_no_champion_on_a_fresh_clone_is_one_line_and_creates_no_store(
    project: Path, command: int
) -> None:
    store = Path(default_tracking_uri().removeprefix("sqlite:///"))
    done = lcp_here(*no_champion_commands(project)[command])
    assert (done.returncode, done.stderr.splitlines()) == (2, [NO_CHAMPION])
    assert not store.exists()


def test_promote_on_a_fresh_clone_creates_no_store(project: Path) -> None:
    store = Path(default_tracking_uri().removeprefix("sqlite:///"))
    done = lcp_here("promote")
    assert done.returncode == 2 and done.stderr.splitlines() == [
        f"error: {NAME}: no challenger to promote; run 'make pipeline' first"
    ]
    assert not store.exists()


@pytest.mark.parametrize(
    "command", range(5), ids=["champion", "rollback", "predict", "validate", "serve"]
)
def test_no_champion_in_an_empty_store_is_the_same_line(
    project: Path, store: Path, command: int
) -> None:
    done = lcp_here(*no_champion_commands(project)[command])
    assert done.returncode == 2 and done.stderr.splitlines()[-1] == NO_CHAMPION
    assert "Traceback" not in done.stderr


def test_mlflow_creating_its_tables_tells_the_user_nothing(
    store_made: tuple[Path, str],
) -> None:
    path, told = store_made
    assert path.stat().st_size > 0
    assert "database tables" not in told and "mlflow" not in told.lower()


def registry_with(versions: int, champions: list[int]) -> Any:
    """Register ``versions`` versions and make each of ``champions`` champion in turn."""
    from mlflow import MlflowClient

    from lead_conversion_prediction.modeling.registry import move_champion

    client = MlflowClient()
    client.create_registered_model(NAME)
    for _ in range(versions):
        client.create_model_version(NAME, source="models", tags=TAGS)
    for version in champions:
        move_champion(NAME, version, f"promoted version {version}: it leads on roc_auc")
    return client


def champion_now() -> int:
    from lead_conversion_prediction.modeling.registry import champion_number

    number = champion_number(NAME)
    assert number is not None
    return number


def test_each_rollback_goes_one_step_further_back(store: Path) -> None:
    registry_with(3, [1, 2, 3])
    steps = []
    for _ in range(2):
        done = lcp_here("rollback")
        steps.append((done.returncode, champion_now()))
    assert steps == [(0, 2), (0, 1)]
    last = lcp_here("rollback")
    assert (last.returncode, last.stderr.splitlines()) == (
        2,
        [
            f"error: {NAME}: version 1 is the first champion: there is no earlier champion "
            "to roll back to"
        ],
    )
    assert champion_now() == 1
    never = lcp_here("rollback", "--to", "2")
    assert (never.returncode, never.stderr.splitlines()) == (
        2,
        [
            f"error: {NAME}: version 2 is not an earlier champion; version 1 is the first "
            "champion: there is no earlier champion"
        ],
    )


def test_rollback_to_picks_an_earlier_champion_and_refuses_any_other(store: Path) -> None:
    registry_with(4, [1, 2, 3])
    refused = lcp_here("rollback", "--to", "4")
    assert refused.returncode == 2 and refused.stderr.splitlines() == [
        f"error: {NAME}: version 4 is not an earlier champion; roll back to one of: 2, 1"
    ]
    assert champion_now() == 3
    assert lcp_here("rollback", "--to", "1").returncode == 0 and champion_now() == 1
    assert "version 1 is the first champion" in lcp_here("rollback").stderr


def test_the_line_undoes_rollbacks_and_reads_the_older_records() -> None:
    def move(number: int, version: int, reason: str, rollback: bool = False) -> ChampionMove:
        return ChampionMove(number, version, None, "t", reason, "me", rollback)

    moves = [move(1, 1, "first"), move(2, 2, "better"), move(3, 3, "better")]
    assert champion_line(moves) == [1, 2, 3]
    assert champion_line([*moves, move(4, 1, "rollback from version 3", True)]) == [1]
    older = [*moves, move(4, 2, "rollback from version 3")]  # before the field was kept
    assert champion_line(older) == [1, 2]
    assert champion_line([*older, move(5, 3, "promoted again")]) == [1, 2, 3]


def test_champion_tells_each_fact_once(store: Path) -> None:
    registry_with(2, [1, 2])
    lcp_here("rollback")
    done = lcp_here("champion")
    text = done.stdout
    assert done.returncode == 0 and text.startswith(f"champion: models:/{NAME}/1 (xgboost)")
    for fact in ("0.901234", TAGS["evaluation_set_md5"], TAGS["raw_md5"], TAGS["git_commit"]):
        assert text.count(fact) == 1, fact
    assert "None" not in text and "(was " not in text
    history = text.split("history (oldest first):\n", 1)[1].splitlines()
    assert [line.split("  ")[-1] for line in history] == [
        "promoted version 1: it leads on roc_auc",
        "promoted version 2: it leads on roc_auc",
        "version 1 again (rollback from version 2)",
    ]


def test_a_refused_promote_is_one_line_with_the_refusals_code(store: Path) -> None:
    client = registry_with(2, [1])
    client.set_model_version_tag(NAME, "2", REGISTRATION_TAG, "in progress")
    done = lcp_here("promote", "--version", "2")
    assert (done.returncode, done.stderr.splitlines()) == (
        PROMOTION_REFUSED_EXIT_CODE,
        ["not promoted: version 2's registration is in progress, not complete"],
    )
    again = lcp_here("promote", "--version", "1")
    assert (again.returncode, again.stderr.splitlines()) == (
        PROMOTION_REFUSED_EXIT_CODE,
        ["not promoted: version 1 is the champion already"],
    )
    assert champion_now() == 1


def test_a_refused_release_is_told_as_lcp_promote_tells_it(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = Paths(project)
    refused = "refused: version 2 is worse than version 1 on roc_auc"
    write_registry_record(paths, model_name=NAME, version=2, champion=1, decision=refused)
    with pytest.raises(typer.Exit) as stop:
        exit_on_refused_release(paths)
    assert stop.value.exit_code == PROMOTION_REFUSED_EXIT_CODE
    assert capsys.readouterr().err.splitlines() == [
        "not promoted: version 2 is worse than version 1 on roc_auc"
    ]
    write_registry_record(paths, model_name=NAME, version=2, champion=2, promoted=True)
    exit_on_refused_release(paths)  # a promotion: nothing to tell, no exit
    assert capsys.readouterr().err == ""
