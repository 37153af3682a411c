"""`lcp predict` as users run it: files, stdin and stdout, and every class of bad input."""

import subprocess
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from tests.support import fit_small_model, make_project, run_lcp, save_verified


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = fit_small_model()
    folder = make_project(tmp_path_factory.mktemp("project")) / "models"
    save_verified(model, folder / "lead_model.joblib")
    return folder / "lead_model.joblib"


def predict(
    model_path: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    root = str(model_path.parent.parent)
    arguments = ("predict", "--model", str(model_path), *args)
    return run_lcp(*arguments, env={"LCP_ROOT": root}, stdin=stdin)


def last_line(result: subprocess.CompletedProcess[str]) -> str:
    return result.stderr.strip().splitlines()[-1]


def test_stdin_to_stdout(model_path: Path, make_leads: Callable[..., pd.DataFrame]) -> None:
    csv = make_leads(n=25).to_csv(index=False)
    result = predict(model_path, "--input", "-", "--output", "-", "--sort", stdin=csv)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == '"lead_id","conversion_probability","predicted_label","rank","model"'
    assert len(lines) == 26 and lines[1].split(",")[3] == "1"
    assert "25 rows scored, 0 rejected, in" in result.stderr


def test_the_summary_and_warnings_are_logged(
    model_path: Path, tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    leads = make_leads(n=20).assign(lead_id=1)
    leads.to_csv(tmp_path / "leads.csv", index=False)
    before = (tmp_path / "leads.csv").read_bytes()
    result = predict(model_path, "-i", str(tmp_path / "leads.csv"), "-o", str(tmp_path / "s.csv"))
    log = result.stderr
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
    assert "Traceback" not in result.stderr
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
    assert "23 rows scored, 7 rejected" in skipped.stderr
    rejects = pd.read_csv(tmp_path / "s.csv.rejects.csv", dtype="str")
    assert rejects["line"].tolist() == ["4", "6", "8", "10", "12", "14", "16"]
    assert (rejects["reason"] == f"column '{column}': {problem}").all()
    other = "n_visits" if column != "n_visits" else "purchases"  # whole numbers in the file
    written = leads.loc[[2, 4, 6, 8, 10, 12, 14], other].astype("str").tolist()
    assert rejects[other].tolist() == written  # cells as written ("7"), not as parsed ("7.0")


def test_options_are_checked(model_path: Path, tmp_path: Path) -> None:
    result = predict(model_path, "-i", "x.csv", "-o", "y.csv", "--on-error", "ignore")
    assert result.returncode == 2
    assert "'ignore' is not one of 'fail', 'skip'" in last_line(result)
    result = predict(model_path, "-i", "x.csv", "-o", "y.csv", "--threshold", "2")
    assert result.returncode == 2
    source = tmp_path / "leads.csv"
    source.write_text(
        "lead_id,purchases,time_spent,n_visits,customer_group,onboarding\n1,1,1,1,1,1\n"
    )
    result = predict(model_path, "-i", str(source), "-o", str(tmp_path / "scores.txt"))
    assert result.returncode == 2
    assert "scores.txt: not a .csv or .parquet file" in last_line(result)
    assert not (tmp_path / "scores.txt").exists()
    named = predict(
        model_path, "-i", str(source), "-o", str(tmp_path / "scores.txt"), "--output-format", "csv"
    )
    assert named.returncode == 0, named.stderr


def test_debug_shows_the_traceback(model_path: Path, tmp_path: Path) -> None:
    result = run_lcp(
        "--debug", "predict", "--model", str(model_path), "-i", str(tmp_path / "absent.csv"),
        "-o", "-", env={"LCP_ROOT": str(model_path.parent.parent)},
    )  # fmt: skip
    assert result.returncode != 0 and "Traceback" in result.stderr
