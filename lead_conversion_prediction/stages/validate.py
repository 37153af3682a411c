"""Stage ``validate``: load ``model.pkl`` as the course validator does and check its predictions.

Reads ``models/model.pkl`` and an X/y pair (the holdout matrix by default); writes
``reports/validation.json`` only when the checks pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lead_conversion_prediction.breaches import Breach
from lead_conversion_prediction.config import Params, Paths
from lead_conversion_prediction.csv_io import read_csv_text
from lead_conversion_prediction.exceptions import DataContractError, ModelValidationError
from lead_conversion_prediction.modeling.artifacts import ValidationReport
from lead_conversion_prediction.modeling.course_contract import check_predictions
from lead_conversion_prediction.utils.logging import log_stage
from lead_conversion_prediction.utils.storage import load_artifact

if TYPE_CHECKING:
    from lead_conversion_prediction.scoring.model import ModelRef


def run_validate(
    paths: Paths,
    params: Params,
    model: Path | str | None = None,
    X: Path | None = None,
    y: Path | None = None,
    expected_first: Sequence[int] | None = None,
    min_accuracy: float | None = None,
    report: Path | None = None,
) -> ValidationReport:
    """Check a model's classifier as the course validator does, on an X/y pair.

    ``model`` is a ``model.pkl`` path (verified, then loaded with joblib, as the validator
    does) or a registry URI; by default the champion. The report is written to ``report``,
    and for the workspace's ``model.pkl`` to ``reports/validation.json`` by default.
    """
    from lead_conversion_prediction.scoring.model import ModelRef

    ref = ModelRef.parse(model or f"models:/{params.registry.model_name}@champion")
    if report is None and ref.is_file(paths.validator_model):
        report = paths.validation_report
    with log_stage("validate") as facts:
        X_frame, y_series = read_validation_pair(X or paths.X_test, y or paths.y_test)
        estimator = load_classifier(ref)  # once the data is known good: loading takes seconds
        threshold = params.validation.min_accuracy if min_accuracy is None else min_accuracy
        outcome = check_predictions(estimator, X_frame, y_series, threshold, expected_first)
        if not outcome.passed:
            raise ModelValidationError(f"{ref}: " + "; ".join(outcome.problems))
        if report is not None:
            outcome.write(report)
        facts.update(rows=outcome.rows, accuracy=outcome.accuracy, first=outcome.first_predictions)
    return outcome


def load_classifier(model: ModelRef) -> Any:
    """The classifier of a registered model (``models:/...``), or of a ``model.pkl`` file."""
    if model.uri is not None:
        from lead_conversion_prediction.scoring.model import load_registered_model

        return load_registered_model(model.uri).model[-1]
    assert model.path is not None
    return load_validator_model(model.path)


def load_validator_model(path: Path) -> Any:
    """Load a pickled estimator with ``joblib.load``, as the validator does, once its bytes
    match ``SHA256SUMS`` beside it: an unverified pickle could run any code."""
    return load_artifact(path)


def read_validation_pair(X_path: Path, y_path: Path) -> tuple[pd.DataFrame, pd.Series]:
    """Read the feature matrix and the target column of a validation pair."""
    X, y = read_csv_text(X_path), read_csv_text(y_path)
    if y.shape[1] != 1:
        raise DataContractError(
            y_path,
            f"has {y.shape[1]} columns; the targets are one column of 0 and 1 "
            "(is it a features file?)",
        )
    if len(X) != len(y):
        raise DataContractError(y_path, f"has {len(y)} rows but {X_path} has {len(X)}")
    target = pd.to_numeric(y.iloc[:, 0], errors="coerce")
    bad = np.flatnonzero(~target.isin([0, 1]).to_numpy())
    if len(bad):
        cells = y.iloc[:, 0].to_numpy(dtype=object)[bad]
        raise Breach(str(y.columns[0]), "is not 0 or 1", bad, cells[0], cells).error(y_path)
    return X, target.astype("int64")
