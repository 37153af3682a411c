"""Breaches of the data contract: the rows of one column that break it in one way, and why.

A breach becomes a one-line :class:`DataContractError` (training) or a reason per rejected row
(scoring); either shows the offending cell as it was written.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from lead_conversion_prediction.exceptions import DataContractError


@dataclass(frozen=True)
class Breach:
    """Rows of one column that break the contract in one way.

    ``rows`` are positions in the checked frame; ``value`` is the first offending cell and
    ``values``, when the problem is with a value, each row's own.
    """

    column: str
    problem: str
    rows: np.ndarray
    value: object = None
    values: np.ndarray | None = None

    @property
    def reason(self) -> str:
        shown = "" if self.value is None else f"value {_show(self.value)} "
        return f"column '{self.column}': {shown}{self.problem}"

    def row_reasons(self) -> np.ndarray:
        """The reason of each row, naming its own cell: the same whatever else was checked."""
        if self.values is None:
            return np.full(len(self.rows), self.reason, dtype=object)
        prefix, suffix = f"column '{self.column}': value ", f" {self.problem}"
        return np.array([prefix + _show(value) + suffix for value in self.values], dtype=object)

    def error(self, file: Path | str, offset: int = 0, header: bool = True) -> DataContractError:
        """The one-line error for this breach; ``offset`` rows precede the checked frame."""
        shown = "" if self.value is None else f"value {_show(self.value)} "
        return DataContractError(
            file,
            f"{shown}{self.problem}",
            column=self.column,
            rows=[offset + int(row) for row in self.rows[:5]],
            n_bad=len(self.rows),
            header=header,
        )


def pandera_breaches(
    failures: pd.DataFrame, typed: pd.DataFrame, parsed: list[Breach]
) -> list[Breach]:
    """Group pandera's failure table by column and check, skipping cells already reported."""
    already = {breach.column for breach in parsed}
    breaches = []
    for (column, check), group in failures.groupby(["column", "check"], sort=False):
        if check == "column_in_dataframe" or (column in already and check == "not_nullable"):
            continue
        labels = pd.Index(group["index"].dropna().unique())
        positions = np.sort(typed.index.get_indexer(labels))
        if not len(positions):
            continue
        if check == "not_nullable":
            breaches.append(Breach(str(column), "is empty but required", positions))
        else:
            cells = typed[column].iloc[positions].to_numpy(dtype=object)
            breaches.append(Breach(str(column), str(check), positions, cells[0], cells))
    return breaches


def _show(value: object) -> str:
    """Render a cell for a message: text quoted, numbers as written (2.0 -> 2, whole numbers
    in full, decimals from Spark's unsigned integers too)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | str):
        return repr(value)
    if isinstance(value, Decimal) and value.is_finite():
        value = int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        value = int(value)
    if isinstance(value, int | float):
        return str(value)
    return repr(value)
