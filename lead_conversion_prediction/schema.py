"""The data contract of raw leads, shared by training and scoring: no file is read here.

Each known column of a frame of leads (as ``csv_io.py`` or the scoring readers read it) is
parsed into its declared type (noting the values that cannot be parsed), and the typed frame is
checked by a pandera schema: required columns, nullability, ranges and allowed values. The
same checks, read from ``FIELDS`` too, first run as plain numpy comparisons: pandera (about a
third of a second to import) is loaded, and asked to name the breaches, only when one fails.
Training stops at the first breach with a :class:`DataContractError` naming the file, the
column and the first bad rows; scoring can instead set the bad rows aside with their reasons
(:func:`check_leads`). Columns the contract does not know are kept as read; the stages drop
what they do not use.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from lead_conversion_prediction.breaches import Breach, pandera_breaches
from lead_conversion_prediction.exceptions import DataContractError

if TYPE_CHECKING:
    import pandera.pandas as pa

TARGET = "lead_indicator"
ID_COLUMN = "lead_id"
# The model's raw inputs, by how the preprocessing treats them (features.py).
CONTINUOUS_FEATURES = ("purchases", "time_spent", "n_visits")
CATEGORICAL_FEATURES = ("customer_group", "onboarding")
BOOLEAN_FEATURES = ("onboarding",)
MODEL_INPUT_COLUMNS = (*CONTINUOUS_FEATURES, *CATEGORICAL_FEATURES)
# The model matrix: the reference's 12 columns, in order (one-hot without the first level).
MODEL_COLUMNS = (
    *CONTINUOUS_FEATURES,
    *(f"customer_group_{group}" for group in range(2, 10)),
    "onboarding_True",
)

Kind = Literal["integer", "number", "boolean", "date", "text"]

DATE_FORMAT = "%Y-%m-%d"
# The CSV cells that mean "no value", in any column: pandas' defaults, with which the reference
# analysis read its data. Every reader of CSV leads (pandas, Arrow, Spark) is given these.
MISSING_CELLS = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)  # fmt: skip
KNOWN_SOURCES = ("signup", "organic", "fb", "li")
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})
_INT64_LIMIT = 2.0**63  # whole numbers at or beyond this do not fit an integer column
_PANDAS_DTYPE: dict[Kind, str | None] = {
    "integer": "Int64",
    "number": "float64",
    "boolean": "boolean",
    "date": None,  # parsed here into datetimes; their resolution does not matter
    "text": "str",
}


@dataclass(frozen=True)
class Field:
    """One column of the contract: its type, whether it may be empty, and its bounds.

    ``maximum`` is a plausible bound, not a statistical one: a value beyond it is an error in
    the data (a unit, an overflow, a test value), far outside anything the model has seen.
    """

    kind: Kind
    nullable: bool = True
    minimum: float | None = None
    maximum: float | None = None
    allowed: tuple[float, ...] | None = None
    description: str = ""


FIELDS: dict[str, Field] = {
    # Ids beyond 2**53 would not survive a float on the way (CSV readers, JSON): refused.
    ID_COLUMN: Field("integer", minimum=0, maximum=2**53 - 1, description="lead identifier"),
    TARGET: Field("number", allowed=(0, 1), description="1 converted, 0 not, empty unknown"),
    "date_part": Field("date", nullable=False, description="signup date, YYYY-MM-DD"),
    "source": Field("text", nullable=False, description="signup, organic, fb or li"),
    # The real file's largest values: 17 purchases, 134.7 time spent, 47 visits.
    "purchases": Field("number", minimum=0, maximum=1_000, description="purchases so far"),
    "time_spent": Field(
        "number", minimum=0, maximum=100_000, description="time spent on the site"
    ),
    "n_visits": Field("number", minimum=0, maximum=100_000, description="number of visits"),
    "customer_group": Field(
        "integer", minimum=1, maximum=9, description="customer group code (1-9)"
    ),
    "onboarding": Field("boolean", description="completed onboarding: true/false or 1/0"),
    "customer_code": Field("text", description="customer code, often empty"),
}

TRAINING_COLUMNS = (ID_COLUMN, TARGET, "date_part", "source", *MODEL_INPUT_COLUMNS)
SCORING_COLUMNS = (ID_COLUMN, *MODEL_INPUT_COLUMNS)


def build_schema(required: Iterable[str]) -> pa.DataFrameSchema:
    """Return the pandera schema of typed raw leads; ``required`` columns must be present."""
    return _schema(frozenset(required))


@cache
def _schema(required: frozenset[str]) -> pa.DataFrameSchema:
    """The schema for one set of required columns, built once: scoring checks every chunk."""
    _load_pandera()
    import pandera.pandas as pa

    columns = {}
    for name, field in FIELDS.items():
        checks = []
        if field.minimum is not None:
            checks.append(pa.Check.ge(field.minimum, error=f"is below {field.minimum:g}"))
        if field.maximum is not None:  # infinity is reported as not finite, below
            bound = field.maximum
            checks.append(
                pa.Check(
                    lambda values, bound=bound: ~np.isfinite(values) | (values <= bound),
                    error=f"is above {bound:g}, not plausible",
                )
            )
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


def features_and_target(leads: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Return the model's raw input columns and the integer target of labelled leads."""
    return leads.loc[:, list(MODEL_INPUT_COLUMNS)], leads[TARGET].astype("int64")


def check_columns(columns: Iterable[str], file: Path | str, required: Iterable[str] = ()) -> None:
    """Raise a :class:`DataContractError` naming a contract column the header gives more than
    once, letter case aside as Spark reads names (which one holds the values is anyone's
    guess), or the required columns that are absent."""
    present = list(columns)
    lowered = [name.lower() for name in present]
    repeated = [name for name in present if name in FIELDS and lowered.count(name) > 1]
    if repeated:
        name = repeated[0]
        times = lowered.count(name)
        aside = "" if present.count(name) == times else " (letter case aside)"
        raise DataContractError(file, f"the header names column '{name}' {times} times{aside}")
    missing = [name for name in required if name not in present]
    if missing:
        near = [repr(name) for name in present if name not in FIELDS and _bare(name) in missing]
        hint = " (is the delimiter a comma?)" if len(present) == 1 else ""
        if near:  # " lead_id", "Lead_ID": names are matched as written
            hint = f" (found {', '.join(near)}: names must match exactly)"
        names = ", ".join(f"'{name}'" for name in missing)
        noun = "column" if len(missing) == 1 else "columns"
        raise DataContractError(file, f"missing required {noun} {names}{hint}")


def _bare(name: str) -> str:
    """A column name without surrounding blanks and letter case: what a near miss shares."""
    return name.strip().lower()


def validate_leads(
    frame: pd.DataFrame, file: Path | str, required: Iterable[str] = TRAINING_COLUMNS
) -> pd.DataFrame:
    """Parse the contract's columns of ``frame`` into their types and validate them."""
    typed, breaches = check_leads(frame, file, required)
    if breaches:
        raise breaches[0].error(file)
    return typed


def check_leads(
    frame: pd.DataFrame,
    file: Path | str,
    required: Iterable[str] = TRAINING_COLUMNS,
    not_empty: Iterable[str] = (),
) -> tuple[pd.DataFrame, list[Breach]]:
    """Type the contract's columns and list every breach, ordered as the columns are.

    Cells that cannot be parsed become missing in the typed frame. ``not_empty`` columns
    may not hold empty cells even where the contract allows them.
    """
    required = tuple(required)
    check_columns(frame.columns, file, required)
    columns: dict[str, pd.Series] = {}
    breaches: list[Breach] = []
    for name, values in frame.items():
        field = FIELDS.get(str(name))
        if field is None:
            columns[str(name)] = values
            continue
        parsed, unparsed, problem = _parse_column(values, field)
        if unparsed.any():
            positions = np.flatnonzero(unparsed)
            cells = values.iloc[positions].to_numpy(dtype=object)
            breaches.append(Breach(str(name), problem, positions, cells[0], cells))
        columns[str(name)] = parsed
    typed = pd.DataFrame(columns, index=frame.index)
    if may_break_a_check(typed):
        _load_pandera()
        import pandera.pandas as pa

        try:
            build_schema(required).validate(typed, lazy=True, inplace=True)
        except pa.errors.SchemaErrors as errors:
            breaches.extend(pandera_breaches(errors.failure_cases, typed, breaches))
    for name in not_empty:
        empty = frame[name].isna().to_numpy() if name in frame else np.zeros(0, dtype=bool)
        if empty.any():
            breaches.append(Breach(name, "is empty but required", np.flatnonzero(empty)))
    order = {str(name): position for position, name in enumerate(frame.columns)}
    breaches.sort(key=lambda breach: (order.get(breach.column, -1), int(breach.rows[0])))
    return typed, breaches


def may_break_a_check(typed: pd.DataFrame) -> bool:
    """Whether a check of the schema may fail on ``typed``: False only when none can.

    The schema's checks (``_schema``) as numpy comparisons on each known column's present
    values; a column not of its declared type is left to pandera.
    """
    for name, field in FIELDS.items():
        if name not in typed:
            continue
        values = typed[name]
        declared = _PANDAS_DTYPE[field.kind]
        if declared is not None and str(values.dtype) != declared:
            return True
        present = values.notna().to_numpy()
        if not field.nullable and not present.all():
            return True
        if field.kind not in ("integer", "number"):
            continue
        numbers = values.to_numpy(dtype="float64", na_value=np.nan)[present]
        finite = np.isfinite(numbers)
        if field.minimum is not None and (numbers < field.minimum).any():
            return True
        if field.maximum is not None and (finite & (numbers > field.maximum)).any():
            return True
        if field.kind == "number" and not finite.all():
            return True
        if field.allowed is not None and not np.isin(numbers, field.allowed).all():
            return True
    return False


def _load_pandera() -> None:
    """Load pandera's pandas API without PySpark.

    ``import pandera.pandas`` imports ``pyspark.pandas`` whenever PySpark is installed: a
    quarter of a second, and PySpark's warning about pandas 3, though the contract never uses
    it. Unless PySpark is loaded already (the Spark engine), it is hidden while pandera loads.
    """
    import importlib
    import sys

    if "pandera.pandas" in sys.modules or "pyspark" in sys.modules:
        return
    sys.modules["pyspark"] = None  # type: ignore[assignment]
    try:
        importlib.import_module("pandera.pandas")
    finally:
        if sys.modules.get("pyspark", ...) is None:
            del sys.modules["pyspark"]


def ready_contract(required: Iterable[str]) -> None:
    """Run the contract's checks once on no rows, before the first chunk is timed."""
    required = tuple(required)
    check_leads(pd.DataFrame({name: pd.Series(dtype="object") for name in required}), "", required)


def _parse_column(values: pd.Series, field: Field) -> tuple[pd.Series, np.ndarray, str]:
    """Convert one column to its type; return it, the unparseable cells and the problem."""
    present = values.notna().to_numpy()
    none = np.zeros(len(values), dtype=bool)
    if field.kind == "integer" and pd.api.types.is_signed_integer_dtype(values):
        return values.astype("Int64"), none, ""  # read as integers: whole and in range
    if field.kind in ("integer", "number"):
        parsed = _to_number(values)
        unparsed = present & parsed.isna().to_numpy()
        if field.kind == "number":
            return parsed, unparsed, "is not a number"
        numbers = parsed.to_numpy()
        with np.errstate(invalid="ignore"):
            fractional = parsed.notna().to_numpy() & (numbers % 1 != 0)
            outside = parsed.notna().to_numpy() & (np.abs(numbers) >= _INT64_LIMIT)
        if fractional.any():
            bad = fractional | outside
            return parsed.where(~bad).astype("Int64"), bad, "is not a whole number"
        if outside.any():
            return parsed.where(~outside).astype("Int64"), outside, "is too large for an integer"
        return parsed.astype("Int64"), unparsed, "is not a number"
    if field.kind == "boolean":
        if pd.api.types.is_bool_dtype(values):
            return values.astype("boolean"), none, ""
        parsed = _to_boolean(values)
        return parsed, present & parsed.isna().to_numpy(), "is not true or false"
    if field.kind == "date":
        dates = _to_date(values)
        return dates, present & dates.isna().to_numpy(), "is not a YYYY-MM-DD date"
    return values.astype("str").where(values.notna()), none, ""


def _arrow_text(values: pd.Series) -> Any:
    """The column as an Arrow string array when pandas holds it so (no copy), else None."""
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        import pyarrow as pa

        return pa.array(values.array)
    return None


def _to_number(values: pd.Series) -> pd.Series:
    """Floats from numbers or text; text that is not a number becomes missing."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype("float64")
    text = _arrow_text(values)
    if text is not None:
        import pyarrow as pa
        import pyarrow.compute as pc

        try:
            numbers = pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
            return pd.Series(numbers, index=values.index)
        except pa.ArrowInvalid:
            pass  # some cells are not numbers: find them below
    return pd.to_numeric(values.astype("str").str.strip(), errors="coerce").astype("float64")


def _to_boolean(values: pd.Series) -> pd.Series:
    """Nullable booleans from true/false or 1/0 text (any case, spaces around ignored)."""
    arrow = _arrow_text(values)
    if arrow is not None:
        import pyarrow as pa
        import pyarrow.compute as pc

        words = pc.utf8_lower(pc.utf8_trim_whitespace(arrow))
        true = pc.is_in(words, value_set=pa.array(sorted(_TRUE)))
        known = pc.or_(true, pc.is_in(words, value_set=pa.array(sorted(_FALSE))))
        flags = pc.if_else(known, true, pa.scalar(None, pa.bool_()))
        return pd.Series(pd.array(flags, dtype="boolean"), index=values.index)
    text = values.astype("str").str.strip().str.lower()
    parsed = pd.Series(pd.NA, index=values.index, dtype="boolean")
    parsed[text.isin(_TRUE).to_numpy()] = True
    parsed[text.isin(_FALSE).to_numpy()] = False
    return parsed


def _to_date(values: pd.Series) -> pd.Series:
    """Timestamps from YYYY-MM-DD text (days and months may be unpadded)."""
    text = _arrow_text(values)
    if text is not None:
        import pyarrow as pa
        import pyarrow.compute as pc

        # A file holds few distinct dates: parse each once, then spread them over the rows.
        if isinstance(text, pa.ChunkedArray):
            text = text.combine_chunks()
        encoded = pc.dictionary_encode(text)
        distinct = encoded.dictionary
        dates = pc.strptime(distinct, format=DATE_FORMAT, unit="s", error_is_null=True)
        # strptime rolls 2024-02-30 over to March 1st: a date holds only if its day is the one
        # written, the digits after the last "-" (the last two characters, less a "-").
        tail = pc.utf8_ltrim(pc.utf8_slice_codeunits(distinct, -2), characters="-")
        written = pc.cast(pc.if_else(pc.is_valid(dates), tail, "0"), pa.int64())
        same_day = pc.equal(pc.day(dates), written)
        dates = pc.if_else(pc.fill_null(same_day, False), dates, pa.scalar(None, dates.type))
        spread = dates.take(encoded.indices)
        return pd.Series(spread.to_numpy(zero_copy_only=False), index=values.index)
    return pd.to_datetime(values, format=DATE_FORMAT, errors="coerce")
