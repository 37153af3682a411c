"""Spark's errors told in one line: the cause without its error class, state or a whole record.

``error_cause`` needs no Spark session: it reads the message of any exception.
"""

from lead_conversion_prediction.scoring.spark_session import CAUSE_CHARACTERS, error_cause


def test_a_cause_loses_its_error_class_and_state() -> None:
    error = ValueError("[MALFORMED_RECORD_IN_PARSING] the record is broken SQLSTATE: 22023")
    assert error_cause(error) == "the record is broken"


def test_a_cause_that_quotes_a_whole_record_is_cut_and_says_how_long_it_was() -> None:
    header = ",".join(f"x{i}" for i in range(30_000))
    cause = error_cause(ValueError(f"[MALFORMED_CSV_RECORD] Malformed CSV record: {header}"))
    assert cause.startswith("Malformed CSV record: x0,x1,")
    assert len(cause) < CAUSE_CHARACTERS + 40
    assert cause.endswith(f"... ({len('Malformed CSV record: ' + header):,} characters)")
