"""The exploration notebook runs headless on the real data, so it cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lead_conversion_prediction.config import PROJ_ROOT
from tests.support import make_project

NOTEBOOK = PROJ_ROOT / "notebooks" / "01-exploration.ipynb"


def test_the_notebook_is_stored_without_outputs() -> None:
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    assert code and all(not c["outputs"] and c["execution_count"] is None for c in code)
    verify = subprocess.run(
        [sys.executable, "-m", "nbstripout", "--verify", str(NOTEBOOK)], capture_output=True
    )
    assert verify.returncode == 0, verify.stdout


def test_the_notebook_runs_on_the_real_data(
    real_raw_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nbformat
    from nbclient import NotebookClient

    root = make_project(tmp_path / "project", real_raw_data)
    monkeypatch.setenv("LCP_ROOT", str(root))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # Generous bounds: they only stop a hung kernel, and a busy machine is many times slower.
    client = NotebookClient(notebook, timeout=900, startup_timeout=600, kernel_name="python3")
    client.execute(cwd=str(tmp_path))
    printed = "".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    assert "12,345 rows, 19 columns" in printed
    assert "2,937 rows kept" in printed
    assert "the date filter keeps 12,345 of 12,345 rows" in printed
    assert "dropped columns: at most 0.0" in printed  # below a hundredth of a bit
    assert NOTEBOOK.read_text().count('"outputs": []') == sum(
        cell.cell_type == "code" for cell in notebook.cells
    )


def test_make_notebook_opens_it_in_the_dev_environments_jupyterlab() -> None:
    dry_run = subprocess.run(
        ["make", "-n", "-o", ".venv/.installed", "notebook"],
        cwd=PROJ_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert dry_run.returncode == 0, dry_run.stderr
    assert "jupyter lab notebooks/01-exploration.ipynb" in dry_run.stdout
    version = subprocess.run(
        [sys.executable, "-m", "jupyterlab", "--version"], capture_output=True, text=True
    )
    assert version.returncode == 0 and version.stdout.strip().startswith("4."), version.stderr
