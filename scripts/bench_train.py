"""Benchmark training at scale: time and peak memory of the data, features and train stages.

    python scripts/bench_train.py [--sizes 100000,300000,1000000] [--seed 0]

For each size N, a temporary project gets a raw file of real kept leads resampled from
data/raw/raw_data.csv (lead_conversion_prediction.synthetic.resample_training_leads): every row
passes the cleaning, and the raw row count is chosen so that the split leaves exactly N
training rows. `lcp data`, `lcp features` and `lcp train` then run there one after the other,
each in a child process, with the project's params.yaml. The script checks that the data stage
kept every row and that the model saw N training rows, and prints each stage's wall time and
peak resident memory (the largest of: the child's own peak, and the sum over the child and its
descendants sampled every 50 ms from /proc), the search budget each candidate got, and how time and
memory grew from one size to the next against the growth in rows.
Targets (2-core machine): 1M training rows in <= 5 minutes and <= 4 GB, growing no faster
than the row count.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIN = Path("data") / "raw" / "raw_data.csv.dvc"
STAGES = ("data", "features", "train")
SAMPLE_SECONDS = 0.05
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class StageRun:
    seconds: float
    peak_mb: float


def raw_rows_for(train_rows: int, test_size: float) -> int:
    """The cleaned row count whose stratified split (scikit-learn: ceil(test_size * n) holdout
    rows) leaves exactly ``train_rows`` training rows."""
    n = math.ceil(train_rows / (1 - test_size))
    while n - math.ceil(test_size * n) < train_rows:
        n += 1
    while n > 1 and (n - 1) - math.ceil(test_size * (n - 1)) >= train_rows:
        n -= 1
    if n - math.ceil(test_size * n) != train_rows:
        raise SystemExit(f"no row count splits into exactly {train_rows:,} training rows")
    return n


def write_raw(rows: int, path: Path, seed: int) -> None:
    """Write ``rows`` resampled kept leads (run in a child, so this process stays small)."""
    from lead_conversion_prediction.config import load_params
    from lead_conversion_prediction.csv_io import read_csv_text
    from lead_conversion_prediction.dataset import clean_leads
    from lead_conversion_prediction.schema import validate_leads
    from lead_conversion_prediction.synthetic import resample_training_leads

    params = load_params(ROOT / "params.yaml")
    real = read_csv_text(ROOT / "data" / "raw" / "raw_data.csv")
    leads = resample_training_leads(real, rows, params.data, seed=seed)
    kept = len(clean_leads(validate_leads(leads, path), params.data))
    assert kept == rows, f"the cleaning would keep {kept:,} of {rows:,} generated rows"
    tmp = path.with_suffix(".tmp")
    leads.to_csv(tmp, index=False)
    tmp.rename(path)


def descendants(pid: int) -> list[int]:
    """The process ``pid`` and all its descendants, from /proc (Linux; else ``pid`` alone)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                queue += [int(child) for child in task.read_text().split()]
            except OSError:
                continue
    return found


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants, now (0 once it is gone)."""
    total = 0
    for member in descendants(pid):
        try:
            resident_pages = int(Path(f"/proc/{member}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        total += resident_pages * PAGE_BYTES
    return total


def run_stage(stage: str, root: Path) -> StageRun:
    """Run ``lcp <stage>`` in the project ``root`` as a child; time it and track its memory."""
    command = [sys.executable, "-m", "lead_conversion_prediction", stage]
    if stage == "data":
        command.append("--accept-changed-raw")  # the resampled file is not the pinned one
    env = {
        **os.environ,
        "LCP_ROOT": str(root),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
    }
    started = time.perf_counter()
    child = subprocess.Popen(
        command, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(child.pid))
            done.wait(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    log = child.stderr.read() if child.stderr else ""  # read before reaping: no pipe stall
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"lcp {stage} failed ({child.returncode}):\n{log}")
    return StageRun(seconds, max(peak, usage.ru_maxrss * 1024) / 2**20)


def new_project(base: Path, train_rows: int, seed: int) -> tuple[Path, int]:
    """A temporary project with the parameters, the pin and a raw file of resampled leads."""
    import yaml

    root = base / f"train-{train_rows}"
    (root / "data" / "raw").mkdir(parents=True)
    shutil.copy(ROOT / "params.yaml", root / "params.yaml")
    shutil.copy(ROOT / PIN, root / PIN)
    params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
    rows = raw_rows_for(train_rows, float(params.get("split", {}).get("test_size", 0.15)))
    raw = root / "data" / "raw" / "raw_data.csv"
    written = subprocess.run(
        [sys.executable, __file__, "--write", str(rows), str(raw), str(seed)],
        capture_output=True,
        text=True,
        check=False,
    )
    if written.returncode != 0:
        raise SystemExit(f"writing {rows:,} resampled leads failed:\n{written.stderr}")
    return root, rows


def check_counts(root: Path, rows: int, train_rows: int) -> dict[str, str]:
    """Assert that the data stage kept every row and the model saw ``train_rows`` rows; return
    each candidate's search budget as printed."""
    data = json.loads((root / "data" / "interim" / "data_summary.json").read_text())
    assert data["rows_raw"] == data["rows_clean"] == rows, (
        f"the data stage kept {data['rows_clean']:,} of {data['rows_raw']:,} rows, not {rows:,}"
    )
    summary = json.loads((root / "models" / "candidates" / "summary.json").read_text())
    assert summary["rows_train"] == train_rows, (
        f"the model saw {summary['rows_train']:,} training rows, not {train_rows:,}"
    )
    budgets: dict[str, str] = {}
    for name, candidate in summary["candidates"].items():
        budget = candidate.get("budget") or {}
        searched = budget.get("search_rows", train_rows)
        budgets[name] = (
            f"{len(candidate['settings'])} settings x {len(candidate['cv'])} folds "
            f"on {searched:,} rows"
        )
    return budgets


def growth(before: float, after: float) -> str:
    return f"x{after / before:.2f}" if before > 0 else "-"


def main() -> None:
    if sys.argv[1:2] == ["--write"]:
        write_raw(int(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default="100000,300000,1000000",
        help="training row counts, comma-separated [default: %(default)s]",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the resampling")
    arguments = parser.parse_args()
    sizes = [int(size.replace("_", "")) for size in arguments.sizes.split(",") if size.strip()]
    if not (ROOT / "data" / "raw" / "raw_data.csv").is_file():
        raise SystemExit("data/raw/raw_data.csv is missing: run `make fetch` first")
    results: dict[int, dict[str, StageRun]] = {}
    print(f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as folder:
        for train_rows in sizes:
            root, rows = new_project(Path(folder), train_rows, arguments.seed)
            runs = {stage: run_stage(stage, root) for stage in STAGES}
            budgets = check_counts(root, rows, train_rows)
            results[train_rows] = runs
            total = sum(run.seconds for run in runs.values())
            print(f"{train_rows:>10,} training rows ({rows:,} raw rows, all kept):")
            for stage, run in runs.items():
                print(f"    {stage:<9}{run.seconds:8.1f} s  peak RSS {run.peak_mb:8,.0f} MB")
            peak = max(run.peak_mb for run in runs.values())
            print(f"    {'total':<9}{total:8.1f} s  peak RSS {peak:8,.0f} MB")
            for name, budget in budgets.items():
                print(f"    {name}: {budget}")
            shutil.rmtree(root)
    print(f"load average at end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for smaller, larger in itertools.pairwise(sizes):
        before, after = results[smaller], results[larger]
        times = ", ".join(
            f"{stage} {growth(before[stage].seconds, after[stage].seconds)}" for stage in STAGES
        )
        total_growth = growth(
            sum(run.seconds for run in before.values()), sum(run.seconds for run in after.values())
        )
        memory = growth(
            max(run.peak_mb for run in before.values()), max(run.peak_mb for run in after.values())
        )
        print(
            f"{smaller:,} -> {larger:,} rows (x{larger / smaller:.2f}): time {times}, "
            f"total {total_growth}; peak RSS {memory}"
        )


if __name__ == "__main__":
    main()
