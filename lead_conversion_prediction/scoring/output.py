"""The one output schema of the scores, as Arrow tables and pandas frames, and the formula guard.

Every writer (CSV, Parquet, Spark's) gets its columns from here; text a spreadsheet would
execute is neutralised before it is written. Heavy libraries are imported by the functions.
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


@dataclass(frozen=True)
class OutputColumn:
    """One column of the scores: its name, its numpy type, what it holds."""

    name: str
    dtype: str
    description: str


# dtype "str": one text for the whole table; "category": text per row, from a few levels
# (given as a pandas Categorical). Both are dictionary-encoded in Arrow.
OUTPUT_SCHEMA = (
    OutputColumn("lead_id", "int64", "the lead's id, as in the input"),
    OutputColumn("conversion_probability", "float64", "probability that the lead converts"),
    OutputColumn("predicted_label", "int8", "1 when the probability is above the threshold"),
    OutputColumn("rank", "int64", "1 for the likeliest lead of the file"),
    OutputColumn("model", "str", "the model's registry version, or its file and SHA-256"),
)


def reason_columns(k: int) -> tuple[OutputColumn, ...]:
    """The columns ``lcp predict --explain k`` adds: each reason and its contribution."""
    columns: list[OutputColumn] = []
    for i in range(1, k + 1):
        columns += [
            OutputColumn(
                f"reason_{i}", "category", f"the input with the #{i} largest effect on the score"
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
            levels = [neutralise_text(str(level)) for level in values.categories]
            arrays[column.name] = pa.DictionaryArray.from_arrays(
                np.asarray(values.codes), pa.array(levels, pa.string())
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
            frame[column.name] = values
        else:
            frame[column.name] = np.asarray(values, dtype=column.dtype)
    return pd.DataFrame(frame)


def neutralise_text(text: str) -> str:
    """Prefix text a spreadsheet would execute (``=``, ``+``, ``-``, ``@``...) with a quote."""
    import re

    risky = text.startswith(_CONTROL_STARTS) or text.lstrip().startswith(_FORMULA_STARTS)
    return f"'{text}" if risky and not re.fullmatch(_NUMBER, text) else text


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
