"""Score the same synthetic files several ways, side by side: what a user waits for, from start
to exit, and the peak memory of each.

    python scripts/bench_score.py [--rows 1000 1000000] [--runs 3] [--baseline REV]
                                  [--artifact PATH] [--explain K] [--only floor artifact ...]

Synthetic raw leads with the marginals of data/raw/raw_data.csv
(lead_conversion_prediction.synthetic) are written once per size, then each file is read or
scored in a child process by:

- floor: pyarrow's multithreaded CSV reader alone (``pyarrow.csv.read_csv``), no scoring: the
  yardstick, a whole process too;
- artifact: ``lcp predict --model models/lead_model.joblib`` (to Parquet); with ``--explain
  K``, also with ``--explain K``;
- champion: ``lcp predict`` as a user runs it: the champion of the local MLflow store, as
  the workspace remembers it once resolved (``scoring/model_cache.py``);
- champion-changed: the same after the registered model changed other than through lcp (a
  tag set in MLflow's UI, an alias moved by another client): MLflow resolves the alias, the
  kept copy of the version is read (the kept resolution is removed before each run);
- champion-cold: with the workspace's cache deleted: MLflow resolves the alias, and the
  version's files are downloaded, checked and read with skops (``.cache/`` is emptied before
  each run; ``lcp register`` keeps the copy and the resolution of what it registers);
- monitored, champion-monitored: the same two with ``--monitor`` (drift counted in the same
  pass, the report written and logged to MLflow; the champion needs a reference profile: a
  version registered by this version of lcp);
- spark: ``lcp predict --engine spark --spark-master local[2]``;
- serve: ``lcp serve`` (the champion), from its start to its first answered ``/ping``; the
  file plays no part;
- mlflow: ``mlflow.pyfunc.load_model(@champion).predict(pd.read_csv(file))``, the plain way.

With ``--baseline REV``, the artifact, champion, serve and Spark ways are also timed with that
revision's package (``<way>@REV``, runs alternating with today's), before and after a change.

Every figure is whole-process: the child is timed from outside, from its start to its exit,
imports, model loading and writing included (``scripts/bench_process.py``), and peak RSS is that
of the child and all its descendants (Spark's JVM and Python workers included). Runs alternate
between the ways, so that all see the same machine load; the table shows each way's fastest
run, its median, and its wall time over the floor's. The scoring loop's own time, as
``lcp predict`` logs it, stands beside them, labelled as such.

Goals (2-core machine, idle), printed with the table: 1,000 leads in <= 1.5 s from the
artifact and <= 3.0 s from @champion; 1,000,000 leads within 5x the floor from the artifact and
7x from @champion; ``--monitor`` within 1.15x of the same command without it.
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
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench_process import Measured, measure, measure_start

ROOT = Path(__file__).resolve().parents[1]
WAYS = (
    "floor", "artifact", "monitored", "champion", "champion-changed", "champion-cold",
    "champion-monitored", "explained", "spark", "serve", "mlflow",
)  # fmt: skip
ONCE = ("spark", "mlflow")  # slow: one run each
# Timed at --baseline REV too.
BASELINED = ("artifact", "champion", "spark", "serve")
BASELINE_MARK = "@"
ARTIFACT = "models/lead_model.joblib"
CHAMPION = "models:/lead_model@champion"
SERVE_PORT = 5091  # below the ephemeral range; the serve way waits for its /ping
LOOP = re.compile(r"rows scored, [\d,]+ rejected, in ([\d.,]+) s")
# Whole-process goals: seconds for a small file, times the floor for a large one.
CHAMPIONS = ("champion", "champion-changed", "champion-cold")
SMALL_ROWS, SMALL_GOALS = 1_000, {"artifact": 1.5, **dict.fromkeys(CHAMPIONS, 3.0)}
LARGE_ROWS, LARGE_GOALS = 1_000_000, {"artifact": 5.0, **dict.fromkeys(CHAMPIONS, 7.0)}
ALERT = 3  # lcp's exit code when --monitor finds drift (the synthetic leads span four sources)
# --monitor against the same command without it, at any size from LARGE_ROWS.
MONITORED, MONITOR_GOAL = {"monitored": "artifact", "champion-monitored": "champion"}, 1.15


@dataclass
class Result:
    """The runs of one way of reading or scoring one file."""

    wall: list[float] = field(default_factory=list)
    peak_mb: list[float] = field(default_factory=list)
    loop: list[float] = field(default_factory=list)
    error: str = ""

    def add(self, run: Measured) -> None:
        if run.returncode not in (0, ALERT):  # a drift alert (--monitor) is a result
            self.error = run.last_line()
            return
        self.wall.append(run.wall)
        self.peak_mb.append(run.peak_mb)
        found = LOOP.search(run.output)
        if found is not None:
            self.loop.append(float(found.group(1).replace(",", "")))


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
    scores = loaded.predict(pd.read_csv(path))
    print(f"mlflow: {len(scores)} rows")


def command(
    way: str, path: Path, out: Path, artifact: str, baseline: Path | None, explain: int
) -> tuple[list[str], dict[str, str]]:
    python, env = sys.executable, {**os.environ, "PYSPARK_PYTHON": sys.executable}
    if BASELINE_MARK in way:
        assert baseline is not None
        way = way.split(BASELINE_MARK)[0]
        env = {**env, "PYTHONPATH": str(baseline), "LCP_ROOT": str(ROOT)}
        out = out / "baseline-out"
        out.mkdir(exist_ok=True)
    if way == "serve":
        port = str(SERVE_PORT)
        return [python, "-m", "lead_conversion_prediction", "serve", "--port", port], env
    lcp = [python, "-m", "lead_conversion_prediction", "predict", "-i", str(path)]
    if way == "floor":
        return [python, __file__, "--floor", str(path)], env
    if way == "mlflow":
        return [python, __file__, "--mlflow", str(path), CHAMPION], env
    if way in CHAMPIONS:
        return [*lcp, "-o", str(out / "champion.parquet")], env
    if way == "champion-monitored":
        return [*lcp, "-o", str(out / "champion.parquet"), "--monitor"], env
    lcp += ["--model", artifact]
    if way == "artifact":
        return [*lcp, "-o", str(out / "artifact.parquet")], env
    if way == "monitored":
        return [*lcp, "-o", str(out / "artifact.parquet"), "--monitor"], env
    if way == "explained":
        return [*lcp, "-o", str(out / "artifact.parquet"), "--explain", str(explain)], env
    spark = ["--engine", "spark", "--spark-master", "local[2]", "--overwrite"]
    return [*lcp, "-o", str(out / "spark"), *spark], env


def forget(way: str) -> None:
    """Empty what the workspace keeps of registered models (champion-cold), or only the kept
    resolutions (champion-changed), before a run of ``way``."""
    from lead_conversion_prediction.config import Paths
    from lead_conversion_prediction.scoring.model_cache import RESOLVED_NAME

    cache = Paths(ROOT).cache_dir
    if way == "champion-cold":
        shutil.rmtree(cache, ignore_errors=True)
    elif way == "champion-changed":
        (cache / RESOLVED_NAME).unlink(missing_ok=True)


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


def goal(way: str, rows: int, wall: float, floor: float | None, plain: float | None) -> str:
    if way in MONITORED and rows >= LARGE_ROWS and plain:
        verdict = "met" if wall <= MONITOR_GOAL * plain else "missed"
        return f"{wall / plain:.2f}x {MONITORED[way]}: goal <= {MONITOR_GOAL}x {verdict}"
    if rows == SMALL_ROWS and way in SMALL_GOALS:
        limit = SMALL_GOALS[way]
        return f"goal <= {limit:.1f} s: {'met' if wall <= limit else 'missed'}"
    if rows >= LARGE_ROWS and way in LARGE_GOALS and floor:
        limit = LARGE_GOALS[way]
        return f"goal <= {limit:.0f}x floor: {'met' if wall <= limit * floor else 'missed'}"
    return ""


def report(rows: int, results: dict[str, Result], labels: dict[str, str]) -> None:
    floor = min(results["floor"].wall) if results.get("floor") and results["floor"].wall else None
    print(f"\n{rows:,} rows: whole process, start to exit (fastest run; median)")
    header = f"{'wall s':>8} {'median':>8} {'x floor':>8} {'peak MB':>9} {'loop s*':>8}"
    width = max(36, *(len(labels[way]) for way in results))
    print(f"  {'way':<{width}} {header}")
    for way, result in results.items():
        if result.error:
            print(f"  {labels[way]:<{width}} failed: {result.error}")
            continue
        best = min(result.wall)
        ratio = f"{best / floor:.2f}" if floor else "-"
        plain = results.get(MONITORED.get(way, ""))
        plain_best = min(plain.wall) if plain and plain.wall else None
        loop = f"{min(result.loop):8.2f}" if result.loop else f"{'':8}"
        verdict = goal(way, rows, best, floor, plain_best)
        print(
            f"  {labels[way]:<{width}} {best:8.2f} {statistics.median(result.wall):8.2f} "
            f"{ratio:>8} {max(result.peak_mb):9,.0f} {loop}  {verdict}"
        )
    print("  * loop s: the scoring loop alone, as lcp predict logs it (not what a user waits for)")


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
    parser.add_argument("--rows", type=int, nargs="+", default=[SMALL_ROWS, LARGE_ROWS])
    parser.add_argument("--runs", type=int, default=3, help="runs of each way but Spark, MLflow")
    parser.add_argument("--artifact", default=ARTIFACT, help=f"the local artifact [{ARTIFACT}]")
    parser.add_argument("--baseline", help=f"also time {', '.join(BASELINED)} at this revision")
    parser.add_argument(
        "--explain", type=int, default=0, metavar="K", help="also time --explain K"
    )
    parser.add_argument("--only", nargs="+", choices=WAYS, help="time only these ways")
    arguments = parser.parse_args()
    ways = [w for w in (arguments.only or WAYS) if w != "explained" or arguments.explain]
    if arguments.baseline:
        twins = [f"{w}{BASELINE_MARK}{arguments.baseline}" for w in ways if w in BASELINED]
        ways += twins
    labels = {
        "floor": "floor: pyarrow read_csv",
        "artifact": "lcp predict --model <artifact>",
        "champion": "lcp predict (@champion)",
        "champion-changed": "lcp predict (@champion), model changed",
        "champion-cold": "lcp predict (@champion), cache deleted",
        "monitored": "lcp predict --model <artifact> --monitor",
        "champion-monitored": "lcp predict (@champion) --monitor",
        "explained": f"lcp predict --model <artifact> --explain {arguments.explain}",
        "spark": "lcp predict --engine spark local[2]",
        "serve": "lcp serve: start to first /ping",
        "mlflow": "mlflow pyfunc predict(pd.read_csv)",
    }
    for way in ways:
        if BASELINE_MARK in way:
            name, _, revision = way.partition(BASELINE_MARK)
            labels[way] = f"{labels[name]} at {revision}"
    with tempfile.TemporaryDirectory(prefix="bench-score-") as folder:
        base = Path(folder)
        baseline = export_baseline(arguments.baseline, base) if arguments.baseline else None
        for rows in arguments.rows:
            path = make_file(rows, base)
            results = {way: Result() for way in ways}
            for attempt in range(arguments.runs):
                for way in ways:
                    if (way in ONCE and attempt > 0) or results[way].error:
                        continue
                    argv, env = command(
                        way, path, base, arguments.artifact, baseline, arguments.explain
                    )
                    forget(way.split(BASELINE_MARK)[0])
                    if way.split(BASELINE_MARK)[0] == "serve":
                        ping = f"http://127.0.0.1:{SERVE_PORT}/ping"
                        results[way].add(measure_start(argv, env, ping))
                    else:
                        results[way].add(measure(argv, env))
            report(rows, results, labels)
            path.unlink()
            shutil.rmtree(base / "baseline-out", ignore_errors=True)
            for name in ("artifact.parquet", "champion.parquet", "spark"):
                shutil.rmtree(base / f"{Path(name).stem}.monitoring", ignore_errors=True)
                target = base / name
                if target.is_dir():
                    shutil.rmtree(target)
                else:
                    target.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
