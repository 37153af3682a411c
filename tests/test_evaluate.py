import numpy as np
import pytest

from lead_conversion_prediction.modeling.evaluate import compute_metrics, positive_probability


def test_metrics_match_a_hand_computed_case() -> None:
    y = np.array([0, 0, 1, 1])
    probability = np.array([0.1, 0.6, 0.4, 0.9])
    metrics = compute_metrics(y, probability)
    # labels 0, 1, 0, 1: two of four right; each class has precision = recall = 1/2
    assert metrics["accuracy"] == 0.5
    assert metrics["f1_weighted"] == pytest.approx(0.5)
    # positive/negative pairs ranked right: (0.4 > 0.1), (0.9 > 0.1), (0.9 > 0.6) -> 3 of 4
    assert metrics["roc_auc"] == pytest.approx(0.75)
    # precision at each positive: 0.9 -> 1/1, 0.4 -> 2/3
    assert metrics["pr_auc"] == pytest.approx((1 + 2 / 3) / 2)
    assert metrics["brier"] == pytest.approx((0.01 + 0.36 + 0.36 + 0.01) / 4)


def test_the_threshold_labels_strictly_above_it() -> None:
    metrics = compute_metrics(np.array([0, 1]), np.array([0.5, 0.7]), threshold=0.5)
    assert metrics["accuracy"] == 1.0


class _Regressor:
    def predict_proba(self, X: object) -> np.ndarray:
        return np.array([[1.05, -0.05], [-0.2, 1.2]])


def test_probabilities_outside_zero_one_are_clipped() -> None:
    np.testing.assert_array_equal(positive_probability(_Regressor(), None), [0.0, 1.0])  # type: ignore[arg-type]
