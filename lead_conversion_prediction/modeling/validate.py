"""The validation contract: load ``model.pkl`` as the course validator does and check it.

The validator loads the file with ``joblib`` alone (scikit-learn, pandas and joblib installed),
predicts on a CSV of the 12 scaled columns, and requires given first predictions. Here the
same load and predict run on any X/y pair; accuracy and, optionally, the first predictions
are checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from lead_conversion_prediction.exceptions import ArtifactError, DataContractError


def load_validator_model(path: Path) -> Any:
    """Load a pickled estimator with ``joblib.load``, exactly as the validator does."""
    import joblib

    if not path.is_file():
        raise ArtifactError(f"{path}: model not found; run 'lcp train' first")
    return joblib.load(path)


def read_validation_pair(X_path: Path, y_path: Path) -> tuple[pd.DataFrame, pd.Series]:
    """Read the feature matrix and the target column of a validation pair."""
    frames = []
    for path in (X_path, y_path):
        try:
            frames.append(pd.read_csv(path))
        except FileNotFoundError:
            raise DataContractError(path, "file not found") from None
        except pd.errors.EmptyDataError:
            raise DataContractError(path, "file is empty (no header row)") from None
    X, y = frames
    if len(X) != len(y):
        raise DataContractError(y_path, f"has {len(y)} rows but {X_path} has {len(X)}")
    return X, y.iloc[:, 0]


def check_predictions(
    model: Any,
    X: pd.DataFrame,
    y: pd.Series,
    min_accuracy: float,
    expected_first: Sequence[int] | None = None,
) -> dict[str, Any]:
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
    return {
        "rows": len(truth),
        "accuracy": round(accuracy, 6),
        "min_accuracy": min_accuracy,
        "first_predictions": predictions[:5],
        "expected_first": None if expected_first is None else list(expected_first),
        "passed": not problems,
        "problems": problems,
    }
