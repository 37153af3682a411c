import numpy as np
import pytest

from lead_conversion_prediction.modeling.evaluate import (
    METRIC_NAMES,
    bootstrap_draws,
    compute_metrics,
    difference_interval,
    expected_calibration_error,
    metrics_on_resamples,
    percentile_interval,
    positive_probability,
)


def test_metrics_match_a_hand_computed_case() -> None:
    y = np.array([0, 0, 1, 1])
    probability = np.array([0.1, 0.6, 0.4, 0.9])
    metrics = compute_metrics(y, probability, 0.5)
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


def test_precision_recall_and_log_loss_match_hand_computed_values() -> None:
    y = np.array([1, 1, 0, 0, 1])
    probability = np.array([0.9, 0.4, 0.6, 0.2, 0.8])
    metrics = compute_metrics(y, probability, 0.5)
    # labels 1, 0, 1, 0, 1: tp = 2, fp = 1, fn = 1
    assert metrics["precision"] == pytest.approx(2 / 3)
    assert metrics["recall"] == pytest.approx(2 / 3)
    expected = -np.mean(np.log([0.9, 0.4, 0.4, 0.8, 0.8]))
    assert metrics["log_loss"] == pytest.approx(expected)


def test_metrics_on_resamples_agree_with_scikit_learn_ties_included() -> None:
    rng = np.random.default_rng(7)
    for _ in range(100):
        n = int(rng.integers(6, 50))
        y = rng.integers(0, 2, n)
        y[:2] = [0, 1]
        probability = np.round(rng.random(n), 1)  # many ties
        expected = compute_metrics(y, probability, 0.5)
        got = metrics_on_resamples(y[None, :], probability[None, :], 0.5)
        for name in METRIC_NAMES:
            assert got[name][0] == pytest.approx(expected[name], abs=1e-12), name


def test_bootstrap_intervals_are_seeded_and_hold_the_estimate() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    probability = np.clip(y * 0.3 + rng.random(300) * 0.7, 0, 1)

    def intervals(seed: int) -> dict[str, object]:
        draws = bootstrap_draws(y, {"m": probability}, 0.5, resamples=500, seed=seed)["m"]
        return {name: percentile_interval(values) for name, values in draws.items()}

    first, again, other = intervals(1), intervals(1), intervals(2)
    assert first == again and first != other
    estimate = compute_metrics(y, probability, 0.5)
    for name in METRIC_NAMES:
        interval = percentile_interval(
            bootstrap_draws(y, {"m": probability}, 0.5, resamples=500, seed=1)["m"][name]
        )
        assert interval.low <= estimate[name] <= interval.high, name


def test_the_difference_interval_says_which_model_is_better() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 400)
    good = np.clip(y * 0.6 + rng.random(400) * 0.4, 0, 1)
    poor = rng.random(400)
    better = difference_interval(y, good, poor, "roc_auc", 0.5, resamples=400)
    assert better.low > 0
    same = difference_interval(y, good, good, "roc_auc", 0.5, resamples=400)
    assert same.low == same.high == 0


def test_the_expected_calibration_error_matches_a_hand_computed_case() -> None:
    y = np.array([0, 1, 1, 0, 1])
    probability = np.array([0.05, 0.15, 0.72, 0.78, 1.0])
    # bins: [0, 0.1): 0.05 vs 0; [0.1, 0.2): 0.15 vs 1; [0.7, 0.8): 0.75 vs 0.5; [0.9, 1]: 1 vs 1
    expected = (0.05 + 0.85 + 2 * 0.25 + 0) / 5
    assert expected_calibration_error(y, probability) == pytest.approx(expected)
    assert compute_metrics(y, probability, 0.5)["ece"] == pytest.approx(expected)
    assert expected_calibration_error(np.array([0, 1]), np.array([0.0, 1.0])) == 0.0


def test_the_bootstrap_ece_is_the_ece_of_each_resample() -> None:
    rng = np.random.default_rng(9)
    y = rng.integers(0, 2, 120)
    probability = np.clip(y * 0.4 + rng.random(120) * 0.6, 0, 1)
    rows = rng.integers(0, 120, size=(25, 120))
    got = metrics_on_resamples(y[rows], probability[rows], 0.5)["ece"]
    expected = [expected_calibration_error(y[r], probability[r]) for r in rows]
    np.testing.assert_allclose(got, expected, atol=1e-12)
