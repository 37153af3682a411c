"""Scoring on Spark: the project's chunk scorer inside ``mapInArrow``, one report per batch.

Every Arrow batch of every partition goes through :func:`score_chunk`, the contract and model
code of local scoring. The partitions emit one table of tagged records: scored rows, rejected
rows with their reason and cells, and one report per batch (its counts, and in ``fail`` mode
the breach that stopped it). Each row carries ``monotonically_increasing_id()``: the
partition in the high bits and the position in it in the low 33. That orders ties as the
input does, and with the row counts of the partitions before a row gives its line
(``scoring/spark_ranks.py``).

These functions build Spark plans and read small results; the stage
(``stages/predict_spark.py``) reads the input (``scoring/spark_input.py``), runs them and
writes the output.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from lead_conversion_prediction.exceptions import DataContractError
from lead_conversion_prediction.monitoring.counts import BatchCounts
from lead_conversion_prediction.scoring.io import RaggedRows
from lead_conversion_prediction.scoring.output import (
    OutputColumn,
    neutralise_formulas,
    reason_columns,
)
from lead_conversion_prediction.scoring.score import ScoringOptions, ScoringReport

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark import Broadcast
    from pyspark.sql import DataFrame

    from lead_conversion_prediction.scoring.model import LoadedModel

# The text of a CSV row with more or fewer fields than the header (Spark's corrupt record).
MALFORMED = "_lcp_malformed_row"
# Columns of the tagged records (the input's own columns keep their names).
KIND = "_kind"  # one of SCORED, REJECTED, REPORT
ROW = "_row"  # monotonically_increasing_id() of the input row (of its batch's first, in a report)
LEAD_ID = "_lead_id"
PROBABILITY = "_probability"
REASON = "_reason"
REPORT_JSON = "_report"
SCORED, REJECTED, REPORT = 0, 1, 2

PARTITION_SHIFT = 33  # monotonically_increasing_id(): partition << 33 | position
SPARK_TYPES = {
    "int64": "bigint",
    "float64": "double",
    "int8": "tinyint",
    "str": "string",
    "category": "string",
}


def tagged_schema(columns: Iterable[str], explain: int = 0) -> str:
    """The DDL schema of the tagged records: ``explain`` reasons of scored rows, then the
    input's ``columns`` (as text) for rejected rows."""
    fixed = [
        f"{KIND} tinyint",
        f"{ROW} bigint",
        f"{LEAD_ID} bigint",
        f"{PROBABILITY} double",
        f"{REASON} string",
        f"{REPORT_JSON} string",
        *(f"{carried(column)} {SPARK_TYPES[column.dtype]}" for column in reason_columns(explain)),
    ]
    return ", ".join([*fixed, *(f"`{name}` string" for name in columns)])


def carried(column: OutputColumn) -> str:
    """The tagged records' name of an output column they carry (the reasons)."""
    return f"_{column.name}"


def with_row_ids(frame: DataFrame) -> DataFrame:
    """``frame`` with the ``ROW`` id: partition and position, increasing in input order."""
    from pyspark.sql import functions as sf

    return frame.withColumn(ROW, sf.monotonically_increasing_id())


def missing_cells_as_null(table: pa.Table) -> pa.Table:
    """CSV cells read as text, with the contract's missing cells (``NA``, ``nan``...) as nulls,
    as the local reader gives them: Spark's CSV reader knows one such text only."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from lead_conversion_prediction.schema import MISSING_CELLS

    for position, column in enumerate(table.columns):
        missing = pc.is_in(column, value_set=pa.array(MISSING_CELLS, column.type))
        table = table.set_column(
            position,
            table.field(position),
            pc.if_else(missing, pa.nulls(len(column), column.type), column),
        )
    return table


def _cut_at_a_quoted_line_break(text: str) -> bool:
    """Whether a CSV line is part of a record that Spark, reading one line per row, cut at a
    line break inside quotes: it ends inside a quoted field (``""`` inside quotes being one
    quote), or it closes one that an earlier line opened."""
    ends_inside = _csv_problem(text)
    return "unexpected end of data" in ends_inside or not _csv_problem(f'"{text}')


def _csv_problem(text: str) -> str:
    """What is wrong with a CSV line read by RFC 4180's quoting rules; empty if nothing."""
    import csv

    try:
        next(csv.reader([text], strict=True), None)
    except csv.Error as error:
        return str(error)
    return ""


@dataclass(frozen=True)
class PartitionScorer:
    """The function ``mapInArrow`` runs on each partition: batches of rows in, tagged out.

    ``columns`` are the input columns, in order, that batches hold besides ``ROW``;
    ``large_text`` says whether Spark exchanges text as Arrow ``large_string``. A CSV input's
    batches also hold ``MALFORMED``: rows with another number of fields than the header's
    ``header_fields`` are rejected whole, or stop the run, as local scoring does.
    """

    model: Broadcast[LoadedModel]
    options: ScoringOptions
    file: str
    columns: tuple[str, ...]
    large_text: bool = False
    header_fields: int | None = None

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        from lead_conversion_prediction.scoring.score import score_chunk
        from lead_conversion_prediction.utils.logging import silence_pyspark_pandas_warning

        silence_pyspark_pandas_warning()  # in this Python worker
        loaded = self.model.value
        for batch in batches:
            every_row = batch.column(ROW).to_numpy()
            table = pa.Table.from_batches([batch]).drop_columns([ROW])
            ragged, whole = self._ragged(table, every_row)
            if self.header_fields is not None:
                table = missing_cells_as_null(table.drop_columns([MALFORMED]))
            rows = every_row[whole]
            chunk = (table if whole.all() else table.filter(pa.array(whole))).to_pandas()
            try:
                scored = score_chunk(loaded, chunk, self.options, self.file, 0, header=False)
            except DataContractError as error:  # fail mode: the first breach stops the run
                breach = _breach(error, rows)
                if ragged.before(breach["rows"]):
                    breach = _breach(ragged.error(self.file))
                yield self._report(every_row, ScoringReport(), len(every_row), breach)
                return
            if ragged.records and not self.options.skip_bad_rows:
                breach = _breach(ragged.error(self.file))
                yield self._report(every_row, ScoringReport(), len(every_row), breach)
                return
            if ragged.records:
                reasons = ragged.reasons()
                yield self._records(
                    REJECTED, np.asarray(ragged.records), {REASON: np.array(reasons, dtype=object)}
                )
                scored.report.reject(reasons)
            kept = np.ones(len(chunk), dtype=bool)
            if scored.rejected is not None:
                kept[scored.rejected.index.to_numpy()] = False
                yield self._rejected(rows[~kept], scored.rejected)
            values = {LEAD_ID: scored.ids, PROBABILITY: scored.probability}
            if scored.reasons is not None:
                explained = scored.reasons.columns()
                values |= {
                    carried(column): explained[column.name]
                    if column.dtype == "float64"
                    else explained[column.name].dictionary_decode().to_numpy(False)  # None: empty
                    for column in reason_columns(self.options.explain)
                }
            yield self._records(SCORED, rows[kept], values)
            yield self._report(every_row, scored.report, len(every_row))

    def _ragged(self, table: pa.Table, rows: np.ndarray) -> tuple[RaggedRows, np.ndarray]:
        """The batch's rows with another number of fields than the header (their ids as
        ``records``), and the mask of the others."""
        import csv

        ragged = RaggedRows(expected=self.header_fields or 0)
        if self.header_fields is None:
            return ragged, np.ones(len(rows), dtype=bool)
        texts = table.column(MALFORMED).to_numpy(zero_copy_only=False)
        malformed = np.array([text is not None for text in texts], dtype=bool)
        for text, row in zip(texts[malformed], rows[malformed], strict=True):
            ragged.records.append(int(row))
            ragged.fields.append(len(next(csv.reader([text]), [])))
            ragged.cut.append(_cut_at_a_quoted_line_break(text))
        return ragged, ~malformed

    def _records(self, kind: int, rows: np.ndarray, values: Mapping[str, Any]) -> pa.RecordBatch:
        """Tagged records of one kind: the given columns filled, the others empty."""
        import pyarrow as pa

        schema = self._arrow_schema()
        arrays = []
        for name, kind_of in zip(schema.names, schema.types, strict=True):
            if name == KIND:
                arrays.append(pa.array(np.full(len(rows), kind, dtype=np.int8)))
            elif name == ROW:
                arrays.append(pa.array(rows, pa.int64()))
            elif name in values:
                arrays.append(pa.array(values[name], kind_of, from_pandas=True))
            else:
                arrays.append(pa.nulls(len(rows), kind_of))
        return pa.RecordBatch.from_arrays(arrays, schema=schema)

    def _rejected(self, rows: np.ndarray, rejected: Any) -> pa.RecordBatch:
        """Rejected rows: their reason, and their cells as text a spreadsheet will not run."""
        cells = {
            name: neutralise_formulas(rejected[name].astype("object")).to_numpy(dtype=object)
            for name in self.columns
        }
        return self._records(
            REJECTED, rows, {REASON: rejected["reason"].to_numpy(dtype=object), **cells}
        )

    def _report(
        self,
        rows: np.ndarray,
        report: ScoringReport,
        size: int,
        breach: dict[str, Any] | None = None,
    ) -> pa.RecordBatch:
        """One batch's counts, under the id of its first row."""
        payload = json.dumps({**report_counts(report), "rows": size, "breach": breach})
        return self._records(REPORT, rows[:1], {REPORT_JSON: [payload]})

    def _arrow_schema(self) -> pa.Schema:
        import pyarrow as pa

        text = pa.large_string() if self.large_text else pa.string()
        fixed = [
            (KIND, pa.int8()),
            (ROW, pa.int64()),
            (LEAD_ID, pa.int64()),
            (PROBABILITY, pa.float64()),
            (REASON, text),
            (REPORT_JSON, text),
        ]
        reasons = [
            (carried(column), pa.float64() if column.dtype == "float64" else text)
            for column in reason_columns(self.options.explain)
        ]
        return pa.schema([*fixed, *reasons, *((name, text) for name in self.columns)])


def _breach(error: DataContractError, ids: np.ndarray | None = None) -> dict[str, Any]:
    """A breach of the contract as a batch report carries it: its rows as row ids (``ids``
    by position in the batch, or already ids)."""
    rows = [int(row if ids is None else ids[row]) for row in error.rows]
    return {"column": error.column, "problem": error.problem, "rows": rows, "n_bad": error.n_bad}


def score_partitions(frame: DataFrame, scorer: PartitionScorer) -> DataFrame:
    """Tagged records of every row of ``frame`` (its ``scorer.columns`` and ``ROW``)."""
    schema = tagged_schema(scorer.columns, scorer.options.explain)
    malformed = [MALFORMED] if scorer.header_fields is not None else []
    return frame.select(*scorer.columns, *malformed, ROW).mapInArrow(scorer, schema)


def report_counts(report: ScoringReport) -> dict[str, Any]:
    """The counts of a report, as JSON-ready values."""
    return {
        "rows_scored": report.rows_scored,
        "rows_rejected": report.rows_rejected,
        "rejected_for": dict(report.rejected_for),
        "missing": dict(report.missing),
        "unseen": dict(report.unseen),
        "other_sources": dict(report.other_sources),
        "drift": None if report.drift is None else report.drift.model_dump(mode="json"),
    }


@dataclass
class PartitionReports:
    """The batch reports of a whole input, merged: the counts, the rows of each input
    partition, and the first breach of the contract (``fail`` mode) in input order."""

    report: ScoringReport = field(default_factory=ScoringReport)
    partition_rows: Counter[int] = field(default_factory=Counter)
    breach: dict[str, Any] | None = None

    @property
    def rows(self) -> int:
        return sum(self.partition_rows.values())


def merge_reports(records: Iterable[tuple[int, str]]) -> PartitionReports:
    """Merge ``(first row id, report JSON)`` records in input order."""
    merged = PartitionReports()
    for row, payload in sorted(records):
        counts = json.loads(payload)
        merged.partition_rows[row >> PARTITION_SHIFT] += counts["rows"]
        if counts["breach"] is not None and merged.breach is None:
            merged.breach = counts["breach"]
        merged.report.merge(
            ScoringReport(
                rows_scored=counts["rows_scored"],
                rows_rejected=counts["rows_rejected"],
                rejected_for=Counter(counts["rejected_for"]),
                missing=Counter(counts["missing"]),
                unseen=Counter(counts["unseen"]),
                other_sources=Counter(counts["other_sources"]),
                drift=drift_counts(counts["drift"]),
            )
        )
    return merged


def drift_counts(payload: dict[str, Any] | None) -> BatchCounts | None:
    """A batch report's drift counts (``--monitor``), or None."""
    return None if payload is None else BatchCounts.model_validate(payload)


def report_records(tagged: DataFrame) -> list[tuple[int, str]]:
    """The batch reports of the tagged records, as ``(first row id, report JSON)``."""
    from pyspark.sql import functions as sf

    reports = tagged.where(sf.col(KIND) == REPORT).select(ROW, REPORT_JSON).collect()
    return [(int(record[ROW]), str(record[REPORT_JSON])) for record in reports]


def check_explain(loaded: LoadedModel, explain: int) -> None:
    """Explain one made-up lead on the driver: an ``--explain`` beyond the model's inputs is a
    one-line error here, not a failed task on every executor."""
    import numpy as np
    import pandas as pd

    from lead_conversion_prediction.schema import MODEL_INPUT_COLUMNS
    from lead_conversion_prediction.scoring.reasons import Reasons

    Reasons.of(
        loaded.model, pd.DataFrame({name: [np.nan] for name in MODEL_INPUT_COLUMNS}), explain
    )
