"""Benchmark batch scoring: rows per second and peak memory of `lcp predict`.

    python scripts/bench_score.py [--rows 100000 1000000] [--model PATH] [--explain K]

Generates synthetic raw leads with the marginal distributions of data/raw/raw_data.csv
(lead_conversion_prediction.synthetic), scores each file with `lcp predict` in a child
process, and prints its scoring rate (read, validate, transform, predict, write), its wall
time (start-up included) and its peak resident memory.
With ``--explain K`` each file is also scored with ``lcp predict --explain K`` (each lead's K
strongest reasons), right after the plain run, so the two can be compared.
Targets (2-core machine): >= 500,000 rows/s on 1M rows, peak RSS <= 1 GB.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_file(rows: int, folder: Path) -> Path:
    """Write the synthetic file in a child process, so this one stays small: a child forked
    from it would otherwise count this process's memory in its own peak."""
    path = folder / f"leads-{rows}.csv"
    subprocess.run([sys.executable, __file__, "--write", str(rows), str(path)], check=True)
    return path


def write_file(rows: int, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from lead_conversion_prediction.schema import read_csv_text
    from lead_conversion_prediction.synthetic import describe_marginals, generate_leads

    profile = describe_marginals(read_csv_text(ROOT / "data" / "raw" / "raw_data.csv"))
    with pacsv.CSVWriter(path, pa.Table.from_pandas(generate_leads(1, profile)).schema) as writer:
        for start in range(0, rows, 500_000):
            block = generate_leads(min(500_000, rows - start), profile, seed=start)
            block["lead_id"] += start
            writer.write_table(pa.Table.from_pandas(block, preserve_index=False))


def score(path: Path, model: str | None, explain: int = 0) -> tuple[float, float, str]:
    command = [sys.executable, "-m", "lead_conversion_prediction", "predict"]
    command += ["-i", str(path), "-o", str(path.with_suffix(".scores.csv"))]
    if model:
        command += ["--model", model]
    if explain:
        command += ["--explain", str(explain)]
    started = time.perf_counter()
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    log = process.stderr.read() if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(log)
    summary = re.search(r"predict: ([\d,]+) rows scored.*", log)
    return wall, usage.ru_maxrss / 1024, summary.group(0) if summary else log


def main() -> None:
    if sys.argv[1:2] == ["--write"]:
        write_file(int(sys.argv[2]), Path(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--model", help="model to score with [default: models/lead_model.joblib]")
    parser.add_argument(
        "--explain", type=int, default=0, metavar="K", help="also time --explain K"
    )
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for rows in arguments.rows:
            path = make_file(rows, Path(folder))
            for explain in sorted({0, arguments.explain}):
                wall, peak_mb, summary = score(path, arguments.model, explain)
                rate = re.search(r"\(([\d,]+) rows/s\)", summary)
                label = f" --explain {explain}" if explain else ""
                print(f"{rows:>11,} rows{label}: {rate.group(1) if rate else '?'} rows/s scoring, "
                      f"{wall:.2f} s wall with start-up, peak RSS {peak_mb:,.0f} MB")  # fmt: skip
            path.unlink()


if __name__ == "__main__":
    main()
