"""Time a cold `make pipeline`, a no-op `dvc repro` and `lcp --help`, beside a baseline revision.

    python scripts/bench_pipeline.py [--runs 5] [--baseline REV]

The workspace (uncommitted changes included) and a git revision (``--baseline``, the last
commit by default) are each copied into a temporary git repository that shares this checkout's
.venv and pulls the raw data from its DVC cache. Runs alternate between the two, so both see the
same machine load; outputs and the MLflow store are removed before each run, and this workspace
is left alone. Every figure is a whole command timed from outside, start to exit, with the peak
memory of its process tree (``scripts/bench_process.py``).
Targets (2-core machine): cold `make pipeline` <= 8 s, `dvc repro` after it <= 2 s,
`lcp --help` <= 0.3 s; the workspace no slower than its baseline.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bench_process import Measured, measure

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
IDENTITY = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


def sh(command: str, cwd: Path, env: dict[str, str]) -> Measured:
    run = measure(command, env, cwd)
    if run.returncode != 0:
        raise SystemExit(f"{command} failed:\n{run.output}")
    return run


@dataclass
class Copy:
    """A copy of the project to time, and its timings."""

    label: str
    root: Path
    env: dict[str, str]
    totals: list[float] = field(default_factory=list)
    peaks: list[float] = field(default_factory=list)
    stages: str = ""


def workspace_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return [name for name in listed if (ROOT / name).is_file()]


def make_copy(label: str, base: Path, revision: str | None) -> Copy:
    """Copy the workspace or ``revision`` into ``base/label``, as a git repository."""
    root = base / label
    root.mkdir()
    if revision is None:
        for name in workspace_files():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, root / name)
    else:
        archive = subprocess.run(
            ["git", "archive", revision], cwd=ROOT, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
    (root / ".venv").symlink_to(VENV)
    env = {
        **os.environ,
        **IDENTITY,
        "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ['PATH']}",
        # The shared .venv holds an editable install of this checkout: the copy's own package
        # comes first on the path, and its root is the copy.
        "PYTHONPATH": str(root),
        "LCP_ROOT": str(root),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
    }
    sh("git init -q && git add -A && git commit -qm bench", root, env)
    # This checkout's DVC cache has the layout of a local remote: pull the raw data from it.
    sh(f"dvc remote add --local --default checkout {ROOT / '.dvc' / 'cache'}", root, env)
    sh("dvc pull --quiet data/raw/raw_data.csv.dvc", root, env)
    return Copy(label, root, env)


def cold_run(copy: Copy) -> None:
    sh("make clean && rm -rf mlflow.db mlruns", copy.root, copy.env)
    run = sh("make -o .venv/.installed pipeline", copy.root, copy.env)
    copy.totals.append(run.wall)
    copy.peaks.append(run.peak_mb)
    found = re.search(r"pipeline: done in .*", run.output)
    copy.stages = found.group(0) if found else ""


def report(copy: Copy) -> str:
    median = statistics.median(copy.totals)
    return (
        f"{copy.label}: median {median:.2f} s, min {min(copy.totals):.2f} s, "
        f"max {max(copy.totals):.2f} s, peak {max(copy.peaks):,.0f} MB\n"
        f"    last run: {copy.stages}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="cold pipeline runs to time, each")
    parser.add_argument(
        "--baseline", default="HEAD", help="git revision to time beside the workspace [HEAD]"
    )
    arguments = parser.parse_args()
    if not (ROOT / ".dvc" / "cache").is_dir():
        raise SystemExit(".dvc/cache is missing: run `make fetch` first")
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        copies = [
            make_copy("workspace", base, None),
            make_copy(f"baseline {arguments.baseline}", base, arguments.baseline),
        ]
        for _ in range(arguments.runs):
            for copy in copies:
                cold_run(copy)
        repros = {copy.label: sh("dvc repro", copy.root, copy.env) for copy in copies}
        helps: dict[str, list[Measured]] = {copy.label: [] for copy in copies}
        for _ in range(5):
            for copy in copies:
                helps[copy.label].append(sh("lcp --help", copy.root, copy.env))

    print(f"cold `make pipeline`, {arguments.runs} runs each, alternating, fresh MLflow store:")
    for copy in copies:
        print(f"  {report(copy)}")
    ratio = statistics.median(copies[0].totals) / statistics.median(copies[1].totals)
    print(f"  workspace / baseline: {ratio:.2f}")
    print("`dvc repro` right after:")
    for label, run in repros.items():
        print(f"  {label}: {run.wall:.2f} s, peak {run.peak_mb:,.0f} MB")
    print("`lcp --help`, 5 runs each, alternating:")
    for label, runs in helps.items():
        walls = [run.wall for run in runs]
        peak = max(run.peak_mb for run in runs)
        print(f"  {label}: median {statistics.median(walls):.2f} s, peak {peak:,.0f} MB")


if __name__ == "__main__":
    main()
