"""`lcp predict` as users run it: files, stdin and stdout, and every class of bad input.

The input checks run the command in the test's process (``lcp_here``: the same app, exit code
and streams, without a second of start-up each); what depends on the process itself (pipes,
the traceback of ``--debug``, what is imported) runs ``lcp`` as a command.
"""

import gzip
import subprocess
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from lead_conversion_prediction.csv_io import read_csv_text
from tests.support import fit_small_model, lcp_here, make_project, run_lcp, save_verified

pytestmark = pytest.mark.long(seconds=20)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = fit_small_model()
    folder = make_project(tmp_path_factory.mktemp("project")) / "models"
    save_verified(model, folder / "lead_model.joblib")
    return folder / "lead_model.joblib"


def predict(
    model_path: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``lcp predict --model MODEL ARGS`` in this process."""
    root = str(model_path.parent.parent)
    arguments = ("predict", "--model", str(model_path), *args)
    return lcp_here(*arguments, env={"LCP_ROOT": root}, stdin=stdin)


def last_line(result: subprocess.CompletedProcess[str]) -> str:
    return result.stderr.strip().splitlines()[-1]


def test_stdin_to_stdout(model_path: Path, make_leads: Callable[..., pd.DataFrame]) -> None:
    csv = make_leads(n=25).to_csv(index=False)
    arguments = ("predict", "--model", str(model_path), "-i", "-", "-o", "-", "--sort")
    result = run_lcp(*arguments, env={"LCP_ROOT": str(model_path.parent.parent)}, stdin=csv)
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
        (
            b"lead_id,purchases,time_spent,n_visits,customer_group,onboarding,purchases\n"
            b"1,2,3,4,5,True,7\n",
            "the header names column 'purchases' 2 times",
        ),
        (
            b"Lead_ID,purchases,time_spent,n_visits,customer_group,onboarding\n1,2,3,4,5,True\n",
            "missing required column 'lead_id' (found 'Lead_ID': names must match exactly)",
        ),
    ],
    ids=[
        "empty",
        "header-only",
        "missing-column",
        "renamed-column",
        "delimiter",
        "bytes",
        "repeated-column",
        "near-miss",
    ],
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


@pytest.mark.parametrize("k", ["0", "6", "-1"])
def test_explain_outside_1_to_5_is_refused_before_the_model_loads(
    model_path: Path, tmp_path: Path, make_leads: Callable[..., pd.DataFrame], k: str
) -> None:
    source = tmp_path / "leads.csv"
    make_leads(n=5).to_csv(source, index=False)
    absent = tmp_path / "absent.joblib"  # loading it would fail: the option is checked first
    result = lcp_here(
        "predict", "--model", str(absent), "-i", str(source), "-o", str(tmp_path / "s.csv"),
        "--explain", k, env={"LCP_ROOT": str(model_path.parent.parent)},
    )  # fmt: skip
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and errors[0].startswith("Error: Invalid value for '--explain'")
    assert "absent.joblib" not in result.stderr and not (tmp_path / "s.csv").exists()
    assert "[1<=x<=5]" in " ".join(lcp_here("predict", "--help").stdout.split())


def test_explained_scores_name_the_leads_values_and_add_up(
    model_path: Path, tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    import numpy as np

    leads = make_leads(n=30, seed=2)
    leads.to_csv(tmp_path / "leads.csv", index=False)
    scores_path = tmp_path / "s.parquet"  # every bit: a CSV file gives 6 significant digits
    result = predict(
        model_path, "-i", str(tmp_path / "leads.csv"), "-o", str(scores_path), "--explain", "5"
    )
    assert result.returncode == 0, result.stderr
    scores = pd.read_parquet(scores_path)
    assert list(scores.columns)[5:8] == ["base_log_odds", "reason_1", "reason_1_contribution"]
    p = scores["conversion_probability"]
    added = scores["base_log_odds"] + sum(scores[f"reason_{i}_contribution"] for i in range(1, 6))
    np.testing.assert_allclose(added, np.log(p) - np.log1p(-p), rtol=0, atol=1e-6)
    shown = scores.filter(regex=r"^reason_\d$").stack().dropna().str.split("=").str[0]
    assert set(shown) <= {"purchases", "time_spent", "n_visits", "customer_group", "onboarding"}
    weak = scores.filter(regex=r"^reason_\d_contribution$").abs().to_numpy() < 0.05  # params
    assert (scores.filter(regex=r"^reason_\d$").isna().to_numpy() == weak).all()


def test_debug_shows_the_traceback(model_path: Path, tmp_path: Path) -> None:
    result = run_lcp(
        "--debug", "predict", "--model", str(model_path), "-i", str(tmp_path / "absent.csv"),
        "-o", "-", env={"LCP_ROOT": str(model_path.parent.parent)},
    )  # fmt: skip
    assert result.returncode != 0 and "Traceback" in result.stderr


def one_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single error line of a failed run; no traceback."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.mark.parametrize("how", ["same-path", "symlink", "hard-link"])
def test_an_output_that_is_the_input_is_refused_and_the_input_kept(
    model_path: Path, tmp_path: Path, make_leads: Callable[..., pd.DataFrame], how: str
) -> None:
    source = tmp_path / "leads.csv"
    make_leads(n=20).to_csv(source, index=False)
    before = source.read_bytes()
    target = tmp_path / "scores.csv"
    if how == "same-path":
        target = source
    elif how == "symlink":
        target.symlink_to(source)
    else:
        target.hardlink_to(source)
    message = one_error(predict(model_path, "-i", str(source), "-o", str(target)))
    assert f"is the input file {source}" in message
    assert source.read_bytes() == before


def test_an_output_folder_that_does_not_exist_is_refused(
    model_path: Path, tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    source = tmp_path / "leads.csv"
    make_leads(n=20).to_csv(source, index=False)
    target = tmp_path / "absent" / "scores.csv"
    message = one_error(predict(model_path, "-i", str(source), "-o", str(target)))
    assert f"folder {target.parent} does not exist" in message
    assert not target.parent.exists()


def test_a_stale_rejects_file_is_removed_by_a_clean_run(
    model_path: Path, tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    source, target = tmp_path / "leads.csv", tmp_path / "scores.csv"
    rejects = tmp_path / "scores.csv.rejects.csv"
    leads = make_leads(n=20).astype({"n_visits": "object"})
    leads.loc[4, "n_visits"] = "-1"
    leads.to_csv(source, index=False)
    skipped = predict(model_path, "-i", str(source), "-o", str(target), "--on-error", "skip")
    assert skipped.returncode == 0 and rejects.is_file()
    make_leads(n=20).to_csv(source, index=False)
    clean = predict(model_path, "-i", str(source), "-o", str(target))
    assert clean.returncode == 0, clean.stderr
    assert not rejects.exists()


def test_an_output_folder_that_cannot_be_written_is_one_line(
    model_path: Path, tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    """/sys stands in for a read-only folder: nobody may create a file there, root included."""
    source = tmp_path / "leads.csv"
    make_leads(n=20).to_csv(source, index=False)
    result = predict(model_path, "-i", str(source), "-o", "/sys/scores.csv")
    assert one_error(result) == (
        "error: /sys/scores.csv: cannot write it: Permission denied; "
        "the previous file is unchanged"
    )


def test_the_temporary_output_of_a_killed_run_is_removed_by_the_next(
    model_path: Path, tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    """A run killed while writing leaves its temporary file (named after its host and
    process); the next run into that folder removes it once that process is gone."""
    import os
    import signal
    import socket
    import sys

    source, target = tmp_path / "leads.csv", tmp_path / "scores.csv"
    make_leads(n=20).to_csv(source, index=False)
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    left = tmp_path / f".scores.csv.{socket.gethostname()}.{writer.pid}.x1y2.lcp-tmp"
    left.write_bytes(b"lead_id,conversion_probability\n1,0.")
    try:
        running = predict(model_path, "-i", str(source), "-o", str(target))
        assert running.returncode == 0 and left.exists(), "its writer still runs: kept"
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
    after = predict(model_path, "-i", str(source), "-o", str(target))
    assert after.returncode == 0, after.stderr
    assert not left.exists()
    assert f"removed {left}, left by a run that was killed" in after.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["leads.csv", "scores.csv"]


@pytest.mark.parametrize("name", ["leads.csv", "leads.csv.gz"])
def test_line_numbers_count_line_breaks_inside_quoted_fields(
    model_path: Path, tmp_path: Path, make_leads: Callable[..., pd.DataFrame], name: str
) -> None:
    leads = make_leads(n=12).astype({"customer_code": "object", "n_visits": "object"})
    leads.loc[2, "customer_code"] = "two\nlines"
    leads.loc[5, "customer_code"] = "three\nmore\nlines"
    leads.loc[9, "n_visits"] = "-4"  # data row 9: line 11 without the breaks, 14 with them
    text = leads.to_csv(index=False)
    assert text.splitlines()[13].startswith("9,")
    source = tmp_path / name
    source.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    message = one_error(predict(model_path, "-i", str(source), "-o", str(tmp_path / "s.csv")))
    assert message.endswith("column 'n_visits': value -4 is below 0 at line 14")
    skipped = predict(
        model_path, "-i", str(source), "-o", str(tmp_path / "s.csv"), "--on-error", "skip"
    )
    assert skipped.returncode == 0, skipped.stderr
    assert pd.read_csv(tmp_path / "s.csv.rejects.csv")["line"].tolist() == [14]


def test_blank_lines_are_no_rows_and_line_numbers_count_them(
    model_path: Path, tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    leads = make_leads(n=12).astype({"n_visits": "object"})
    leads.loc[9, "n_visits"] = "-4"  # line 11 without the blank lines, 14 with them
    lines = leads.to_csv(index=False).splitlines()
    # an empty line, a line of spaces and a tab, and a ragged row after them
    lines[3:3] = ["", "  \t "]
    lines[7:7] = [""]
    lines.append("99,1,2")
    assert lines[13].startswith("9,")
    source = tmp_path / "leads.csv"
    source.write_text("\n".join(lines) + "\n\n   \n")
    message = one_error(predict(model_path, "-i", str(source), "-o", str(tmp_path / "s.csv")))
    assert message.endswith("column 'n_visits': value -4 is below 0 at line 14")
    skipped = predict(
        model_path, "-i", str(source), "-o", str(tmp_path / "s.csv"), "--on-error", "skip"
    )
    assert skipped.returncode == 0, skipped.stderr
    rejects = pd.read_csv(tmp_path / "s.csv.rejects.csv")
    assert rejects["line"].tolist() == [14, 17]
    assert rejects["reason"][1] == f"row: 3 fields where the header has {len(leads.columns)}"
    assert len(pd.read_csv(tmp_path / "s.csv")) == len(leads) - 1  # as pandas reads the file
    assert len(read_csv_text(source)) == len(leads) + 1


def test_lines_ended_by_carriage_returns_are_read(
    model_path: Path, tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    text = make_leads(n=12).to_csv(index=False)
    (tmp_path / "unix.csv").write_text(text)
    (tmp_path / "mac.csv").write_text(text.replace("\n", "\r"))
    for name in ("unix", "mac"):
        result = predict(
            model_path,
            "-i",
            str(tmp_path / f"{name}.csv"),
            "-o",
            str(tmp_path / f"{name}.out.csv"),
        )
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "mac.out.csv").read_bytes() == (tmp_path / "unix.out.csv").read_bytes()


@pytest.mark.parametrize(
    ("lead_id", "message"),
    [
        ("1e20", "column 'lead_id': value '1e20' is too large for an integer at line 5"),
        (
            "9223372036854775808",
            "column 'lead_id': value '9223372036854775808' is too large for an integer at line 5",
        ),
    ],
)
def test_a_lead_id_too_large_for_an_integer_is_one_line(
    model_path: Path,
    tmp_path: Path,
    make_leads: Callable[..., pd.DataFrame],
    lead_id: str,
    message: str,
) -> None:
    leads = make_leads(n=10).astype({"lead_id": "object"})
    leads.loc[3, "lead_id"] = lead_id
    source = tmp_path / "leads.csv"
    leads.to_csv(source, index=False)
    line = one_error(predict(model_path, "-i", str(source), "-o", str(tmp_path / "s.csv")))
    assert line == f"error: {source}: {message}"


def test_a_folder_named_like_a_file_is_one_line(model_path: Path, tmp_path: Path) -> None:
    folder = tmp_path / "leads.parquet"
    folder.mkdir()
    message = one_error(predict(model_path, "-i", str(folder), "-o", str(tmp_path / "s.csv")))
    assert message == f"error: {folder}: is a directory, not a file"


def test_a_header_cell_over_128_kb_is_one_line(model_path: Path, tmp_path: Path) -> None:
    source = tmp_path / "leads.csv"
    source.write_text("lead_id," + "x" * 200_000 + "\n1,2\n")
    message = one_error(predict(model_path, "-i", str(source), "-o", str(tmp_path / "s.csv")))
    assert message.startswith(f"error: {source}: ")
    assert len(message) < 400


def test_a_header_wider_than_any_read_window_is_read_in_full(
    model_path: Path, tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    """200,000 columns before the contract's: a 1.9 MB header, wider than the 64 KiB first
    look and Arrow's 1 MiB block, is read whole and the leads are scored."""
    leads = make_leads(n=3)
    extra = pd.DataFrame(0, index=leads.index, columns=[f"x{i}" for i in range(200_000)])
    source, target = tmp_path / "wide.csv", tmp_path / "s.csv"
    pd.concat([extra, leads], axis=1).to_csv(source, index=False)
    assert source.stat().st_size > 1 << 20
    result = predict(model_path, "-i", str(source), "-o", str(target))
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(pd.read_csv(target)["lead_id"]) == sorted(leads["lead_id"])


def test_a_header_over_the_limit_is_refused_with_the_reason(
    model_path: Path, tmp_path: Path
) -> None:
    from lead_conversion_prediction.scoring.io import HEADER_MAX_BYTES

    source = tmp_path / "wide.csv"
    with source.open("w") as stream:
        stream.write("lead_id," + ",".join(f"x{i}" for i in range(HEADER_MAX_BYTES // 6)))
        stream.write("\n1\n")
    message = one_error(predict(model_path, "-i", str(source), "-o", str(tmp_path / "s.csv")))
    assert message.startswith(f"error: {source}: the header row is over 16 MiB (")
    assert "keep the columns the contract reads" in message


def test_a_parquet_file_with_a_corrupt_footer_is_one_line(
    model_path: Path, tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    source = tmp_path / "leads.parquet"
    make_leads(n=5).to_parquet(source, index=False)
    data = bytearray(source.read_bytes())
    footer = int.from_bytes(data[-8:-4], "little")  # the magic bytes and length stay valid
    data[-8 - footer : -8] = b"\xff" * footer
    source.write_bytes(bytes(data))
    result = predict(model_path, "-i", str(source), "-o", str(tmp_path / "s.csv"))
    assert one_error(result).startswith(f"error: {source}: not a readable Parquet file (")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["leads.parquet"]


def test_a_parquet_file_that_repeats_a_column_is_one_line(
    model_path: Path, tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(make_leads(n=5), preserve_index=False)
    source = tmp_path / "leads.parquet"
    pq.write_table(table.append_column("n_visits", pa.array([9.0] * 5)), source)
    result = predict(model_path, "-i", str(source), "-o", str(tmp_path / "s.csv"))
    assert result.returncode == 2
    assert last_line(result) == f"error: {source}: the header names column 'n_visits' 2 times"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["leads.parquet"]


def test_a_parquet_column_name_near_the_contract_is_named(
    model_path: Path, tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    source = tmp_path / "leads.parquet"
    make_leads(n=5).rename(columns={"purchases": "Purchases "}).to_parquet(source)
    result = predict(model_path, "-i", str(source), "-o", str(tmp_path / "s.csv"))
    assert result.returncode == 2
    assert last_line(result) == (
        f"error: {source}: missing required column 'purchases' "
        "(found 'Purchases ': names must match exactly)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["leads.parquet"]


def test_a_gzip_file_is_scored_as_its_text_is(
    model_path: Path, tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    text = make_leads(n=40).to_csv(index=False).encode()
    (tmp_path / "leads.csv").write_bytes(text)
    # told by its first bytes, whatever its name
    (tmp_path / "export.csv").write_bytes(gzip.compress(text))
    plain = predict(model_path, "-i", str(tmp_path / "leads.csv"), "-o", str(tmp_path / "a.csv"))
    packed = predict(model_path, "-i", str(tmp_path / "export.csv"), "-o", str(tmp_path / "b.csv"))
    assert plain.returncode == packed.returncode == 0, packed.stderr
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(gzip.compress(text)[:-20])
    message = one_error(predict(model_path, "-i", str(cut), "-o", str(tmp_path / "a.csv")))
    assert message.startswith(f"error: {cut}: not a whole gzip file (")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_a_local_model_is_scored_without_importing_mlflow_pyspark_or_pandera(
    model_path: Path, tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    leads = tmp_path / "leads.csv"
    make_leads(n=30).to_csv(leads, index=False)
    result = run_lcp(
        "predict",
        "--model",
        str(model_path),
        "-i",
        str(leads),
        "-o",
        str(tmp_path / "s.csv"),
        env={"LCP_ROOT": str(model_path.parent.parent), "PYTHONPROFILEIMPORTTIME": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    imported = {
        line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines() if "|" in line
    }
    assert "lead_conversion_prediction.stages.predict" in imported
    assert not {name for name in imported if name.split(".")[0] == "mlflow"}
    # Clean leads pass the contract's numpy checks: pandera is loaded only to name a breach.
    assert not {name for name in imported if name.split(".")[0] == "pandera"}
    assert "pyspark" not in imported, "PySpark is loaded by --engine spark only"
