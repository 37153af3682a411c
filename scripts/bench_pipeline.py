"""Time a cold `make pipeline`, a no-op `dvc repro` and `lcp --help`, beside a baseline revision.

    python scripts/bench_pipeline.py [--runs 5] [--baseline REV]

The workspace (uncommitted changes included) and, with ``--baseline``, a git revision are each
copied into a temporary git repository that shares this checkout's .venv and pulls the raw
data from its DVC cache. Runs alternate between the two, so both see the same machine load;
outputs and the MLflow store are removed before each run, and this workspace is left alone.
Targets (2-core machine): cold `make pipeline` <= 8 s, `dvc repro` after it <= 2 s,
`lcp --help` <= 0.5 s; the workspace no slower than its baseline.
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
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
IDENTITY = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


def sh(command: str, cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(
        command, shell=True, cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{command} failed:\n{result.stdout}\n{result.stderr}")
    return seconds, result.stdout + result.stderr


@dataclass
class Copy:
    """A copy of the project to time, and its timings."""

    label: str
    root: Path
    env: dict[str, str]
    totals: list[float] = field(default_factory=list)
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
    seconds, output = sh("make -o .venv/.installed pipeline", copy.root, copy.env)
    copy.totals.append(seconds)
    found = re.search(r"pipeline: done in .*", output)
    copy.stages = found.group(0) if found else ""


def report(copy: Copy) -> str:
    median = statistics.median(copy.totals)
    return (
        f"{copy.label}: median {median:.2f} s, min {min(copy.totals):.2f} s, "
        f"max {max(copy.totals):.2f} s\n    last run: {copy.stages}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="cold pipeline runs to time, each")
    parser.add_argument("--baseline", help="git revision to time beside the workspace")
    arguments = parser.parse_args()
    if not (ROOT / ".dvc" / "cache").is_dir():
        raise SystemExit(".dvc/cache is missing: run `make fetch` first")
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        copies = [make_copy("workspace", base, None)]
        if arguments.baseline:
            copies.append(make_copy(f"baseline {arguments.baseline}", base, arguments.baseline))
        for _ in range(arguments.runs):
            for copy in copies:
                cold_run(copy)
        repro, _ = sh("dvc repro", copies[0].root, copies[0].env)
        helps = [sh("lcp --help", copies[0].root, copies[0].env)[0] for _ in range(5)]

    print(f"cold `make pipeline`, {arguments.runs} runs each, alternating, fresh MLflow store:")
    for copy in copies:
        print(f"  {report(copy)}")
    if len(copies) == 2:
        ratio = statistics.median(copies[0].totals) / statistics.median(copies[1].totals)
        print(f"  workspace / baseline: {ratio:.2f}")
    print(f"`dvc repro` right after (workspace): {repro:.2f} s")
    print(f"`lcp --help` (workspace): median {statistics.median(helps):.2f} s")


if __name__ == "__main__":
    main()
