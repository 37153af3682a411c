"""The one output schema of the scores, as Arrow tables and pandas frames, and the formula guard.

Every writer (CSV, Parquet, Spark's) gets its columns from here; text a spreadsheet would
execute is neutralised before it is written. A CSV file gives numbers to
``CSV_SIGNIFICANT_DIGITS`` significant digits (:class:`RoundedCsvWriter`); Parquet keeps every
bit. Heavy libraries are imported by the functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

# What a spreadsheet runs as a formula: a cell starting with one of these after any leading
# whitespace, or starting with a tab or a carriage return. A number is data, left as written.
_FORMULA_STARTS = ("=", "+", "-", "@")
_CONTROL_STARTS = ("\t", "\r")
_NUMBER = r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*"
# The significant digits of a decimal number in CSV output: a probability or a contribution to
# a millionth of its size, not the 17 digits that spell out a double.
CSV_SIGNIFICANT_DIGITS = 6


@dataclass(frozen=True)
class OutputColumn:
    """One column of the scores: its name, its numpy type, what it holds."""

    name: str
    dtype: str
    description: str


# dtype "str": one text for the whole table; "category": text per row, from its distinct
# levels (given as an Arrow DictionaryArray, null where empty). Both are dictionary-encoded in
# Arrow.
OUTPUT_SCHEMA = (
    OutputColumn("lead_id", "int64", "the lead's id, as in the input"),
    OutputColumn("conversion_probability", "float64", "probability that the lead converts"),
    OutputColumn("predicted_label", "int8", "1 when the probability is above the threshold"),
    OutputColumn("rank", "int64", "1 for the likeliest lead of the file"),
    OutputColumn("model", "str", "the model's registry version, or its file and SHA-256"),
)


def reason_columns(k: int) -> tuple[OutputColumn, ...]:
    """The columns ``lcp predict --explain k`` adds (``scoring/reasons.py``): the base log-odds,
    then each reason and its contribution."""
    if not k:
        return ()
    columns = [
        OutputColumn(
            "base_log_odds",
            "float64",
            "the model's log-odds before the lead's inputs: with every input's contribution "
            "added, logit(conversion_probability)",
        )
    ]
    for i in range(1, k + 1):
        columns += [
            OutputColumn(
                f"reason_{i}",
                "category",
                f"the input with the #{i} largest effect on the score, as the lead's value "
                "(n_visits=12); empty when its contribution is below predict.reason_floor",
            ),
            OutputColumn(
                f"reason_{i}_contribution",
                "float64",
                f"reason_{i}'s signed contribution to the model's log-odds",
            ),
        ]
    return tuple(columns)


def output_schema(explain: int = 0) -> tuple[OutputColumn, ...]:
    """The output columns: ``OUTPUT_SCHEMA``, then ``explain`` reasons with contributions."""
    return OUTPUT_SCHEMA + reason_columns(explain)


def output_table(
    columns: dict[str, Any], schema: tuple[OutputColumn, ...] = OUTPUT_SCHEMA
) -> pa.Table:
    """An Arrow table of scores in ``schema``; text columns are dictionary-encoded."""
    import numpy as np
    import pyarrow as pa

    arrays: dict[str, Any] = {}
    for column in schema:
        values = columns[column.name]
        if column.dtype == "str":
            size = len(columns[schema[0].name])
            arrays[column.name] = pa.DictionaryArray.from_arrays(
                np.zeros(size, np.int8), pa.array([neutralise_text(str(values))])
            )
        elif column.dtype == "category":
            arrays[column.name] = pa.DictionaryArray.from_arrays(
                values.indices, neutralised_levels(values.dictionary)
            )
        else:
            arrays[column.name] = np.asarray(values, dtype=column.dtype)
    return pa.table(arrays)


def output_frame(
    columns: dict[str, Any], schema: tuple[OutputColumn, ...] = OUTPUT_SCHEMA
) -> pd.DataFrame:
    """The same scores as a pandas frame, in ``schema`` (text as it is)."""
    import numpy as np
    import pandas as pd

    size = len(columns[schema[0].name])
    frame: dict[str, Any] = {}
    for column in schema:
        values = columns[column.name]
        if column.dtype == "str":
            frame[column.name] = np.full(size, values, dtype=object)
        elif column.dtype == "category":
            frame[column.name] = values.to_pandas()
        else:
            frame[column.name] = np.asarray(values, dtype=column.dtype)
    return pd.DataFrame(frame)


def neutralise_text(text: str) -> str:
    """Prefix text a spreadsheet would execute (``=``, ``+``, ``-``, ``@``...) with a quote."""
    import re

    risky = text.startswith(_CONTROL_STARTS) or text.lstrip().startswith(_FORMULA_STARTS)
    return f"'{text}" if risky and not re.fullmatch(_NUMBER, text) else text


def neutralised_levels(levels: Any) -> pa.Array:
    """:func:`neutralise_text` on each text of ``levels``, as an Arrow array. A text that
    starts with a letter, a digit or ``_`` is safe as it is: only the others (few, or none)
    are checked one by one, which keeps a million distinct reasons fast."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    text = levels if isinstance(levels, pa.Array) else pa.array(list(levels), pa.string())
    safe = pc.match_substring_regex(text, r"^[A-Za-z0-9_]").to_numpy(zero_copy_only=False)
    if safe.all():
        return text
    checked = text.to_pylist()
    for position in np.flatnonzero(~safe):
        checked[position] = neutralise_text(str(checked[position]))
    return pa.array(checked, pa.string())


def neutralise_formulas(values: pd.Series) -> pd.Series:
    """:func:`neutralise_text` on every present cell of a column."""
    text = values.astype("str")
    risky = (
        values.notna()
        & (
            text.str.startswith(_CONTROL_STARTS)
            | text.str.lstrip().str.startswith(_FORMULA_STARTS)
        )
        & ~text.str.fullmatch(_NUMBER)
    )
    return text.where(~risky, "'" + text).where(values.notna())


def round_significant(values: Any, digits: int = CSV_SIGNIFICANT_DIGITS) -> Any:
    """``values`` (a numpy array) rounded to ``digits`` significant digits, each the double
    nearest its decimal (so written back as that decimal); 0, NaN and infinities kept."""
    import numpy as np

    values = np.asarray(values, dtype=np.float64)
    rounded = values.copy()
    shown = np.isfinite(values) & (values != 0)
    places = np.zeros(values.shape, dtype=np.int64)
    magnitude = np.floor(np.log10(np.abs(values[shown]))).astype(np.int64)
    places[shown] = digits - 1 - magnitude
    for count in np.unique(places[shown]):
        chosen = shown & (places == count)
        rounded[chosen] = np.round(values[chosen], int(count))
    return rounded


def rounded_floats(table: pa.Table, digits: int = CSV_SIGNIFICANT_DIGITS) -> pa.Table:
    """``table`` with its decimal columns rounded to ``digits`` significant digits."""
    import pyarrow as pa

    for position, column in enumerate(table.schema):
        if pa.types.is_floating(column.type):
            values = table.column(position).combine_chunks()
            missing = values.is_null().to_numpy(zero_copy_only=False)
            numbers = values.to_numpy(zero_copy_only=False)
            array = pa.array(round_significant(numbers, digits), column.type, mask=missing)
            table = table.set_column(position, column, array)
    return table


class RoundedCsvWriter:
    """Arrow's CSV writer (text quoted where needed), numbers to ``CSV_SIGNIFICANT_DIGITS``."""

    def __init__(self, sink: Any, schema: pa.Schema) -> None:
        import pyarrow.csv as pacsv

        options = pacsv.WriteOptions(quoting_style="needed")
        self._writer = pacsv.CSVWriter(sink, schema, write_options=options)

    def write_table(self, table: pa.Table) -> None:
        self._writer.write_table(rounded_floats(table))

    def close(self) -> None:
        self._writer.close()
