"""Inputs far larger than their content: each ends with its one-line error, promptly, with its
exit code, and an input longer than ``predict.max_rows`` stops before ranking holds it all.

Before the reader was bounded, a 2 GB sparse file printed its error and then hung at exit in
Arrow's thread pool (4 runs of 6), and a gzip of blank lines aborted after its error (exit 134):
each runs here as users run it, a process with a deadline.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.support import fit_small_model, lcp_here, make_project, save_verified

pytestmark = pytest.mark.long(seconds=30)

DEADLINE = 120  # seconds; each ends in a few


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = make_project(tmp_path_factory.mktemp("project")) / "models"
    save_verified(fit_small_model(), folder / "lead_model.joblib")
    return folder / "lead_model.joblib"


def predict_process(model_path: Path, source: Path) -> subprocess.CompletedProcess[str]:
    """``lcp predict`` on ``source`` as a process that must end within the deadline."""
    target = source.with_name("scores.csv")
    command = [sys.executable, "-m", "lead_conversion_prediction", "predict"]
    command += ["--model", str(model_path), "-i", str(source), "-o", str(target)]
    env = {**os.environ, "LCP_ROOT": str(model_path.parent.parent)}
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=DEADLINE, env=env, check=False
    )
    assert not target.exists()
    return result


def one_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    return errors[0]


def test_a_2_gb_sparse_file_ends_with_its_error(model_path: Path, tmp_path: Path) -> None:
    source = tmp_path / "sparse.csv"
    with source.open("wb") as stream:
        stream.truncate(2 << 30)  # no disk used: a hole of NUL bytes, no line end
    line = one_error(predict_process(model_path, source))
    assert "the header row is over 16 MiB (1 column at least)" in line


def test_a_gzip_of_blank_lines_ends_with_its_error(model_path: Path, tmp_path: Path) -> None:
    source = tmp_path / "blank.csv.gz"
    with gzip.open(source, "wb", compresslevel=1) as stream:
        block = b"\n" * (1 << 20)
        for _ in range(256):  # 256 MiB of blank lines in about 1 MB
            stream.write(block)
    line = one_error(predict_process(model_path, source))
    assert line.endswith("file is empty (no header row)")


def test_a_bad_row_before_millions_of_rows_ends_the_run_at_once(
    model_path: Path, tmp_path: Path
) -> None:
    source = tmp_path / "long.csv.gz"
    with gzip.open(source, "wb", compresslevel=1) as stream:
        stream.write(b"lead_id,purchases,time_spent,n_visits,customer_group,onboarding\n")
        stream.write(b"1,-5,1.0,1,1,True\n")
        block = b"2,1,1.0,1,1,True\n" * 100_000
        for _ in range(30):  # 3 million rows more
            stream.write(block)
    line = one_error(predict_process(model_path, source))
    assert "column 'purchases': value -5 is below 0 at line 2" in line


def test_an_input_longer_than_max_rows_stops_with_one_line_and_no_output(
    model_path: Path, tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    root = model_path.parent.parent
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["predict"] = {"max_rows": 40}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    source, target = tmp_path / "leads.csv", tmp_path / "scores.csv"
    try:
        make_leads(n=40).to_csv(source, index=False)
        arguments = ("predict", "--model", str(model_path), "-i", str(source), "-o", str(target))
        assert lcp_here(*arguments, env={"LCP_ROOT": str(root)}).returncode == 0
        make_leads(n=41).to_csv(source, index=False)
        refused = lcp_here(*arguments, env={"LCP_ROOT": str(root)})
    finally:
        (root / "params.yaml").write_text(yaml.safe_dump({**params, "predict": {}}))
    line = one_error(refused)
    assert line == (
        f"error: {source}: holds more than 40 rows, the most lcp predict scores in one run "
        "(predict.max_rows in params.yaml): split it, or score it with --engine spark"
    )
    assert pd.read_csv(target).shape[0] == 40, "the earlier output is left as it was"
