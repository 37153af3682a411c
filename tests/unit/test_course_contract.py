import numpy as np
import pandas as pd
import pytest

from lead_conversion_prediction.modeling.course_contract import check_predictions


class _Alternating:
    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.arange(len(X)) % 2


def test_predictions_pass_when_accurate_and_as_expected() -> None:
    X, y = pd.DataFrame({"a": range(6)}), pd.Series([0, 1, 0, 1, 0, 0])
    report = check_predictions(_Alternating(), X, y, min_accuracy=0.8, expected_first=[0, 1, 0])
    assert report.passed and report.accuracy == pytest.approx(5 / 6)
    assert report.first_predictions == [0, 1, 0, 1, 0]


def test_predictions_fail_with_the_reasons() -> None:
    X, y = pd.DataFrame({"a": range(4)}), pd.Series([1, 0, 1, 0])
    report = check_predictions(_Alternating(), X, y, min_accuracy=0.5, expected_first=[1, 1])
    assert not report.passed
    assert report.problems == [
        "accuracy 0.0000 is below 0.5",
        "first predictions [0, 1] are not [1, 1]",
    ]
