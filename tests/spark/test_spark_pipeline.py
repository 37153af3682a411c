"""Spark on the real model: the same answers as local scoring, and MLflow's own spark_udf."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests import support
from tests.trained import PipelineRun

pytestmark = pytest.mark.long(seconds=150)

RESAMPLED_ROWS = 100_000
COUNTS = ["purchases", "n_visits", "customer_group"]
MODEL_INPUTS = ["purchases", "time_spent", "n_visits", "customer_group", "onboarding"]


@pytest.fixture(scope="module")
def resampled_leads(tmp_path_factory: pytest.TempPathFactory, real_raw_data: Path) -> Path:
    """100,000 rows drawn from the real leads, cells as written, 40 of them broken."""
    raw = pd.read_csv(real_raw_data, dtype="str", keep_default_na=False)
    rng = np.random.default_rng(14)
    leads = raw.iloc[rng.integers(0, len(raw), RESAMPLED_ROWS)].reset_index(drop=True)
    broken = rng.choice(RESAMPLED_ROWS, 40, replace=False)
    for cells, (column, value) in zip(
        np.split(broken, 4),
        [("time_spent", "fast"), ("n_visits", "-3"), ("onboarding", "perhaps"),
         ("purchases", "=cmd()")],
        strict=True,
    ):  # fmt: skip
        leads.loc[cells, column] = value
    path = tmp_path_factory.mktemp("resampled") / "leads.csv"
    leads.to_csv(path, index=False)
    return path


def predict(
    run: PipelineRun, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return support.run_lcp(
        "predict",
        *args,
        env={"LCP_ROOT": str(run.root), "MLFLOW_TRACKING_URI": run.tracking_uri, **(env or {})},
    )


def warnings_of(log: str) -> list[str]:
    """The warning lines of a predict log, without where the rejects were written."""
    lines = re.findall(r"WARNING \| (predict: .*)", log)
    return [re.sub(r", written to .*$", "", line) for line in lines]


def read_rejects(paths: list[Path]) -> pd.DataFrame:
    frames = [pd.read_csv(path, dtype="str", keep_default_na=False) for path in paths]
    return pd.concat(frames, ignore_index=True)


def test_spark_and_local_scoring_agree_on_100k_resampled_real_leads(
    pipeline_run: PipelineRun, resampled_leads: Path, tmp_path: Path
) -> None:
    local_out, spark_out = tmp_path / "local.parquet", tmp_path / "spark"
    skip = ("--on-error", "skip", "--chunk-rows", "1500", "--monitor")
    local = predict(pipeline_run, "-i", str(resampled_leads), "-o", str(local_out), *skip)
    # Three sources in four are not the training source: monitoring alerts, exit 3.
    assert local.returncode == 3, local.stderr[-3000:]
    # Input partitions of 512 KB (about 25), Arrow batches of 1,500 rows, two sort ranges.
    spark_args = "--conf spark.sql.files.maxPartitionBytes=512k pyspark-shell"
    on_spark = predict(
        pipeline_run,
        *("--engine", "spark", "--spark-master", "local[2]"),
        *("-i", str(resampled_leads), "-o", str(spark_out), *skip),
        env={"PYSPARK_SUBMIT_ARGS": spark_args},
    )
    assert on_spark.returncode == 3, on_spark.stderr[-3000:]
    alerts = [line for line in on_spark.stderr.splitlines() if line.startswith("drift alert")]
    assert [line.split(":")[1].strip() for line in alerts] == ["source"]

    expected, scores = pd.read_parquet(local_out), pd.read_parquet(spark_out)
    assert len(scores) == len(expected) == RESAMPLED_ROWS - 40
    assert scores["lead_id"].tolist() == expected["lead_id"].tolist()
    np.testing.assert_allclose(
        scores["conversion_probability"], expected["conversion_probability"], rtol=0, atol=1e-9
    )
    assert scores["rank"].tolist() == expected["rank"].tolist()
    assert scores["predicted_label"].tolist() == expected["predicted_label"].tolist()
    rejects = read_rejects(sorted((spark_out / "_rejects").glob("part-*.csv")))
    pd.testing.assert_frame_equal(rejects, read_rejects([Path(f"{local_out}.rejects.csv")]))
    assert len(rejects) == 40
    assert warnings_of(on_spark.stderr) == warnings_of(local.stderr)
    assert any("rows repeat a lead_id" in line for line in warnings_of(local.stderr))
    assert_same_drift(tmp_path / "local.monitoring", tmp_path / "spark.monitoring")


def assert_same_drift(local: Path, spark: Path) -> None:
    """The drift reports of the same batch agree to 1e-9: each statistic comes from counts,
    whichever partitions or chunks counted them."""
    ours, theirs = (json.loads((folder / "drift.json").read_text()) for folder in (local, spark))
    assert ours["rows"] == theirs["rows"] == RESAMPLED_ROWS - 40
    assert ours["status"] == theirs["status"] and ours["alerts"] == theirs["alerts"]
    for mine, other in zip(
        [*ours["inputs"], ours["prediction"]],
        [*theirs["inputs"], theirs["prediction"]],
        strict=True,
    ):
        assert mine["name"] == other["name"] and mine["distribution"] == other["distribution"]
        for a, b in zip(mine["statistics"], other["statistics"], strict=True):
            assert a["name"] == b["name"] and a["status"] == b["status"]
            assert a["value"] == pytest.approx(b["value"], rel=0, abs=1e-9), (mine["name"], a)
    for key, value in ours["summary"].items():
        assert value == pytest.approx(theirs["summary"][key], rel=1e-12, abs=1e-9), key


# MLflow's spark_udf, as a user runs it: in a process and a Spark session of its own. Loading
# the model puts the model's own code (the modules that load it) first on the Python workers'
# path, and those workers live as long as the session: a session shared with lcp's Spark engine
# would then find only the model's modules there.
SPARK_UDF = """
import json, sys
import mlflow
import pandas as pd
from pyspark.sql import functions as sf
from lead_conversion_prediction.scoring.spark_session import spark_session

uri, source, counts, inputs = sys.argv[1], sys.argv[2], sys.argv[3].split(","), sys.argv[4:]
raw = pd.read_csv(source)
answers = {}
with spark_session("local[2]", 10_000) as spark:
    score = mlflow.pyfunc.spark_udf(
        spark, uri, env_manager="local", result_type="conversion_probability double"
    )
    for kind, leads in (("bigint", raw), ("double", raw.astype(dict.fromkeys(counts, "float64")))):
        frame = spark.createDataFrame(leads.loc[:, ["lead_id", *inputs]])
        types = dict(frame.dtypes)
        scored = frame.withColumn("scores", score(sf.struct(*inputs)))
        rows = scored.select("lead_id", "scores.conversion_probability").collect()
        answers[kind] = {
            "types": [types[name] for name in counts],
            "lead_id": [row["lead_id"] for row in rows],
            "probability": [row["conversion_probability"] for row in rows],
        }
print(json.dumps(answers))
"""


def test_mlflow_spark_udf_gives_the_probabilities_of_local_scoring(
    pipeline_run: PipelineRun, real_raw_data: Path, tmp_path: Path
) -> None:
    import json
    import os
    import sys

    from lead_conversion_prediction.schema import SCORING_COLUMNS, validate_leads
    from lead_conversion_prediction.scoring.model import load_scoring_model
    from lead_conversion_prediction.scoring.score import score_leads

    uri = "models:/lead_model@champion"
    raw = pd.read_csv(real_raw_data).sample(3_000, random_state=5).reset_index(drop=True)
    assert all(pd.api.types.is_integer_dtype(raw[column]) for column in COUNTS)
    sample = tmp_path / "sample.csv"
    raw.to_csv(sample, index=False)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            SPARK_UDF,
            uri,
            str(sample),
            ",".join(COUNTS),
            *MODEL_INPUTS,
        ],
        cwd=tmp_path,
        env={**os.environ, "MLFLOW_TRACKING_URI": pipeline_run.tracking_uri},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answers = json.loads(result.stdout.strip().splitlines()[-1])

    import mlflow

    mlflow.set_tracking_uri(pipeline_run.tracking_uri)
    loaded = load_scoring_model(uri, pipeline_run.root / "unused")
    expected = score_leads(loaded.model, validate_leads(raw, "raw", SCORING_COLUMNS), 0.5)
    assert sorted(answers) == ["bigint", "double"]
    for kind, answer in answers.items():  # integer counts, and the same counts as decimals
        assert answer["types"] == [kind] * len(COUNTS)
        assert answer["lead_id"] == expected["lead_id"].tolist()
        np.testing.assert_allclose(
            answer["probability"], expected["conversion_probability"], rtol=0, atol=1e-9
        )


def test_a_missing_spark_input_is_one_line_exit_2_and_no_output(
    pipeline_run: PipelineRun, tmp_path: Path
) -> None:
    absent, target = tmp_path / "absent.csv", tmp_path / "scores"
    result = predict(
        pipeline_run,
        *("--engine", "spark", "--spark-master", "local[1]", "-i", str(absent)),
        *("-o", str(target)),
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == f"error: {absent}: not found"
    assert "Traceback" not in result.stderr and "Exception" not in result.stderr
    assert list(tmp_path.iterdir()) == []
