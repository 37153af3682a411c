"""The monitoring core: the reference profile, mergeable batch counts, drift statistics."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lead_conversion_prediction.config import MonitorParams
from lead_conversion_prediction.monitoring.counts import count_batch, merge_all
from lead_conversion_prediction.monitoring.drift import (
    DriftReport,
    drift_report,
    expected_roc_auc,
    js_distance,
    ks_statistic,
    psi,
)
from lead_conversion_prediction.monitoring.profile import (
    KS_BINS,
    PSI_BINS,
    ReferenceProfile,
    bin_counts,
    build_profile,
    quantile_edges,
)
from tests.support import monitored_leads


def profile_of(n: int = 2000, seed: int = 1) -> ReferenceProfile:
    rng = np.random.default_rng(seed)
    leads = monitored_leads(n, seed=seed)
    return build_profile(leads, pd.Series(rng.random(n) < 0.3), rng.beta(2, 5, n // 4))


def report_of(
    batch: pd.DataFrame, probability: np.ndarray | None, **limits: object
) -> DriftReport:
    profile = profile_of()
    params = MonitorParams.model_validate(limits)
    return drift_report(profile, count_batch(profile, batch, probability), params, "m", "b", "x")


def test_bins_split_values_by_their_training_quantiles() -> None:
    values = np.arange(1000, dtype=np.float64)
    edges = quantile_edges(values, PSI_BINS)
    counts = bin_counts(values, edges)
    assert len(edges) == PSI_BINS - 1 and counts.sum() == 1000
    assert counts.max() - counts.min() <= 2  # equal shares
    assert bin_counts(np.array([edges[0]]), edges).tolist()[1] == 1  # an edge opens its bin


def test_ties_merge_edges_of_a_few_whole_numbers() -> None:
    values = np.array([0.0, 1.0, 1.0, 1.0, 2.0] * 50)
    edges = quantile_edges(values, KS_BINS)
    assert edges == [1.0, 2.0]  # values of the data, each once


def test_the_profile_holds_every_profiled_input_and_reads_back_alike() -> None:
    profile = profile_of()
    assert set(profile.numeric) == {"purchases", "time_spent", "n_visits"}
    assert set(profile.categorical) == {"customer_group", "onboarding", "source"}
    assert set(profile.categorical["onboarding"].levels) == {"true", "false"}
    assert sum(profile.categorical["customer_group"].levels.values()) == 2000
    assert sum(profile.prediction.psi.counts) == 500
    assert ReferenceProfile.model_validate_json(profile.model_dump_json()) == profile


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(1, 599), max_size=6, unique=True))
def test_counts_of_any_chunks_merge_into_the_counts_of_the_whole(cuts: list[int]) -> None:
    profile = profile_of()
    batch = monitored_leads(600, seed=5, shift=1.0)
    batch.loc[::7, "n_visits"] = np.nan
    batch.loc[::11, "customer_group"] = pd.NA
    probability = np.random.default_rng(5).random(600)
    bounds = [0, *sorted(cuts), 600]
    parts = [count_batch(profile, batch.iloc[a:b], probability[a:b]) for a, b in pairwise(bounds)]
    whole = count_batch(profile, batch, probability)
    merged = merge_all(parts)
    # Every drift statistic comes from whole counts: equal. Sums (means, expected converters)
    # differ by rounding only.
    assert merged.rows == whole.rows and merged.categorical == whole.categorical
    for name, counts in whole.numeric.items():
        assert merged.numeric[name].model_dump(exclude={"total"}) == counts.model_dump(
            exclude={"total"}
        )
        assert merged.numeric[name].total == pytest.approx(counts.total, rel=1e-12)
    assert merged.prediction is not None and whole.prediction is not None
    assert merged.prediction.psi == whole.prediction.psi
    assert merged.prediction.ks == whole.prediction.ks
    assert merged.prediction.positive == pytest.approx(whole.prediction.positive, rel=1e-12)


def test_psi_is_zero_for_the_same_shares_and_grows_with_the_shift() -> None:
    assert psi([10, 20, 30], [20, 40, 60], 1e-4) == pytest.approx(0.0)
    expected = sum((b - r) * np.log(b / r) for r, b in ((0.5, 0.25), (0.5, 0.75)))
    assert psi([5, 5], [1, 3], 1e-4) == pytest.approx(expected)
    assert psi([5, 5], [0, 4], 1e-4) > psi([5, 5], [1, 3], 1e-4)


def test_the_binned_ks_statistic_is_close_to_scipys_on_continuous_values() -> None:
    from scipy.stats import ks_2samp

    rng = np.random.default_rng(0)
    reference, batch = rng.normal(0, 1, 5000), rng.normal(0.2, 1, 3000)
    edges = quantile_edges(reference, KS_BINS)
    statistic, p = ks_statistic(
        bin_counts(reference, edges).tolist(), bin_counts(batch, edges).tolist()
    )
    exact = ks_2samp(reference, batch)
    assert exact.statistic - 0.02 <= statistic <= exact.statistic + 1e-12
    assert p is not None and p < 1e-6


def test_the_jensen_shannon_distance_runs_from_zero_to_one() -> None:
    assert js_distance(np.array([1.0, 2, 3]), np.array([2.0, 4, 6])) == pytest.approx(0.0)
    assert js_distance(np.array([1.0, 0]), np.array([0.0, 1])) == pytest.approx(1.0)


def test_the_expected_roc_auc_is_what_outcomes_drawn_from_the_probabilities_give() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    p = rng.beta(2, 3, 20_000)
    fine = np.minimum((p * 1000).astype(int), 999)
    expected = expected_roc_auc(
        np.bincount(fine, weights=p, minlength=1000),
        np.bincount(fine, weights=1 - p, minlength=1000),
    )
    realised = [roc_auc_score(rng.random(p.size) < p, p) for _ in range(10)]
    assert expected == pytest.approx(np.mean(realised), abs=0.005)


def test_a_batch_like_the_training_rows_raises_no_alert() -> None:
    report = report_of(monitored_leads(2000, seed=9), np.random.default_rng(9).beta(2, 5, 2000))
    assert report.status == "ok", [(i.name, i.worst) for i in report.inputs if i.status != "ok"]
    assert report.alert_lines() == [] and not report.weak


def test_a_shifted_input_alerts_and_comes_first_and_its_line_names_it() -> None:
    report = report_of(monitored_leads(2000, seed=9, shift=3.0), None)
    assert report.status == "alert" and report.alerts == ["purchases"]
    assert report.inputs[0].name == "purchases"
    (line,) = report.alert_lines()
    assert line.startswith("drift alert: purchases: psi ")


def test_a_new_level_alerts_as_unseen_and_as_a_changed_mix() -> None:
    report = report_of(monitored_leads(2000, seed=9, sources=("signup", "organic", "tv")), None)
    source = next(item for item in report.inputs if item.name == "source")
    assert source.unseen_levels == ["tv"] and source.status == "alert"
    assert {s.name for s in source.statistics if s.status == "alert"} >= {"unseen_share", "js"}


def test_a_test_alone_never_alerts_and_a_small_batch_is_called_weak() -> None:
    # Only KS past its limit: with a p-value below p_value it alerts; on a weak batch not.
    batch = monitored_leads(60, seed=9, shift=1.0)
    strict = {"psi": {"warn": 9, "alert": 9}, "ks": {"warn": 0.01, "alert": 0.02}}
    report = report_of(batch, None, **strict, p_value=0.5)
    purchases = next(item for item in report.inputs if item.name == "purchases")
    assert report.weak and purchases.status == "ok"
    assert "purchases" in report_of(batch, None, **strict, p_value=0.5, min_rows=10).alerts
    chi2 = next(s for i in report.inputs for s in i.statistics if s.name == "chi2")
    assert chi2.status == "ok" and chi2.alert is None


def test_the_missing_rate_change_is_measured_per_input() -> None:
    batch = monitored_leads(2000, seed=9)
    batch.loc[:599, "time_spent"] = np.nan
    report = report_of(batch, None)
    time_spent = next(item for item in report.inputs if item.name == "time_spent")
    change = next(s for s in time_spent.statistics if s.name == "missing_rate_change")
    assert change.value == pytest.approx(0.3) and change.status == "alert"


def test_the_psi_counts_summed_from_the_ks_bins_are_the_counts_of_the_psi_bins() -> None:
    profile = profile_of()
    batch = monitored_leads(3000, seed=4, shift=0.5)
    counts = count_batch(profile, batch, None)
    for name, reference in profile.numeric.items():
        assert set(reference.psi.edges) <= set(reference.ks.edges), name
        values = batch[name].astype("float64").to_numpy()
        direct = bin_counts(values[~np.isnan(values)], reference.psi.edges).tolist()
        assert counts.numeric[name].psi == direct, name


def test_scores_rounded_as_a_csv_holds_them_fall_in_their_exact_values_bins() -> None:
    """The model's outputs take few values and the reference's edges fall on them: a score
    written to 6 digits is counted against edges rounded alike, in its exact value's bin."""
    from lead_conversion_prediction.monitoring.profile import bin_counts, numeric_profile
    from lead_conversion_prediction.scoring.output import round_significant
    from lead_conversion_prediction.stages.monitor import rounded_edges

    outputs = np.array([0.0037763417466934565, 0.1223474921, 0.8741854987])  # round down
    rng = np.random.default_rng(3)
    probability = rng.choice(outputs, 3000)
    profile = profile_of().model_copy(update={"prediction": numeric_profile(probability)})
    rounded = rounded_edges(profile)
    written = round_significant(probability)
    for name in ("psi", "ks"):
        exact = bin_counts(probability, getattr(profile.prediction, name).edges)
        assert np.array_equal(bin_counts(written, getattr(rounded.prediction, name).edges), exact)
    unrounded = bin_counts(written, profile.prediction.psi.edges)
    assert not np.array_equal(unrounded, bin_counts(probability, profile.prediction.psi.edges))
    assert rounded.numeric == profile.numeric and rounded.categorical == profile.categorical
