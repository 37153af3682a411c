from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import estimator_checks_generator

from lead_conversion_prediction.config import FeatureParams, SplitParams
from lead_conversion_prediction.features import (
    CategoryCoder,
    OutlierClipper,
    build_preprocessor,
    one_hot_name,
    outlier_summary,
    split_leads,
)
from lead_conversion_prediction.schema import features_and_target, validate_leads
from tests.support import REFERENCE_COLUMNS


def check_name(check: Callable[..., None]) -> str:
    return str(getattr(check, "func", check).__name__)


# scikit-learn's checks, one test each (what `parametrize_with_checks` generates), less the
# array API check: these transformers take numpy and pandas input only, and that check skips
# itself unless scipy runs in array API mode (SCIPY_ARRAY_API=1), which users do not.
ESTIMATOR_CHECKS = [
    pytest.param(estimator, check, id=f"{type(estimator).__name__}-{check_name(check)}")
    for transformer in (OutlierClipper(), CategoryCoder())
    for estimator, check in estimator_checks_generator(transformer)
    if check_name(check) != "check_array_api_input"
]


@pytest.mark.parametrize(("estimator", "check"), ESTIMATOR_CHECKS)
def test_custom_transformers_pass_the_scikit_learn_estimator_checks(
    estimator: object, check: Callable[[object], None]
) -> None:
    check(estimator)


@pytest.fixture
def leads(make_leads: Callable[..., pd.DataFrame]) -> pd.DataFrame:
    return validate_leads(make_leads(n=90), "leads.csv")


def test_clipping_bounds_come_from_training_rows_only() -> None:
    train = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, np.nan]})
    clipper = OutlierClipper(n_std=1.0).fit(train)
    std = np.std([1, 2, 3, 4], ddof=1)
    assert clipper.lower_[0] == pytest.approx(2.5 - std)
    assert clipper.upper_[0] == pytest.approx(2.5 + std)
    clipped = clipper.transform(pd.DataFrame({"x": [-100.0, 2.0, 100.0, np.nan]}))
    np.testing.assert_allclose(clipped[:, 0], np.array([2.5 - std, 2.0, 2.5 + std, np.nan]))


def test_unseen_levels_become_missing_and_are_counted() -> None:
    coder = CategoryCoder().fit(pd.DataFrame({"group": pd.array([1, 2, 2], dtype="Int64")}))
    new = pd.DataFrame({"group": pd.array([2, 12, None], dtype="Int64")})
    np.testing.assert_array_equal(coder.transform(new)[:, 0], [2.0, np.nan, np.nan])
    assert coder.count_unseen(new) == {"group": 1}


def test_booleans_and_nullable_codes_are_coded_as_numbers() -> None:
    frame = pd.DataFrame({"flag": pd.array([True, None, False], dtype="boolean")})
    coded = CategoryCoder().fit_transform(frame)
    np.testing.assert_array_equal(coded[:, 0], [1.0, np.nan, 0.0])


def test_one_hot_columns_are_named_as_in_the_reference() -> None:
    assert one_hot_name("customer_group", 2.0) == "customer_group_2"
    assert one_hot_name("onboarding", 1.0) == "onboarding_True"
    assert one_hot_name("source", "li") == "source_li"


def test_the_preprocessor_gives_the_reference_columns_in_order(leads: pd.DataFrame) -> None:
    X, _ = features_and_target(leads)
    matrix = build_preprocessor(FeatureParams()).fit(X).transform(X)
    assert list(matrix.columns) == REFERENCE_COLUMNS
    assert matrix.dtypes.eq("float64").all()
    continuous = matrix[["purchases", "time_spent", "n_visits"]]
    assert continuous.min().min() == 0.0 and continuous.max().max() == 1.0


def test_missing_and_unseen_values_are_imputed_from_training_rows(leads: pd.DataFrame) -> None:
    X, _ = features_and_target(leads)
    preprocessor = build_preprocessor(FeatureParams()).fit(X)
    new = X.head(2).copy()
    new["purchases"] = [np.nan, 1e9]
    new["customer_group"] = pd.array([None, 12], dtype="Int64")
    out = preprocessor.transform(new)
    clipper = preprocessor.named_transformers_["continuous"]["clip"]
    scaler = preprocessor.named_transformers_["continuous"]["scale"]
    mean_after_clip = np.clip(X["purchases"], clipper.lower_[0], clipper.upper_[0]).mean()
    expected = (mean_after_clip - scaler.data_min_[0]) / scaler.data_range_[0]
    assert out.loc[out.index[0], "purchases"] == pytest.approx(expected)
    clipped = (clipper.upper_[0] - scaler.data_min_[0]) / scaler.data_range_[0]
    assert out.loc[out.index[1], "purchases"] == pytest.approx(clipped)  # the training bound
    mode = X["customer_group"].mode().min()
    group_columns = [f"customer_group_{group}" for group in range(2, 10)]
    for row in out.index:
        expected_groups = [1.0 if f"customer_group_{mode}" == c else 0.0 for c in group_columns]
        assert out.loc[row, group_columns].tolist() == expected_groups


def test_the_outlier_summary_describes_the_fitted_clipping(leads: pd.DataFrame) -> None:
    X, _ = features_and_target(leads)
    preprocessor = build_preprocessor(FeatureParams(clip_n_std=0.5)).fit(X)
    summary = outlier_summary(preprocessor, X)
    assert list(summary["column"]) == ["purchases", "time_spent", "n_visits"]
    assert list(summary.columns) == ["column", "count", "mean", "min", "max", "n_clipped"]
    assert (summary["count"] == len(X)).all()
    assert (summary["n_clipped"] > 0).all()


def test_the_split_is_stratified_and_seeded(leads: pd.DataFrame) -> None:
    params = SplitParams(test_size=0.2, random_state=7)
    train, test = split_leads(leads, params)
    again, _ = split_leads(leads, params)
    assert (len(train), len(test)) == (72, 18)
    assert test["lead_indicator"].mean() == pytest.approx(0.5)
    assert list(train.index) == list(again.index)
    assert not set(train.index) & set(test.index)
