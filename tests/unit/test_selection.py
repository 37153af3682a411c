from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from lead_conversion_prediction.exceptions import ConfigError
from lead_conversion_prediction.modeling.selection import (
    cross_validated,
    is_better,
    select_best,
    select_by_cross_validation,
)


def test_the_best_score_is_selected_and_ties_go_to_the_first_listed() -> None:
    assert select_best({"xgboost_rf": 0.80, "logistic_regression": 0.81}) == "logistic_regression"
    assert select_best({"xgboost_rf": 0.80, "logistic_regression": 0.80}) == "xgboost_rf"
    with pytest.raises(ConfigError, match="no candidates"):
        select_best({})


def test_only_a_strictly_better_score_beats_the_champion() -> None:
    assert is_better(0.5, None)
    assert is_better(0.81, 0.80)
    assert not is_better(0.80, 0.80)
    assert not is_better(0.79, 0.80)


def two_signal_rows(n: int, seed: int, signal: str) -> tuple[pd.DataFrame, pd.Series]:
    """Rows with two inputs, ``a`` and ``b``, of which only ``signal`` tells the outcome."""
    rng = np.random.default_rng(seed)
    y = pd.Series(rng.integers(0, 2, n))
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    X[signal] += 1.5 * y
    return X, y


def reading(column: str) -> Any:
    """A logistic regression that reads only ``column``."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    return Pipeline(
        [
            ("pick", ColumnTransformer([("keep", "passthrough", [column])])),
            ("model", LogisticRegression()),
        ]
    )


def test_the_cross_validated_order_chooses_even_where_the_holdout_disagrees() -> None:
    from sklearn.metrics import get_scorer

    X_train, y_train = two_signal_rows(300, 1, signal="a")
    X_holdout, y_holdout = two_signal_rows(200, 2, signal="b")
    candidates = {"reads_b": reading("b"), "reads_a": reading("a")}
    scorer = get_scorer("neg_log_loss")
    holdout = {
        name: scorer(clone(model).fit(X_train, y_train), X_holdout, y_holdout)
        for name, model in candidates.items()
    }
    assert select_best(holdout) == "reads_b"  # the holdout rows would choose the other one

    scores = cross_validated(candidates, X_train, y_train, "neg_log_loss", folds=5, seed=42)[0]
    assert {name: len(values) for name, values in scores.items()} == {"reads_b": 5, "reads_a": 5}
    assert np.mean(scores["reads_a"]) > np.mean(scores["reads_b"])
    assert select_by_cross_validation(scores) == "reads_a"


def test_every_candidate_is_scored_on_the_same_seeded_folds() -> None:
    X, y = two_signal_rows(120, 3, signal="a")
    twins = {"first": reading("a"), "second": reading("a")}
    scores = cross_validated(twins, X, y, "roc_auc", folds=4, seed=42)[0]
    assert scores["first"] == scores["second"]  # same model, same folds: same scores
    again = cross_validated(twins, X, y, "roc_auc", folds=4, seed=42)[0]
    assert again == scores
    other = cross_validated(twins, X, y, "roc_auc", folds=4, seed=7)[0]
    assert other["first"] != scores["first"]  # the seed shuffles the folds


def test_the_folds_scores_are_cross_val_scores_and_the_probabilities_out_of_fold() -> None:
    """One pass over the shared folds gives both: each row's probability comes from the copy
    fitted on the other folds, as ``cross_val_predict`` gives it."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict, cross_val_score

    rng = np.random.default_rng(3)
    X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    y = pd.Series((X["a"] + rng.normal(scale=1.0, size=300) > 0).astype(int))
    model = LogisticRegression(C=0.5)
    scores, probabilities = cross_validated({"lr": model}, X, y, "neg_log_loss", 4, 7)
    folds = StratifiedKFold(n_splits=4, shuffle=True, random_state=7)
    expected = cross_val_score(model, X, y, scoring="neg_log_loss", cv=folds)
    np.testing.assert_allclose(scores["lr"], expected, rtol=1e-12)
    oof = cross_val_predict(model, X, y, cv=folds, method="predict_proba")[:, 1]
    np.testing.assert_allclose(probabilities["lr"], oof, rtol=1e-12)
    fitted_on_all = model.fit(X, y).predict_proba(X)[:, 1]
    assert not np.allclose(probabilities["lr"], fitted_on_all)
