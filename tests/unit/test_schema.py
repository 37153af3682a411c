from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lead_conversion_prediction.csv_io import read_raw_leads
from lead_conversion_prediction.exceptions import DataContractError, InputNotFoundError
from lead_conversion_prediction.schema import validate_leads


def write(tmp_path: Path, frame: pd.DataFrame, name: str = "leads.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_a_valid_file_is_typed_by_the_contract(
    tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    leads = read_raw_leads(write(tmp_path, make_leads()))
    assert str(leads["customer_group"].dtype) == "Int64"
    assert str(leads["onboarding"].dtype) == "boolean"
    assert pd.api.types.is_datetime64_any_dtype(leads["date_part"])
    assert leads["purchases"].dtype == "float64"
    assert leads.loc[1, "date_part"] == pd.Timestamp("2024-01-02")
    assert "is_active" in leads  # unknown columns are kept as read


def test_unpadded_dates_are_read(tmp_path: Path, make_leads: Callable[..., pd.DataFrame]) -> None:
    leads = read_raw_leads(write(tmp_path, make_leads().assign(date_part="2024-01-1")))
    assert (leads["date_part"] == pd.Timestamp("2024-01-01")).all()


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("purchases", "abc", "value 'abc' is not a number"),
        ("n_visits", "-3", "value -3 is below 0"),
        ("time_spent", "inf", "value inf is not a finite number"),
        ("customer_group", "2.5", "value 2.5 is not a whole number"),
        ("customer_group", "0", "value 0 is below 1"),
        ("customer_group", "12", "value 12 is above 9, not plausible"),
        ("time_spent", "1e308", "value 1e+308 is above 100000, not plausible"),
        ("purchases", "1001", "value 1001 is above 1000, not plausible"),
        ("lead_id", "1e20", "value 1e+20 is too large for an integer"),
        (
            "lead_id",
            "9223372036854775808",
            "value 9223372036854775808 is too large for an integer",
        ),
        ("onboarding", "yes", "value 'yes' is not true or false"),
        ("onboarding", "maybe", "value 'maybe' is not true or false"),
        ("date_part", "2024-13-01", "value '2024-13-01' is not a YYYY-MM-DD date"),
        ("date_part", "2024-02-30", "value '2024-02-30' is not a YYYY-MM-DD date"),
        ("lead_indicator", "2", "value 2 is not one of 0, 1"),
    ],
)
def test_a_bad_value_names_the_file_the_column_and_the_line(
    tmp_path: Path, column: str, value: str, problem: str, make_leads: Callable[..., pd.DataFrame]
) -> None:
    leads = make_leads().astype({column: "object"})
    leads.loc[[3, 7], column] = value
    path = write(tmp_path, leads)
    with pytest.raises(DataContractError) as caught:
        read_raw_leads(path)
    error = caught.value
    assert (error.column, error.rows[:2]) == (column, [3, 7])
    assert str(error) == f"{path}: column '{column}': {problem} at lines 5, 9"


def test_an_empty_required_value_is_reported(
    tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    leads = make_leads().astype({"source": "object"})
    leads.loc[0, "source"] = np.nan
    path = write(tmp_path, leads)
    with pytest.raises(
        DataContractError, match=r"column 'source': is empty but required at line 2"
    ):
        read_raw_leads(path)


def test_a_missing_required_column_is_named(
    tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    path = write(tmp_path, make_leads().drop(columns=["time_spent"]))
    with pytest.raises(DataContractError, match=r"missing required column 'time_spent'$"):
        read_raw_leads(path)


def test_a_header_that_repeats_a_contract_column_is_refused(
    tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    leads = make_leads()
    path = write(tmp_path, leads.assign(xx_one=leads["time_spent"] + 1, xx_two=0))
    header, rows = path.read_text().split("\n", 1)
    # pandas alone would read the first and call the second "time_spent.1"
    path.write_text(header.replace("xx_one", "time_spent") + "\n" + rows)
    with pytest.raises(DataContractError, match=r"the header names column 'time_spent' 2 times$"):
        read_raw_leads(path)
    # a column the contract does not read may repeat
    path.write_text(header.replace("xx_one", "notes").replace("xx_two", "notes") + "\n" + rows)
    assert len(read_raw_leads(path)) == len(leads)


def test_a_wrong_delimiter_is_hinted(
    tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    path = tmp_path / "semicolons.csv"
    make_leads().to_csv(path, index=False, sep=";")
    with pytest.raises(DataContractError, match="is the delimiter a comma"):
        read_raw_leads(path)


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("Lead_ID", "(found 'Lead_ID': names must match exactly)"),
        (" lead_id", "(found ' lead_id': names must match exactly)"),
        ("lead_id\t", r"(found 'lead_id\t': names must match exactly)"),
    ],
    ids=["letter-case", "blank-before", "tab-after"],
)  # fmt: skip
def test_a_near_miss_of_a_column_name_is_named(
    tmp_path: Path, make_leads: Callable[..., pd.DataFrame], written: str, shown: str
) -> None:
    path = write(tmp_path, make_leads().rename(columns={"lead_id": written}))
    with pytest.raises(DataContractError) as raised:
        read_raw_leads(path)
    assert str(raised.value).endswith(f"missing required column 'lead_id' {shown}")


def test_a_header_field_left_empty_or_written_na_is_another_column(
    tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    leads = make_leads()
    path = write(tmp_path, leads.assign(xx_one=1, xx_two=2))
    header, rows = path.read_text().split("\n", 1)
    path.write_text(header.replace("xx_one", "").replace("xx_two", "NA") + "\n" + rows)
    assert len(read_raw_leads(path)) == len(leads)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "file is empty"),
        (b"lead_id,lead_indicator,date_part\n", "header but no data rows"),
        (b"lead_id,source\n1,sign\xffup\n", "not UTF-8 text"),
        (b"lead_id,source\n1,signup\n2,signup,x\n", "3 fields where the header has 2 at line 3"),
        (b'lead_id,source\n1,"signup\n', "not a valid CSV file"),
    ],
)
def test_file_level_problems_are_one_line_errors(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / "leads.csv"
    path.write_bytes(content)
    with pytest.raises(DataContractError, match=problem) as caught:
        read_raw_leads(path)
    assert "\n" not in str(caught.value)


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match=r"absent\.csv: not found"):
        read_raw_leads(tmp_path / "absent.csv")
    with pytest.raises(DataContractError, match="is a directory, not a file"):
        read_raw_leads(tmp_path)


def test_the_count_of_bad_rows_is_given_beyond_the_first_five(
    tmp_path: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    leads = make_leads().astype({"purchases": "object"})
    leads.loc[:9, "purchases"] = "x"
    with pytest.raises(DataContractError, match=r"at lines 2, 3, 4, 5, 6 \(10 bad rows in all\)"):
        read_raw_leads(write(tmp_path, leads))


def test_validate_leads_accepts_frames_typed_by_pandas(
    make_leads: Callable[..., pd.DataFrame],
) -> None:
    leads = make_leads()
    leads["date_part"] = pd.to_datetime(leads["date_part"], format="%Y-%m-%d")
    typed = validate_leads(leads, "frame")
    assert len(typed) == len(leads)


@pytest.mark.parametrize(
    ("column", "value", "shown"),
    [
        ("lead_id", np.uint64(2**63 + 1), "value 9223372036854775809 is too large"),
        ("lead_id", Decimal(2**63 + 1), "value 9223372036854775809 is too large"),
        ("customer_group", Decimal("2.50"), "value 2.5 is not a whole number"),
        ("customer_group", 1234567.0, "value 1234567 is above 9"),
    ],
    ids=["uint64", "spark-decimal", "decimal-fraction", "float"],
)
def test_numbers_in_messages_are_shown_as_written(column: str, value: object, shown: str) -> None:
    # Spark hands unsigned 64-bit Parquet integers over as decimals
    frame = pd.DataFrame({"lead_id": [1], "customer_group": [1]})
    frame[column] = pd.Series([value], dtype=np.asarray([value]).dtype)
    with pytest.raises(DataContractError, match=f"column '{column}': {shown}"):
        validate_leads(frame, "leads.parquet", required=("lead_id",))


def test_the_cells_that_mean_no_value_are_those_the_reference_read_with() -> None:
    from io import StringIO

    from lead_conversion_prediction.schema import MISSING_CELLS

    # the reference analysis read its CSV with pandas' defaults: each of these is missing there,
    # and a text pandas would read as a value is not among them
    texts = [*MISSING_CELLS, "none", "-", "0", "NAN"]
    column = pd.read_csv(StringIO("x\n" + "\n".join(f'"{text}"' for text in texts) + "\n"))["x"]
    assert column.isna().tolist() == [text in MISSING_CELLS for text in texts]
