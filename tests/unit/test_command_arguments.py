"""A command checks its arguments and files before any model loads: a mistake costs no wait.

Each case names a model that does not exist: were it loaded first, the error would name it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import lcp_here, make_raw_leads

MISSING_MODEL = "no-such-model.joblib"


@pytest.fixture
def leads(project: Path) -> str:
    path = project / "leads.csv"
    make_raw_leads(20).to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize(
    ("output", "problem"),
    [
        ("missing-folder/scores.csv", "folder"),
        ("scores.txt", "not a .csv or .parquet file"),
    ],
)
def test_predict_refuses_its_output_before_loading_the_model(
    project: Path, leads: str, output: str, problem: str
) -> None:
    done = lcp_here(
        "predict", "--input", leads, "--output", str(project / output), "--model", MISSING_MODEL
    )
    (line,) = done.stderr.splitlines()[-1:]
    assert done.returncode == 2 and line.startswith("error: --output") and problem in line
    assert MISSING_MODEL not in done.stderr


@pytest.mark.parametrize(
    ("arguments", "option"),
    [
        (["predict", "--input", "leads.csv", "--output", "s.csv", "--explain", "6"], "--explain"),
        (["serve", "--port", "70000"], "--port"),
        (["mlflow-ui", "--port", "0"], "--port"),
        (["rollback", "--to", "0"], "--to"),
    ],
)
def test_an_option_out_of_range_is_a_usage_error(
    project: Path, arguments: list[str], option: str
) -> None:
    done = lcp_here(*arguments)
    assert done.returncode == 2 and f"Invalid value for '{option}'" in done.stderr
    assert "Traceback" not in done.stderr


def test_validate_reads_its_data_before_loading_the_model(project: Path) -> None:
    missing = project / "X.csv"
    done = lcp_here("validate", "--model", MISSING_MODEL, "--x", str(missing))
    assert done.returncode == 2 and done.stderr.splitlines()[-1] == f"error: {missing}: not found"
