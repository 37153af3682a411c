"""Score the same synthetic files four ways, side by side: rows/s and peak memory of each.

    python scripts/bench_score.py [--rows 1000000 10000000] [--runs 3] [--baseline REV]
                                  [--model URI] [--explain K] [--only floor local ...]

Synthetic raw leads with the marginals of data/raw/raw_data.csv
(lead_conversion_prediction.synthetic) are written once per size, then each file is read or
scored in a child process by:

- floor: pyarrow's multithreaded CSV reader alone (``pyarrow.csv.read_csv``), no scoring;
- local: ``lcp predict`` (to Parquet); with ``--baseline REV``, also that revision's package;
  with ``--explain K``, also ``lcp predict --explain K`` (each lead's K strongest reasons);
- spark: ``lcp predict --engine spark --spark-master local[2]``;
- mlflow: ``mlflow.pyfunc.load_model(MODEL).predict(pd.read_csv(file))``, the plain way.

Runs alternate between the ways, so that all see the same machine load. ``work`` is the time
each reports for its reading and scoring (start-up, imports and the JVM left out); ``wall``
is the child's whole life. Peak RSS is sampled every 20 ms over the child and all of its
descendants (the JVM and Python workers of Spark included), summed. The table shows the
fastest run of each way and its work time over the floor's.
Goal (2-core machine): local scoring within 2x of the floor's time.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = os.sysconf("SC_PAGE_SIZE")
WAYS = ("floor", "local", "explained", "baseline", "spark", "mlflow")
MODEL = "models:/lead_model@champion"
_NUMBER = r"([\d.,]+)"


@dataclass
class Result:
    """The runs of one way of reading or scoring one file."""

    work: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    peak_mb: list[float] = field(default_factory=list)
    error: str = ""


def make_file(rows: int, folder: Path) -> Path:
    """Write the synthetic file in a child process, so this one stays small."""
    path = folder / f"leads-{rows}.csv"
    subprocess.run([sys.executable, __file__, "--write", str(rows), str(path)], check=True)
    return path


def write_file(rows: int, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from lead_conversion_prediction.csv_io import read_csv_text
    from lead_conversion_prediction.synthetic import describe_marginals, generate_leads

    profile = describe_marginals(read_csv_text(ROOT / "data" / "raw" / "raw_data.csv"))
    with pacsv.CSVWriter(path, pa.Table.from_pandas(generate_leads(1, profile)).schema) as writer:
        for start in range(0, rows, 500_000):
            block = generate_leads(min(500_000, rows - start), profile, seed=start)
            block["lead_id"] += start
            writer.write_table(pa.Table.from_pandas(block, preserve_index=False))


def read_floor(path: str) -> None:
    """The floor, run in a child: pyarrow's multithreaded CSV reader, every column."""
    import pyarrow.csv as pacsv

    started = time.perf_counter()
    table = pacsv.read_csv(path)
    print(f"floor: {table.num_rows} rows in {time.perf_counter() - started:.3f} s")


def predict_mlflow(path: str, model: str) -> None:
    """The plain MLflow way, run in a child: load the pyfunc, read the file, predict."""
    import mlflow
    import pandas as pd

    from lead_conversion_prediction.config import default_tracking_uri

    mlflow.set_tracking_uri(os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri())
    loaded = mlflow.pyfunc.load_model(model)
    started = time.perf_counter()
    scores = loaded.predict(pd.read_csv(path))
    print(f"mlflow: {len(scores)} rows in {time.perf_counter() - started:.3f} s")


def tree_rss(pid: int) -> int:
    """The resident bytes of a process and all its descendants."""
    total, pending = 0, [pid]
    while pending:
        process = Path(f"/proc/{pending.pop()}")
        try:
            total += int((process / "statm").read_text().split()[1]) * PAGE
            for task in (process / "task").iterdir():
                pending.extend(int(child) for child in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


def run(command: list[str], env: dict[str, str], work: Callable[[str], float]) -> Result:
    """Run one child to its end: its work seconds, wall seconds and peak tree RSS."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], tree_rss(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = process.communicate()
    done.set()
    sampler.join()
    result = Result()
    if process.returncode != 0:
        result.error = output.strip().splitlines()[-1] if output.strip() else "failed"
        return result
    result.work.append(work(output))
    result.wall.append(time.perf_counter() - started)
    result.peak_mb.append(peak[0] / 2**20)
    return result


def reported(pattern: str) -> Callable[[str], float]:
    def work(output: str) -> float:
        found = re.search(pattern, output)
        if found is None:
            raise SystemExit(f"no timing in:\n{output[-2000:]}")
        return float(found.group(1).replace(",", ""))

    return work


LCP_SECONDS = reported(rf"rows scored, [\d,]+ rejected, in {_NUMBER} s")


def commands(
    way: str, path: Path, out: Path, model: str | None, baseline: Path | None, explain: int
) -> tuple[list[str], dict[str, str], Callable[[str], float]]:
    python, env = sys.executable, {**os.environ, "PYSPARK_PYTHON": sys.executable}
    lcp = [python, "-m", "lead_conversion_prediction", "predict", "-i", str(path)]
    lcp += ["--model", model] if model else []
    if way == "floor":
        return [python, __file__, "--floor", str(path)], env, reported(rf"in {_NUMBER} s")
    if way == "local":
        return [*lcp, "-o", str(out / "local.parquet")], env, LCP_SECONDS
    if way == "explained":
        return (
            [*lcp, "-o", str(out / "local.parquet"), "--explain", str(explain)],
            env,
            LCP_SECONDS,
        )
    if way == "baseline":
        assert baseline is not None
        env = {**env, "PYTHONPATH": str(baseline), "LCP_ROOT": str(ROOT)}
        return [*lcp, "-o", str(out / "baseline.parquet")], env, LCP_SECONDS
    if way == "spark":
        spark = ["--engine", "spark", "--spark-master", "local[2]", "--overwrite"]
        return [*lcp, "-o", str(out / "spark"), *spark], env, LCP_SECONDS
    command = [python, __file__, "--mlflow", str(path), model or MODEL]
    return command, env, reported(rf"in {_NUMBER} s")


def export_baseline(revision: str, folder: Path) -> Path:
    """The package as it was at ``revision``, to put first on PYTHONPATH."""
    archive = subprocess.run(
        ["git", "archive", revision, "lead_conversion_prediction"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    target = folder / "baseline"
    target.mkdir()
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def report(rows: int, results: dict[str, Result], labels: dict[str, str]) -> None:
    floor = min(results["floor"].work) if results["floor"].work else None
    print(f"\n{rows:,} rows")
    header = f"{'work s':>8} {'rows/s':>12} {'x floor':>8} {'wall s':>8} {'peak MB':>9}"
    print(f"  {'way':<34} {header}")
    for way, result in results.items():
        if result.error:
            print(f"  {labels[way]:<34} failed: {result.error}")
            continue
        best = min(result.work)
        spread = f" (median {statistics.median(result.work):.2f})" if len(result.work) > 1 else ""
        ratio = f"{best / floor:.2f}" if floor else "-"
        print(
            f"  {labels[way]:<34} {best:8.2f} {rows / best:12,.0f} {ratio:>8} "
            f"{min(result.wall):8.2f} {max(result.peak_mb):9,.0f}{spread}"
        )


def main() -> None:
    if sys.argv[1:2] == ["--write"]:
        write_file(int(sys.argv[2]), Path(sys.argv[3]))
        return
    if sys.argv[1:2] == ["--floor"]:
        read_floor(sys.argv[2])
        return
    if sys.argv[1:2] == ["--mlflow"]:
        predict_mlflow(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--runs", type=int, default=3, help="runs of floor and local scoring")
    parser.add_argument("--model", help="model for lcp [default: models/lead_model.joblib]")
    parser.add_argument("--mlflow-model", default=MODEL, help=f"pyfunc to load [{MODEL}]")
    parser.add_argument("--baseline", help="also time local scoring at this git revision")
    parser.add_argument(
        "--explain", type=int, default=0, metavar="K", help="also time --explain K"
    )
    parser.add_argument("--only", nargs="+", choices=WAYS, help="time only these ways")
    arguments = parser.parse_args()
    optional = {"baseline": arguments.baseline, "explained": arguments.explain}
    ways = [way for way in (arguments.only or WAYS) if optional.get(way, True)]
    labels = {
        "floor": "floor: pyarrow read_csv",
        "local": "lcp predict (local)",
        "explained": f"lcp predict --explain {arguments.explain}",
        "baseline": f"lcp predict (local) at {arguments.baseline}",
        "spark": "lcp predict --engine spark local[2]",
        "mlflow": "mlflow pyfunc predict(pd.read_csv)",
    }
    with tempfile.TemporaryDirectory(prefix="bench-score-") as folder:
        base = Path(folder)
        baseline = export_baseline(arguments.baseline, base) if arguments.baseline else None
        for rows in arguments.rows:
            path = make_file(rows, base)
            results = {way: Result() for way in ways}
            for attempt in range(arguments.runs):
                for way in ways:
                    once = way in ("spark", "mlflow")
                    if (once and attempt > 0) or results[way].error:
                        continue
                    model = arguments.mlflow_model if way == "mlflow" else arguments.model
                    command, env, work = commands(
                        way, path, base, model, baseline, arguments.explain
                    )
                    outcome = run(command, env, work)
                    results[way].error = outcome.error
                    results[way].work += outcome.work
                    results[way].wall += outcome.wall
                    results[way].peak_mb += outcome.peak_mb
            report(rows, results, labels)
            path.unlink()
            for name in ("local.parquet", "baseline.parquet", "spark"):
                target = base / name
                if target.is_dir():
                    shutil.rmtree(target)
                else:
                    target.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
