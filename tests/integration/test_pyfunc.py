"""The registered model as most users call it: `mlflow.pyfunc.load_model(...).predict(frame)`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.trained import PipelineRun

COLUMNS = ["lead_id", "purchases", "time_spent", "n_visits", "customer_group", "onboarding"]


@pytest.fixture(scope="module")
def leads(pipeline_run: PipelineRun) -> pd.DataFrame:
    return pd.read_csv(pipeline_run.root / "data" / "processed" / "test.csv")[COLUMNS].head(60)


@pytest.fixture(scope="module")
def batch(
    pipeline_run: PipelineRun, leads: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> pd.DataFrame:
    folder = tmp_path_factory.mktemp("pyfunc")
    leads.to_csv(folder / "leads.csv", index=False)
    result = pipeline_run.lcp(
        "predict", "-i", str(folder / "leads.csv"), "-o", str(folder / "scores.parquet"),
        "--model", "models:/lead_model@champion",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return pd.read_parquet(folder / "scores.parquet")  # every bit (a CSV holds 6 digits)


def predict(pipeline_run: PipelineRun, frame: pd.DataFrame) -> pd.DataFrame:
    import mlflow

    mlflow.set_tracking_uri(pipeline_run.tracking_uri)
    model = mlflow.pyfunc.load_model("models:/lead_model@champion")
    return pd.DataFrame(model.predict(frame))


@pytest.mark.parametrize("counts", ["int64", "float64", "missing"])
def test_pandas_frames_of_integer_decimal_or_missing_counts_are_scored(
    pipeline_run: PipelineRun,
    leads: pd.DataFrame,
    batch: pd.DataFrame,
    tmp_path: Path,
    counts: str,
) -> None:
    frame = leads.astype({"purchases": "int64", "n_visits": "int64", "customer_group": "int64"})
    if counts == "float64":
        frame = frame.astype({"purchases": "float64", "n_visits": "float64"})
    elif counts == "missing":
        frame.loc[[0, 5], "purchases"] = np.nan
    frame.to_csv(tmp_path / "leads.csv", index=False)
    read = pd.read_csv(tmp_path / "leads.csv")  # how a user reads a file of leads
    if counts == "int64":
        assert read["n_visits"].dtype == "int64"  # the case MLflow's double schema refused
    scores = predict(pipeline_run, read)
    assert list(scores.columns) == ["lead_id", "conversion_probability", "model"]
    assert set(scores["model"]) == {"models:/lead_model/1"}
    if counts != "missing":
        np.testing.assert_allclose(
            scores["conversion_probability"], batch["conversion_probability"], rtol=1e-9
        )
    assert scores["conversion_probability"].between(0, 1).all()


def test_no_leads_get_an_empty_answer(pipeline_run: PipelineRun, leads: pd.DataFrame) -> None:
    scores = predict(pipeline_run, leads.head(0))
    assert scores.empty
    assert list(scores.columns) == ["lead_id", "conversion_probability", "model"]


def test_mlflow_keeps_no_telemetry_id_for_the_projects_commands(pipeline_run: PipelineRun) -> None:
    assert pipeline_run.home.is_dir()
    assert not (pipeline_run.home / ".config" / "mlflow").exists()


# Loads the champion in a fresh interpreter, scores the leads, and prints where each of the
# package's modules came from.
LOAD_AND_SCORE = """
import json, sys
import mlflow
import pandas as pd

model = mlflow.pyfunc.load_model("models:/lead_model@champion")
scores = model.predict(pd.read_csv(sys.argv[1]))
files = {name: module.__file__ for name, module in sys.modules.items()
         if name.startswith("lead_conversion_prediction")}
print(json.dumps({"scored": len(scores), "files": files}))
"""


def test_the_model_loads_and_scores_with_only_the_code_it_carries(
    pipeline_run: PipelineRun, leads: pd.DataFrame, tmp_path: Path
) -> None:
    import json
    import os
    import subprocess
    import sys

    from lead_conversion_prediction.utils.imports import PACKAGE_DIR

    leads.to_csv(tmp_path / "leads.csv", index=False)
    result = subprocess.run(
        [sys.executable, "-c", LOAD_AND_SCORE, str(tmp_path / "leads.csv")],
        cwd=tmp_path,  # not the project: the package's modules come from the model or nowhere
        env={
            **os.environ,
            "MLFLOW_TRACKING_URI": pipeline_run.tracking_uri,
            "HOME": str(tmp_path),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["scored"] == len(leads)
    files = [Path(path) for path in loaded["files"].values()]
    assert files and all(path.parent.parts.count("code") == 1 for path in files), files
    code = next(path for path in files if path.name == "pyfunc.py").parents[2]
    carried = sorted(path.relative_to(code) for path in code.rglob("*.py"))
    package = sorted(path.relative_to(PACKAGE_DIR.parent) for path in PACKAGE_DIR.rglob("*.py"))
    assert set(carried) < set(package), "the model carries part of the package, not all of it"
    assert not any(part in ("cli", "stages") for path in carried for part in path.parts)
