import pytest

from lead_conversion_prediction.exceptions import ConfigError
from lead_conversion_prediction.modeling.selection import is_better, select_best


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
