from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

from lead_conversion_prediction.modeling.registry import (
    CHALLENGER,
    CHAMPION,
    register_and_promote,
)
from lead_conversion_prediction.modeling.tracking import configure_tracking, flatten


def test_parameters_are_flattened_with_dotted_keys() -> None:
    assert flatten("", {"train": {"metric": "f1", "lr": {"C": [1, 2]}}, "seed": 1}) == {
        "train.metric": "f1",
        "train.lr.C": [1, 2],
        "seed": 1,
    }


def test_a_worse_or_equal_model_never_becomes_champion(tmp_path: Path) -> None:
    import mlflow
    from mlflow import MlflowClient

    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = (X[:, 0] > 0).astype(int)
    good = LogisticRegression().fit(X, y)
    bad = DummyClassifier(strategy="most_frequent").fit(X, y)
    better = LogisticRegression(C=1e4).fit(X, y)  # the classes are separable: no errors

    configure_tracking(f"sqlite:///{tmp_path / 'mlflow.db'}", "registry-test")

    def score(model: Any) -> float:
        return float((model.predict(X) == y).mean())

    def register(model: Any) -> Any:
        with mlflow.start_run():
            info = mlflow.sklearn.log_model(model, name="model", pip_requirements=[])
        return register_and_promote(info.model_uri, "lead_model", "accuracy", score(model), score)

    first = register(good)
    assert (first.version, first.promoted, first.previous_champion) == (1, True, None)

    worse = register(bad)
    assert (worse.version, worse.promoted, worse.champion) == (2, False, 1)
    assert worse.previous_champion_score == pytest.approx(score(good))

    tie = register(good)
    assert (tie.version, tie.promoted, tie.champion) == (3, False, 1)

    client = MlflowClient()
    assert int(client.get_model_version_by_alias("lead_model", CHAMPION).version) == 1
    assert int(client.get_model_version_by_alias("lead_model", CHALLENGER).version) == 3
    assert client.get_model_version("lead_model", "2").tags["holdout_accuracy"] == (
        f"{score(bad):.6f}"
    )

    assert score(better) == 1.0 > score(good)
    promoted = register(better)
    assert promoted.promoted and promoted.champion == 4
    assert int(client.get_model_version_by_alias("lead_model", CHAMPION).version) == 4
    assert (tmp_path / "mlruns" / "registry-test").is_dir()
