from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier

from lead_conversion_prediction.exceptions import ArtifactError, DataContractError
from lead_conversion_prediction.modeling.validate import (
    check_predictions,
    load_validator_model,
    read_validation_pair,
)


class _Alternating:
    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.arange(len(X)) % 2


def test_predictions_pass_when_accurate_and_as_expected() -> None:
    X, y = pd.DataFrame({"a": range(6)}), pd.Series([0, 1, 0, 1, 0, 0])
    report = check_predictions(_Alternating(), X, y, min_accuracy=0.8, expected_first=[0, 1, 0])
    assert report["passed"] and report["accuracy"] == pytest.approx(5 / 6)
    assert report["first_predictions"] == [0, 1, 0, 1, 0]


def test_predictions_fail_with_the_reasons() -> None:
    X, y = pd.DataFrame({"a": range(4)}), pd.Series([1, 0, 1, 0])
    report = check_predictions(_Alternating(), X, y, min_accuracy=0.5, expected_first=[1, 1])
    assert not report["passed"]
    assert report["problems"] == [
        "accuracy 0.0000 is below 0.5",
        "first predictions [0, 1] are not [1, 1]",
    ]


def test_the_model_is_loaded_with_joblib(tmp_path: Path) -> None:
    import joblib

    model = DummyClassifier().fit([[0], [1]], [0, 1])
    joblib.dump(model, tmp_path / "model.pkl")
    assert isinstance(load_validator_model(tmp_path / "model.pkl"), DummyClassifier)
    with pytest.raises(ArtifactError, match="model not found"):
        load_validator_model(tmp_path / "absent.pkl")


def test_a_validation_pair_of_different_lengths_is_refused(tmp_path: Path) -> None:
    (tmp_path / "X.csv").write_text("a\n1\n2\n")
    (tmp_path / "y.csv").write_text("lead_indicator\n1.0\n")
    with pytest.raises(DataContractError, match="has 1 rows but"):
        read_validation_pair(tmp_path / "X.csv", tmp_path / "y.csv")
