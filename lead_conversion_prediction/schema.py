"""The data contract of raw lead files, shared by training and scoring.

A raw file is read as text by pandas, each known column is parsed into its declared type
(reporting the values that cannot be parsed), and the typed frame is validated by a pandera
schema: required columns, nullability, ranges and allowed values. Any breach becomes one
:class:`DataContractError` naming the file, the column and the first bad rows.
Columns the contract does not know are kept as read; the stages drop what they do not use.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from lead_conversion_prediction.config import ID_COLUMN, MODEL_INPUT_COLUMNS, TARGET
from lead_conversion_prediction.exceptions import DataContractError

if TYPE_CHECKING:
    import pandera.pandas as pa

Kind = Literal["integer", "number", "boolean", "date", "text"]

DATE_FORMAT = "%Y-%m-%d"
KNOWN_SOURCES = ("signup", "organic", "fb", "li")
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})
_PANDAS_DTYPE: dict[Kind, str] = {
    "integer": "Int64",
    "number": "float64",
    "boolean": "boolean",
    "date": "datetime64[ns]",
    "text": "str",
}


@dataclass(frozen=True)
class Field:
    """One column of the contract: its type, whether it may be empty, and its bounds."""

    kind: Kind
    nullable: bool = True
    minimum: float | None = None
    allowed: tuple[float, ...] | None = None
    description: str = ""


FIELDS: dict[str, Field] = {
    ID_COLUMN: Field("integer", description="lead identifier"),
    TARGET: Field("number", allowed=(0, 1), description="1 converted, 0 not, empty unknown"),
    "date_part": Field("date", nullable=False, description="signup date, YYYY-MM-DD"),
    "source": Field("text", nullable=False, description="signup, organic, fb or li"),
    "purchases": Field("number", minimum=0, description="purchases so far"),
    "time_spent": Field("number", minimum=0, description="time spent on the site"),
    "n_visits": Field("number", minimum=0, description="number of visits"),
    "customer_group": Field("integer", minimum=1, description="customer group code (1-9)"),
    "onboarding": Field("boolean", description="completed onboarding"),
    "customer_code": Field("text", description="customer code, often empty"),
}

TRAINING_COLUMNS = (ID_COLUMN, TARGET, "date_part", "source", *MODEL_INPUT_COLUMNS)


def build_schema(required: Iterable[str]) -> pa.DataFrameSchema:
    """Return the pandera schema of typed raw leads; ``required`` columns must be present."""
    import pandera.pandas as pa

    required = set(required)
    columns = {}
    for name, field in FIELDS.items():
        checks = []
        if field.minimum is not None:
            checks.append(pa.Check.ge(field.minimum, error=f"is below {field.minimum:g}"))
        if field.kind == "number":
            checks.append(pa.Check(np.isfinite, error="is not a finite number"))
        if field.allowed is not None:
            allowed = ", ".join(f"{value:g}" for value in field.allowed)
            checks.append(pa.Check.isin(field.allowed, error=f"is not one of {allowed}"))
        columns[name] = pa.Column(
            _PANDAS_DTYPE[field.kind],
            checks=checks,
            nullable=field.nullable,
            required=name in required,
        )
    return pa.DataFrameSchema(columns, strict=False, ordered=False)


def read_raw_leads(path: Path, required: Iterable[str] = TRAINING_COLUMNS) -> pd.DataFrame:
    """Read a raw lead CSV and return it typed and validated against the contract."""
    frame = read_csv_text(path)
    return validate_leads(frame, path, required)


def read_csv_text(path: Path) -> pd.DataFrame:
    """Read a CSV file, turning file-level problems into a one-line :class:`DataContractError`."""
    try:
        frame = pd.read_csv(path, encoding="utf-8", encoding_errors="strict")
    except FileNotFoundError:
        raise DataContractError(path, "file not found") from None
    except pd.errors.EmptyDataError:
        raise DataContractError(path, "file is empty (no header row)") from None
    except UnicodeDecodeError as error:
        raise DataContractError(
            path, f"not UTF-8 text (bad byte at offset {error.start})"
        ) from None
    except pd.errors.ParserError as error:
        raise DataContractError(path, f"not a valid CSV file ({error})") from None
    if frame.empty:
        raise DataContractError(path, "file has a header but no data rows")
    return frame


def validate_leads(
    frame: pd.DataFrame, file: Path | str, required: Iterable[str] = TRAINING_COLUMNS
) -> pd.DataFrame:
    """Parse the contract's columns of ``frame`` into their types and validate them."""
    import pandera.pandas as pa

    required = tuple(required)
    missing = [name for name in required if name not in frame.columns]
    if missing:
        hint = " (is the delimiter a comma?)" if len(frame.columns) == 1 else ""
        names = ", ".join(f"'{name}'" for name in missing)
        raise DataContractError(file, f"missing required column {names}{hint}")
    typed = frame.copy()
    for name, field in FIELDS.items():
        if name in typed.columns:
            typed[name] = _parse_column(typed[name], field, name, file)
    try:
        return build_schema(required).validate(typed, lazy=True)
    except pa.errors.SchemaErrors as errors:
        raise _first_breach(errors.failure_cases, file, typed) from None


def _parse_column(values: pd.Series, field: Field, name: str, file: Path | str) -> pd.Series:
    """Convert one column to its declared type; unparseable values raise a contract error."""
    present = values.notna()
    if field.kind in ("integer", "number"):
        parsed = values if pd.api.types.is_numeric_dtype(values) else _to_number(values)
        if field.kind == "integer":
            fractional = present & parsed.notna() & (parsed % 1 != 0)
            _raise_if_any(fractional, values, name, file, "is not a whole number")
            _raise_if_any(present & parsed.isna(), values, name, file, "is not a number")
            return parsed.astype("Int64")
        _raise_if_any(present & parsed.isna(), values, name, file, "is not a number")
        return parsed.astype("float64")
    if field.kind == "boolean":
        if pd.api.types.is_bool_dtype(values):
            return values.astype("boolean")
        text = values.astype("str").str.strip().str.lower()
        parsed = pd.Series(pd.NA, index=values.index, dtype="boolean")
        parsed[text.isin(_TRUE)] = True
        parsed[text.isin(_FALSE)] = False
        _raise_if_any(present & parsed.isna(), values, name, file, "is not true or false")
        return parsed
    if field.kind == "date":
        parsed = pd.to_datetime(values, format=DATE_FORMAT, errors="coerce")
        _raise_if_any(present & parsed.isna(), values, name, file, "is not a YYYY-MM-DD date")
        return parsed.astype("datetime64[ns]")
    return values.astype("str").where(present)


def _to_number(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values.astype("str").str.strip(), errors="coerce")


def _raise_if_any(
    bad: pd.Series, values: pd.Series, name: str, file: Path | str, problem: str
) -> None:
    if not bad.any():
        return
    positions = np.flatnonzero(bad.to_numpy())
    raise DataContractError(
        file,
        f"value {_show(values.iloc[positions[0]])} {problem}",
        column=name,
        rows=positions[:5].tolist(),
        n_bad=len(positions),
    )


def _show(value: object) -> str:
    """Render a cell for a message: text quoted, numbers short (2.0 -> 2)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | str):
        return repr(value)
    if isinstance(value, int | float):
        return f"{value:g}"
    return repr(value)


def _first_breach(
    failures: pd.DataFrame, file: Path | str, frame: pd.DataFrame
) -> DataContractError:
    """Turn pandera's failure table into one error about the first failing column."""
    failures = failures.assign(
        order=failures["column"].map(
            lambda column: list(frame.columns).index(column) if column in frame.columns else -1
        )
    ).sort_values(["order"], kind="stable")
    first = failures.iloc[0]
    column = first["column"] if isinstance(first["column"], str) else None
    if first["check"] == "column_in_dataframe":
        return DataContractError(file, f"missing required column '{first['failure_case']}'")
    if first["check"] == "not_nullable":
        problem = "is empty but required"
    else:
        problem = f"value {_show(first['failure_case'])} {first['check']}"
    same = failures[
        (failures["column"] == first["column"]) & (failures["check"] == first["check"])
    ]
    positions = sorted(frame.index.get_indexer(same["index"].dropna().unique()).tolist())
    return DataContractError(
        file, problem, column=column, rows=positions[:5], n_bad=len(positions)
    )
