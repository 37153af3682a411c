"""Property tests: frames generated within the data contract pass it and score; one bad cell
is always found, in its column and row; text files and typed frames give the same values."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lead_conversion_prediction.schema import MODEL_INPUT_COLUMNS, SCORING_COLUMNS, check_leads
from lead_conversion_prediction.scoring.score import score_leads
from tests.support import fit_small_model

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


LEAD = st.fixed_dictionaries(
    {
        "lead_id": st.integers(0, 2**53 - 1),
        "date_part": st.dates(min_value=pd.Timestamp("2020-01-01").date()).map(
            lambda day: f"{day.year}-{day.month}-{day.day}"
        ),
        "source": st.sampled_from(["signup", "organic", "fb", "li", "referral"]),
        "purchases": maybe(st.integers(0, 1_000)),
        "time_spent": maybe(st.floats(0, 1e5, allow_nan=False, allow_infinity=False)),
        "n_visits": maybe(st.integers(0, 100_000)),
        "customer_group": maybe(st.integers(1, 9)),
        "onboarding": maybe(st.booleans()),
    }
)
FRAMES = st.lists(LEAD, min_size=1, max_size=40).map(pd.DataFrame)


@functools.cache
def model() -> Any:
    return fit_small_model()


@SETTINGS
@given(frame=FRAMES)
def test_frames_within_the_contract_pass_it_and_get_a_probability(frame: pd.DataFrame) -> None:
    typed, breaches = check_leads(frame.astype("object"), "generated", SCORING_COLUMNS)
    assert breaches == []
    scores = score_leads(model(), typed, threshold=0.5)
    assert len(scores) == len(frame)
    assert scores["conversion_probability"].between(0, 1).all()
    assert sorted(scores["rank"]) == list(range(1, len(frame) + 1))


BAD_CELLS = {
    "lead_id": ["1e20", "9223372036854775808", "9007199254740993", "-1", "7.5"],
    "purchases": ["lots", "-1", "inf", "1001", "1e308"],
    "time_spent": ["1,5", "-0.5", "-inf", "1e308"],
    "n_visits": ["x", "-3", "100001"],
    "customer_group": ["2.5", "0", "A", "10", "12"],
    "onboarding": ["maybe", "2", "yes", "no"],
    "date_part": ["2024-02-30", "20240101", "soon"],
}


@SETTINGS
@given(
    frame=FRAMES,
    column=st.sampled_from(sorted(BAD_CELLS)),
    data=st.data(),
)
def test_one_bad_cell_is_found_in_its_column_and_row(
    frame: pd.DataFrame, column: str, data: st.DataObject
) -> None:
    row = data.draw(st.integers(0, len(frame) - 1))
    bad = data.draw(st.sampled_from(BAD_CELLS[column]))
    frame = frame.astype("object")
    frame.loc[row, column] = bad
    _, breaches = check_leads(frame, "generated", SCORING_COLUMNS)
    # A cell may break several rules (-inf is negative and not finite), but no other cell.
    assert {(b.column, tuple(b.rows.tolist())) for b in breaches} == {(column, (row,))}


@SETTINGS
@given(frame=FRAMES)
def test_a_csv_file_and_its_frame_are_typed_alike(frame: pd.DataFrame) -> None:
    from io import StringIO

    text = pd.read_csv(StringIO(frame.to_csv(index=False)), dtype="str")
    from_text, text_breaches = check_leads(text, "text", SCORING_COLUMNS)
    from_frame, frame_breaches = check_leads(frame.astype("object"), "frame", SCORING_COLUMNS)
    assert text_breaches == frame_breaches == []
    for name in MODEL_INPUT_COLUMNS:
        left = from_text[name].astype("float64").to_numpy()
        right = from_frame[name].astype("float64").to_numpy()
        np.testing.assert_allclose(left, right, rtol=1e-15)


TYPED_VALUES = {
    "lead_id": st.one_of(st.integers(-5, 2**53 + 5), st.none()),
    "lead_indicator": st.one_of(st.sampled_from([0.0, 1.0, 0.5, 2.0, -1.0]), st.none()),
    "purchases": st.one_of(st.floats(-10, 2_000), st.sampled_from([np.inf, -np.inf]), st.none()),
    "time_spent": st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none()),
    "n_visits": st.one_of(st.floats(-1, 200_000, allow_nan=False), st.none()),
    "customer_group": st.one_of(st.integers(-1, 12), st.none()),
    "onboarding": st.one_of(st.booleans(), st.none()),
    "source": st.one_of(st.sampled_from(["signup", "fb"]), st.none()),
}
TYPED_DTYPES = {
    "lead_id": "Int64",
    "lead_indicator": "float64",
    "purchases": "float64",
    "time_spent": "float64",
    "n_visits": "float64",
    "customer_group": "Int64",
    "onboarding": "boolean",
    "source": "str",
}
TYPED_FRAMES = st.lists(st.fixed_dictionaries(TYPED_VALUES), min_size=1, max_size=12).map(
    lambda rows: pd.DataFrame(rows).astype(TYPED_DTYPES)
)


@SETTINGS
@given(typed=TYPED_FRAMES)
def test_the_numpy_checks_fail_exactly_where_pandera_does(typed: pd.DataFrame) -> None:
    """pandera is asked only when the plain checks fail: they must never pass a breach."""
    import pandera.pandas as pa

    from lead_conversion_prediction.schema import build_schema, may_break_a_check

    try:
        build_schema(()).validate(typed.copy(), lazy=True)
        pandera_fails = False
    except pa.errors.SchemaErrors:
        pandera_fails = True
    assert may_break_a_check(typed) == pandera_fails


def test_a_clean_chunk_is_checked_without_loading_pandera() -> None:
    import subprocess
    import sys

    script = (
        "import sys; from tests.support import make_raw_leads; "
        "from lead_conversion_prediction.schema import TRAINING_COLUMNS, check_leads; "
        "typed, breaches = check_leads(make_raw_leads(50).astype('object'), 'x', "
        "TRAINING_COLUMNS); assert breaches == []; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pandera'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
