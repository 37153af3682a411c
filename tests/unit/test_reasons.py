"""Reasons as a lead's own values: how they read, when they are left empty, how they are kept."""

import numpy as np
import pandas as pd

from lead_conversion_prediction.schema import MODEL_INPUT_COLUMNS
from lead_conversion_prediction.scoring import MAX_REASONS
from lead_conversion_prediction.scoring.output import output_frame, output_schema, output_table
from lead_conversion_prediction.scoring.reasons import Reasons, reason_labels, value_text

INPUTS = ("purchases", "time_spent", "n_visits", "customer_group", "onboarding")


def test_a_reason_reads_as_the_leads_own_value() -> None:
    assert value_text("n_visits", 12.0) == "12"
    assert value_text("time_spent", 134.7) == "134.7"
    assert value_text("time_spent", 0.1 + 0.2) == "0.30000000000000004"  # distinct values stay so
    assert value_text("customer_group", 4.0) == "4"
    assert value_text("onboarding", 1.0) == "true"
    assert value_text("onboarding", 0.0) == "false"
    assert value_text("purchases", float("nan")) == "missing"


def test_reason_labels_format_each_distinct_value_once_and_leave_hidden_ones_empty() -> None:
    codes = np.array([2, 2, 4, 0, 2], dtype=np.int8)
    values = np.array([12.0, 3.0, 1.0, np.nan, 12.0])
    shown = np.array([True, True, True, True, False])
    labels = reason_labels(INPUTS, codes, values, shown)
    assert labels.to_pylist() == [
        "n_visits=12",
        "n_visits=3",
        "onboarding=true",
        "purchases=missing",
        None,
    ]
    assert sorted(labels.dictionary.to_pylist()) == [
        "n_visits=12",
        "n_visits=3",
        "onboarding=true",
        "purchases=missing",
    ]


def test_reasons_below_the_floor_are_empty_their_contributions_kept_and_written() -> None:
    reasons = Reasons(
        inputs=INPUTS,
        codes=np.array([[2, 4], [1, 0]], dtype=np.int8),
        contributions=np.array([[1.5, -0.04], [0.3, 0.06]]),
        values=np.array([[12.0, 0.0], [55.5, 2.0]]),
        base=np.array([-0.2, -0.2]),
        floor=0.05,
    )
    scored = {"lead_id": [1, 2], "conversion_probability": [0.9, 0.5], "predicted_label": [1, 0]}
    columns = scored | {"rank": [1, 2], "model": "m", **reasons.columns()}
    frame = output_frame(columns, output_schema(2))
    assert frame["reason_1"].astype(object).tolist() == ["n_visits=12", "time_spent=55.5"]
    assert frame["reason_2"].astype(object).tolist() == [np.nan, "purchases=2"]
    assert frame["reason_2_contribution"].tolist() == [-0.04, 0.06]
    assert frame["base_log_odds"].tolist() == [-0.2, -0.2]
    table = output_table(columns, output_schema(2))
    assert table.column("reason_2").to_pylist() == [None, "purchases=2"]
    kept = Reasons.from_records(INPUTS, reasons.records(), reasons.floor)
    for name in ("codes", "contributions", "values", "base"):
        np.testing.assert_array_equal(getattr(kept, name), getattr(reasons, name))


def test_explain_allows_one_reason_per_model_input() -> None:
    assert len(MODEL_INPUT_COLUMNS) == MAX_REASONS
    assert [column.name for column in output_schema(1)][-3:] == [
        "base_log_odds",
        "reason_1",
        "reason_1_contribution",
    ]
    assert pd.Index([column.name for column in output_schema(0)]).equals(
        pd.Index(["lead_id", "conversion_probability", "predicted_label", "rank", "model"])
    )
