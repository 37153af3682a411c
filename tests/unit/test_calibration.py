import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression

from lead_conversion_prediction.config import CalibrationParams
from lead_conversion_prediction.modeling.calibration import (
    apply_calibrator,
    base_classifiers,
    calibrate_where_it_helps,
    cross_fitted_calibration,
    fit_calibrator,
)


def squeezed_rows(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Rows whose outcome follows a steep logistic curve of ``x``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-4 * x))).astype(int)
    return pd.DataFrame({"x": x}), pd.Series(y)


def test_a_classifier_whose_probabilities_are_squeezed_is_calibrated() -> None:
    X, y = squeezed_rows()
    # Strong regularisation shrinks the slope: probabilities too close to 0.5.
    squeezed = LogisticRegression(C=0.002).fit(X, y)
    model, check = calibrate_where_it_helps(squeezed, X, y, CalibrationParams(), seed=1)
    assert check.method == "sigmoid"
    assert check.cv_log_loss["sigmoid"] < check.cv_log_loss["none"]
    assert isinstance(model, CalibratedClassifierCV)
    assert model.predict_proba(X)[:, 1].max() > squeezed.predict_proba(X)[:, 1].max()
    assert len(base_classifiers(model)) == 1  # one classifier refitted on all rows


def test_a_classifier_calibration_does_not_help_is_kept_as_it_is() -> None:
    X, y = squeezed_rows()
    fitted = LogisticRegression(C=1e6).fit(X, y)  # the true model family, barely penalised
    model, check = calibrate_where_it_helps(fitted, X, y, CalibrationParams(), seed=1)
    assert check.method == "none" and model is fitted
    assert base_classifiers(model) == [fitted]
    _, nothing = calibrate_where_it_helps(fitted, X, y, CalibrationParams(methods=[]), seed=1)
    assert nothing.cv_log_loss == {}


def test_each_fold_is_calibrated_by_a_calibrator_fitted_on_the_other_folds() -> None:
    from sklearn.model_selection import StratifiedKFold

    rng = np.random.default_rng(2)
    scores = rng.normal(size=60)
    y = (rng.random(60) < 1 / (1 + np.exp(-2 * scores))).astype(int)
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    calibrated = cross_fitted_calibration(scores, y, "sigmoid", folds)
    for fit_rows, apply_rows in folds.split(scores.reshape(-1, 1), y):
        calibrator = fit_calibrator(scores[fit_rows], y[fit_rows], "sigmoid")
        expected = apply_calibrator(calibrator, scores[apply_rows])
        np.testing.assert_allclose(calibrated[apply_rows], expected)


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_calibration_keeps_the_order_of_the_scores(method: str) -> None:
    X, y = squeezed_rows()
    model = CalibratedClassifierCV(LogisticRegression(C=0.002), method=method, ensemble=False)
    model.fit(X, y)
    grid = pd.DataFrame({"x": np.linspace(-3, 3, 200)})
    assert np.all(np.diff(model.predict_proba(grid)[:, 1]) >= 0)


def test_a_calibrated_xgboost_model_is_logged_with_xgboost_in_its_requirements() -> None:
    from sklearn.pipeline import Pipeline
    from xgboost import XGBClassifier

    from lead_conversion_prediction.modeling.tracking import pip_requirements

    X, y = squeezed_rows(n=200)
    calibrated = CalibratedClassifierCV(XGBClassifier(n_estimators=3, n_jobs=1), cv=2)
    model = Pipeline([("classifier", calibrated.fit(X, y))])
    assert any(line.startswith("xgboost-cpu==") for line in pip_requirements(model))
    linear = Pipeline([("classifier", LogisticRegression().fit(X, y))])
    assert not any(line.startswith("xgboost") for line in pip_requirements(linear))
