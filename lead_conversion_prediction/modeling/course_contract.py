"""The course validator's contract: load ``model.pkl`` as the validator does and check it.

The validator loads the file with ``joblib`` alone (scikit-learn, pandas and joblib installed),
predicts on a CSV of the 12 scaled columns, and requires given first predictions. Here the
same predictions are checked on any X/y pair: accuracy and, optionally, the first predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from lead_conversion_prediction.modeling.artifacts import ValidationReport


def check_predictions(
    model: Any,
    X: pd.DataFrame,
    y: pd.Series,
    min_accuracy: float,
    expected_first: Sequence[int] | None = None,
) -> ValidationReport:
    """Predict with ``model`` and report accuracy and the first predictions against the contract.

    The returned report's ``passed`` is False, with ``problems`` saying why, when accuracy is
    below ``min_accuracy`` or the first predictions differ from ``expected_first``.
    """
    predictions = [int(value) for value in model.predict(X)]
    truth = [int(value) for value in y]
    accuracy = sum(p == t for p, t in zip(predictions, truth, strict=True)) / len(truth)
    problems = []
    if accuracy < min_accuracy:
        problems.append(f"accuracy {accuracy:.4f} is below {min_accuracy}")
    if expected_first is not None:
        first = predictions[: len(expected_first)]
        if first != list(expected_first):
            problems.append(f"first predictions {first} are not {list(expected_first)}")
    return ValidationReport(
        rows=len(truth),
        accuracy=round(accuracy, 6),
        min_accuracy=min_accuracy,
        first_predictions=predictions[:5],
        expected_first=None if expected_first is None else list(expected_first),
        passed=not problems,
        problems=problems,
    )
