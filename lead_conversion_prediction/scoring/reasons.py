"""Each scored lead's reasons (``lcp predict --explain K``): the inputs that moved its score most,
as the lead's own values, with their contributions and the base they add up from.

A reason reads ``n_visits=12``, ``customer_group=4`` or ``onboarding=true`` (``missing`` for an
empty input, which the model imputes), beside its signed contribution to the log-odds. The
contributions come from ``modeling/explain.py``: ``base_log_odds`` plus every input's
contribution is ``logit(conversion_probability)``, so with ``--explain 5`` (every input) a user
can check the sum. A reason whose contribution is smaller than the floor (``predict.
reason_floor`` in ``params.yaml``) is left empty, so that noise never reads as a reason; its
contribution is still given, and the sum still adds up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lead_conversion_prediction.schema import BOOLEAN_FEATURES

if TYPE_CHECKING:
    import pyarrow as pa

    from lead_conversion_prediction.modeling.explain import Contributions


@dataclass(frozen=True)
class Reasons:
    """Each row's ``k`` strongest reasons: positions in ``inputs``, contributions, the lead's
    own values of those inputs; and each row's base log-odds."""

    inputs: tuple[str, ...]
    codes: np.ndarray  # (rows, k) int8
    contributions: np.ndarray  # (rows, k) float64, log-odds
    values: np.ndarray  # (rows, k) float64, as the lead gives them (NaN: missing)
    base: np.ndarray  # (rows,) float64, log-odds
    floor: float = 0.0  # a reason whose |contribution| is below this is left empty

    @classmethod
    def of(cls, model: Any, X: pd.DataFrame, k: int, floor: float = 0.0) -> Reasons:
        """The reasons of the rows of ``X`` (raw inputs as float64) under the lead model."""
        from lead_conversion_prediction.modeling.explain import explain

        return cls.explained(explain(model, X), X, k, floor)

    @classmethod
    def explained(
        cls, contributions: Contributions, X: pd.DataFrame, k: int, floor: float = 0.0
    ) -> Reasons:
        """The ``k`` strongest of the rows' ``contributions``; ``X`` holds their raw inputs."""
        from lead_conversion_prediction.modeling.explain import top_reasons

        codes, values = top_reasons(contributions.values, k)
        own = X.loc[:, list(contributions.inputs)].to_numpy(np.float64)
        picked = np.take_along_axis(own, codes.astype(np.intp), axis=1)
        return cls(contributions.inputs, codes, values, picked, contributions.base, floor)

    def records(self) -> np.ndarray:
        """The rows as records of :func:`record_type` (to keep them in a file meanwhile)."""
        records = np.empty(len(self.base), dtype=record_type(self.codes.shape[1]))
        records["base"] = self.base
        records["codes"] = self.codes
        records["contributions"] = self.contributions
        records["values"] = self.values
        return records

    @classmethod
    def from_records(cls, inputs: tuple[str, ...], records: np.ndarray, floor: float) -> Reasons:
        """The reasons of rows kept as :meth:`records`."""
        return cls(
            inputs,
            records["codes"],
            records["contributions"],
            records["values"],
            records["base"],
            floor,
        )

    def columns(self, rows: Any = slice(None)) -> dict[str, Any]:
        """The reason columns of the output (``scoring.output.reason_columns``) for ``rows``."""
        codes, contributions = self.codes[rows], self.contributions[rows]
        values = self.values[rows]
        columns: dict[str, Any] = {"base_log_odds": self.base[rows]}
        for i in range(codes.shape[1]):
            shown = np.abs(contributions[:, i]) >= self.floor
            columns[f"reason_{i + 1}"] = reason_labels(
                self.inputs, codes[:, i], values[:, i], shown
            )
            columns[f"reason_{i + 1}_contribution"] = contributions[:, i]
        return columns


def record_type(k: int) -> np.dtype[Any]:
    """One row's reasons as a record: its base, then its ``k`` reasons."""
    reasons = [("codes", "i1", (k,)), ("contributions", "f8", (k,)), ("values", "f8", (k,))]
    return np.dtype([("base", "f8"), *reasons])


def reason_labels(
    inputs: tuple[str, ...], codes: np.ndarray, values: np.ndarray, shown: np.ndarray
) -> pa.DictionaryArray:
    """``input=value`` for each row, empty (null) where not ``shown``: an Arrow dictionary of
    the distinct pairs, each formatted once (the shortest text that reads back as the value:
    ``12``, ``134.7``; ``true`` or ``false`` for a boolean input; ``missing``)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = np.asarray(values, dtype=np.float64) + 0.0  # -0.0 reads as 0
    levels: list[pa.Array] = [pa.array([], pa.string())]
    count = 0
    labels = np.full(len(codes), -1, dtype=np.int32)
    for position, name in enumerate(inputs):
        rows = np.flatnonzero((codes == position) & shown)
        if not len(rows):
            continue
        distinct, inverse = np.unique(values[rows], return_inverse=True)  # one NaN at most
        labels[rows] = count + inverse.ravel()
        count += len(distinct)
        text = pc.cast(pa.array(distinct), pa.string())
        if name in BOOLEAN_FEATURES:
            text = pc.if_else(pa.array(distinct == 1), "true", text)
            text = pc.if_else(pa.array(distinct == 0), "false", text)
        text = pc.if_else(pa.array(np.isnan(distinct)), "missing", text)
        levels.append(pc.binary_join_element_wise(f"{name}=", text, ""))
    return pa.DictionaryArray.from_arrays(
        pa.array(labels, mask=labels < 0), pa.concat_arrays(levels)
    )


def value_text(name: str, value: float) -> str:
    """How a reason shows a lead's value: ``12``, ``134.7``, ``true``, or ``missing``."""
    label = reason_labels((name,), np.zeros(1, np.int8), np.array([value]), np.ones(1, bool))
    return str(label[0].as_py()).split("=", 1)[1]
