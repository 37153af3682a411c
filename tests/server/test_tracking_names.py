"""Pipeline runs get names of their own, on a SQLite store and on the team's server."""

from __future__ import annotations

from pathlib import Path


def test_runs_of_one_commit_and_model_are_numbered(tracking_store: str, tmp_path: Path) -> None:
    import mlflow

    from lead_conversion_prediction.modeling.tracking import configure_tracking, numbered_run_name

    configure_tracking(tracking_store, f"names-{tmp_path.name}")  # an experiment of its own
    names = []
    for _ in range(3):
        name = numbered_run_name("xgboost@62f0c47")
        with mlflow.start_run(run_name=name), mlflow.start_run(run_name="xgboost", nested=True):
            pass
        names.append(name)
    assert names == ["xgboost@62f0c47 #1", "xgboost@62f0c47 #2", "xgboost@62f0c47 #3"]
    assert numbered_run_name("logistic_regression@62f0c47") == "logistic_regression@62f0c47 #1"
