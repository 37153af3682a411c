"""Time a cold `make pipeline`, a no-op `dvc repro` and `lcp --help`, and print the figures.

    python scripts/bench_pipeline.py [--runs 5]

Each run happens in a temporary git copy of the project that shares this checkout's .venv and
pulls the raw data from its DVC cache; outputs and the MLflow store are removed before each
run, and this workspace is left alone.
Targets (2-core machine): cold `make pipeline` <= 8 s, `dvc repro` after it <= 2 s,
`lcp --help` <= 0.5 s.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"


def sh(command: str, cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(
        command, shell=True, cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{command} failed:\n{result.stdout}\n{result.stderr}")
    return seconds, result.stdout + result.stderr


def make_copy(base: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    copy = base / "project"
    for name in listed:
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    (copy / ".venv").symlink_to(VENV)
    return copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="cold pipeline runs to time")
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        copy = make_copy(base)
        env = {
            **os.environ,
            "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ['PATH']}",
            "GIT_AUTHOR_NAME": "bench",
            "GIT_AUTHOR_EMAIL": "bench@example.com",
            "GIT_COMMITTER_NAME": "bench",
            "GIT_COMMITTER_EMAIL": "bench@example.com",
        }
        # The shared .venv holds an editable install of this checkout: point the copy at itself.
        env["LCP_ROOT"] = str(copy)
        env["MLFLOW_TRACKING_URI"] = f"sqlite:///{copy / 'mlflow.db'}"
        if not (ROOT / "data" / "raw" / "raw_data.csv").is_file():
            raise SystemExit("data/raw/raw_data.csv is missing: run `make data` first")
        sh("git init -q && git add -A && git commit -qm bench", copy, env)
        # This checkout's DVC cache has the layout of a local remote: pull the raw data from it.
        sh(f"dvc remote add --local --default checkout {ROOT / '.dvc' / 'cache'}", copy, env)
        sh("dvc pull --quiet data/raw/raw_data.csv.dvc", copy, env)
        totals, stages = [], []
        for _ in range(runs):
            sh("make clean && rm -rf mlflow.db mlruns", copy, env)
            seconds, output = sh("make -o .venv/.installed pipeline", copy, env)
            totals.append(seconds)
            stages.append(re.search(r"pipeline: done in .*", output).group(0))  # type: ignore[union-attr]
        repro, _ = sh("dvc repro", copy, env)
        helps = [sh("lcp --help", copy, env)[0] for _ in range(5)]

    print(f"cold `make pipeline` ({runs} runs, fresh MLflow store each):")
    median, low, high = statistics.median(totals), min(totals), max(totals)
    print(f"  median {median:.2f} s, min {low:.2f} s, max {high:.2f} s")
    print(f"  last run's stages: {stages[-1]}")
    print(f"`dvc repro` right after: {repro:.2f} s")
    print(f"`lcp --help`: median {statistics.median(helps):.2f} s")


if __name__ == "__main__":
    main()
