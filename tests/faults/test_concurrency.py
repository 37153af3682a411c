"""Two runs in one checkout: the second refuses with one line naming the first, or waits."""

from __future__ import annotations

import subprocess

import pytest

from lead_conversion_prediction.modeling.artifacts import RegistryRecord
from tests.faults.conftest import Project, read_until, retrain_small

pytestmark = pytest.mark.long(seconds=68)


def test_a_second_pipeline_refuses_then_waits_its_turn(
    project: Project, stopped: list[subprocess.Popen[str]]
) -> None:
    retrain_small(project)
    first = project.start("pipeline")
    stopped.append(first)
    read_until(first, "data: start")  # the first holds the checkout's lock from here

    refused = project.lcp("pipeline")
    assert refused.returncode == 2
    line = refused.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: {project.root}: lcp pipeline (pid {first.pid}, since ")
    assert line.endswith("is running; wait for it to finish, or pass --wait SECONDS")
    assert "Traceback" not in refused.stderr

    second = project.start("--wait", "900", "pipeline")
    stopped.append(second)
    read_until(second, "waiting up to 900 s for lcp pipeline")
    first_log = read_until(first, "pipeline: done")
    assert first.wait(timeout=300) == 0, "".join(first_log[-20:])
    second_log = read_until(second, "pipeline: done")
    assert second.wait(timeout=300) == 0, "".join(second_log[-20:])
    # Both ran whole, one after the other: the same new model, so the same version, and the
    # runs that first registered it are the only ones (a registration looks before it logs).
    record = RegistryRecord.read(project.root / "reports" / "registry.json")
    assert (record.version, record.new_version) == (2, False)
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{project.store}")
    experiment = client.get_experiment_by_name("lead-conversion")
    assert experiment is not None
    parents = client.search_runs([experiment.experiment_id], "tags.registered_version = '2'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"


def test_predict_reads_a_whole_model_set_while_a_pipeline_writes(
    project: Project, stopped: list[subprocess.Popen[str]]
) -> None:
    retrain_small(project)
    pipeline = project.start("pipeline")
    stopped.append(pipeline)
    read_until(pipeline, "train: start")
    scores = project.root / "scores.csv"
    test_rows = project.root / "data" / "processed" / "test.csv"
    model = str(project.root / "models" / "lead_model.joblib")
    scored = 0
    while pipeline.poll() is None:  # score again and again while the models are replaced
        result = project.lcp("predict", "-i", str(test_rows), "-o", str(scores), "--model", model)
        assert result.returncode == 0, result.stderr[-2000:]
        scored += 1
    assert pipeline.returncode == 0
    assert scored > 1
