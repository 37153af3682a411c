"""`lcp predict` as users run it: files, stdin and stdout, and every class of bad input."""

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from lead_conversion_prediction.config import FeatureParams
from lead_conversion_prediction.features import build_preprocessor, features_and_target
from lead_conversion_prediction.modeling.train import assemble_model
from lead_conversion_prediction.schema import validate_leads
from lead_conversion_prediction.utils.storage import save_artifact, write_manifest
from tests.support import make_project, make_raw_leads


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    X, y = features_and_target(validate_leads(make_raw_leads(n=200, seed=1), "train.csv"))
    preprocessor = build_preprocessor(FeatureParams()).fit(X)
    model = assemble_model(preprocessor, LogisticRegression().fit(preprocessor.transform(X), y))
    folder = make_project(tmp_path_factory.mktemp("project")) / "models"
    save_artifact(model, folder / "lead_model.joblib")
    write_manifest(folder, ["lead_model.joblib"])
    return folder / "lead_model.joblib"


def predict(
    model_path: Path, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "lead_conversion_prediction",
            "predict",
            "--model",
            str(model_path),
            *args,
        ],
        input=stdin,
        capture_output=True,
        env={**os.environ, "LCP_ROOT": str(model_path.parent.parent)},
        check=False,
    )


def last_line(result: subprocess.CompletedProcess[bytes]) -> str:
    return result.stderr.decode().strip().splitlines()[-1]


def test_stdin_to_stdout(model_path: Path, make_leads: Callable[..., pd.DataFrame]) -> None:
    csv = make_leads(n=25).to_csv(index=False).encode()
    result = predict(model_path, "--input", "-", "--output", "-", "--sort", stdin=csv)
    assert result.returncode == 0, result.stderr.decode()
    lines = result.stdout.decode().splitlines()
    assert lines[0] == '"lead_id","conversion_probability","predicted_label","rank","model"'
    assert len(lines) == 26 and lines[1].split(",")[3] == "1"
    assert "25 rows scored, 0 rejected, in" in result.stderr.decode()


def test_the_summary_and_warnings_are_logged(
    model_path: Path, tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    leads = make_leads(n=20).assign(lead_id=1)
    leads.to_csv(tmp_path / "leads.csv", index=False)
    before = (tmp_path / "leads.csv").read_bytes()
    result = predict(model_path, "-i", str(tmp_path / "leads.csv"), "-o", str(tmp_path / "s.csv"))
    log = result.stderr.decode()
    assert result.returncode == 0
    assert "19 rows repeat a lead_id" in log
    assert "sources the model was not trained on, scored anyway" in log
    assert "20 rows scored, 0 rejected" in log
    assert (tmp_path / "leads.csv").read_bytes() == before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "file is empty (no header row)"),
        (
            b"lead_id,purchases,time_spent,n_visits,customer_group,onboarding\n",
            "header but no data rows",
        ),
        (
            b"lead_id,purchases,time_spent,n_visits,customer_group\n1,2,3,4,5\n",
            "missing required column 'onboarding'",
        ),
        (
            b"lead_id,buys,time_spent,n_visits,customer_group,onboarding\n1,2,3,4,5,True\n",
            "missing required column 'purchases'",
        ),
        (b"lead_id;purchases;time_spent\n1;2;3\n", "(is the delimiter a comma?)"),
        (
            b"lead_id,purchases,time_spent,n_visits,customer_group,onboarding\n1,2,3\xff,4,5,True\n",
            "not UTF-8 text",
        ),
    ],
    ids=["empty", "header-only", "missing-column", "renamed-column", "delimiter", "bytes"],
)
def test_file_level_problems_exit_2_with_one_line_and_leave_the_output_alone(
    model_path: Path, tmp_path: Path, content: bytes, message: str
) -> None:
    source, target = tmp_path / "leads.csv", tmp_path / "scores.csv"
    source.write_bytes(content)
    target.write_text("previous scores\n")
    result = predict(model_path, "-i", str(source), "-o", str(target))
    assert result.returncode == 2
    assert message in last_line(result) and last_line(result).startswith(f"error: {source}")
    assert b"Traceback" not in result.stderr
    assert target.read_text() == "previous scores\n"
    assert source.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["leads.csv", "scores.csv"]


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("time_spent", "fast", "value 'fast' is not a number"),
        ("time_spent", "inf", "value inf is not a finite number"),
        ("n_visits", "-2", "value -2 is below 0"),
        ("customer_group", "two", "value 'two' is not a number"),
        ("onboarding", "perhaps", "value 'perhaps' is not true or false"),
        ("date_part", "yesterday", "value 'yesterday' is not a YYYY-MM-DD date"),
    ],
)
def test_rows_that_cannot_be_scored_name_the_column_and_up_to_five_lines(
    model_path: Path,
    tmp_path: Path,
    make_leads: Callable[..., pd.DataFrame],
    column: str,
    value: str,
    problem: str,
) -> None:
    leads = make_leads(n=30).astype({column: "object"})
    leads.loc[[2, 4, 6, 8, 10, 12, 14], column] = value
    leads.to_csv(tmp_path / "leads.csv", index=False)
    result = predict(model_path, "-i", str(tmp_path / "leads.csv"), "-o", str(tmp_path / "s.csv"))
    assert result.returncode == 2
    assert last_line(result) == (
        f"error: {tmp_path / 'leads.csv'}: column '{column}': {problem} "
        "at lines 4, 6, 8, 10, 12 (7 bad rows in all)"
    )
    assert not (tmp_path / "s.csv").exists()

    skipped = predict(
        model_path,
        "-i",
        str(tmp_path / "leads.csv"),
        "-o",
        str(tmp_path / "s.csv"),
        "--on-error",
        "skip",
    )
    assert skipped.returncode == 0
    assert "23 rows scored, 7 rejected" in skipped.stderr.decode()
    rejects = pd.read_csv(tmp_path / "s.csv.rejects.csv")
    assert rejects["line"].tolist() == [4, 6, 8, 10, 12, 14, 16]
    assert (rejects["reason"] == f"column '{column}': {problem}").all()


def test_options_are_checked(model_path: Path, tmp_path: Path) -> None:
    result = predict(model_path, "-i", "x.csv", "-o", "y.csv", "--on-error", "ignore")
    assert result.returncode == 2 and "--on-error: 'ignore' is not fail or skip" in last_line(
        result
    )
    result = predict(model_path, "-i", "x.csv", "-o", "y.csv", "--threshold", "2")
    assert result.returncode == 2


def test_debug_shows_the_traceback(model_path: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lead_conversion_prediction", "--debug", "predict",
         "--model", str(model_path), "-i", str(tmp_path / "absent.csv"), "-o", "-"],
        capture_output=True,
        env={**os.environ, "LCP_ROOT": str(model_path.parent.parent)},
        check=False,
    )  # fmt: skip
    assert result.returncode != 0 and b"Traceback" in result.stderr
