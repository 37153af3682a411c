"""Scoring on Spark: the project's chunk scorer inside ``mapInArrow``, ranks by a global sort.

Every Arrow batch of every partition goes through :func:`score_chunk`, the contract and model
code of local scoring. The partitions emit one table of tagged records: scored rows, rejected
rows with their reason and cells, and one report per batch (its counts, and in ``fail`` mode
the breach that stopped it). Each row carries ``monotonically_increasing_id()``: the
partition in the high bits and the position in it in the low 33. That orders ties as the
input does, and with the row counts of the partitions before a row gives its line.

These functions build Spark plans and read small results; the stage
(``stages/predict_spark.py``) reads the input, runs them and writes the output.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from lead_conversion_prediction.exceptions import DataContractError
from lead_conversion_prediction.scoring.io import RaggedRows
from lead_conversion_prediction.scoring.output import (
    OutputColumn,
    neutralise_formulas,
    neutralise_text,
    output_schema,
    reason_columns,
)
from lead_conversion_prediction.scoring.score import ScoringOptions, ScoringReport, scored_columns

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark import Broadcast
    from pyspark.sql import Column, DataFrame

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
POSITION = "_position"  # monotonically_increasing_id() once the rows are sorted best first
RANK = "_rank"
SCORED, REJECTED, REPORT = 0, 1, 2

_PARTITION_SHIFT = 33  # monotonically_increasing_id(): partition << 33 | position
_POSITION_MASK = (1 << _PARTITION_SHIFT) - 1
ROWS_PER_PARTITION = 2_000_000  # in a global sort: tens of megabytes of ids and scores
MIN_ROWS_PER_RANGE = 10_000
_SPARK_TYPES = {
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
        *(f"{carried(column)} {_SPARK_TYPES[column.dtype]}" for column in reason_columns(explain)),
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
                values |= {
                    f"_{name}": column if name.endswith("_contribution") else column.astype(object)
                    for name, column in scored.reasons.columns().items()
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
        merged.partition_rows[row >> _PARTITION_SHIFT] += counts["rows"]
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
            )
        )
    return merged


def positions(partition_rows: Mapping[int, int], row_ids: Iterable[int]) -> list[int]:
    """The 0-based input positions of row ids, given the rows of each partition."""
    offsets = partition_offsets(partition_rows)
    return [offsets[row >> _PARTITION_SHIFT] + (row & _POSITION_MASK) for row in row_ids]


def partition_offsets(partition_rows: Mapping[int, int]) -> list[int]:
    """How many rows precede each partition, by partition number."""
    size = max(partition_rows, default=-1) + 1
    counts = np.array([partition_rows.get(number, 0) for number in range(size)], dtype=np.int64)
    return [int(offset) for offset in np.concatenate([[0], np.cumsum(counts)[:-1]])]


def position_column(row: str, partition_rows: Mapping[int, int]) -> Column:
    """The 0-based position of each row, from its id column ``row``, as a Spark column."""
    from pyspark.sql import functions as sf

    offsets = sf.array(*(sf.lit(offset) for offset in partition_offsets(partition_rows) or [0]))
    partition = sf.shiftright(sf.col(row), _PARTITION_SHIFT).cast("int")
    return sf.element_at(offsets, partition + 1) + sf.col(row).bitwiseAND(_POSITION_MASK)


def breach_error(merged: PartitionReports, file: str, header: bool) -> DataContractError | None:
    """The error for the first breach of the contract, lines counted in the whole input."""
    if merged.breach is None:
        return None
    breach = merged.breach
    return DataContractError(
        file,
        breach["problem"],
        column=breach["column"],
        rows=positions(merged.partition_rows, breach["rows"]),
        n_bad=breach["n_bad"],
        header=header,
    )


def best_first(tagged: DataFrame, partitions: int, explain: int = 0) -> DataFrame:
    """The scored rows sorted from the highest probability down, ties by lead id then in input
    order (as local scoring ranks), each with its ``POSITION`` id: a global sort over
    ``partitions`` ranges, no single partition. Their ``explain`` reasons come along."""
    from pyspark.sql import functions as sf

    reasons = [carried(column) for column in reason_columns(explain)]
    scored = tagged.where(sf.col(KIND) == SCORED).select(ROW, LEAD_ID, PROBABILITY, *reasons)
    order = (sf.col(PROBABILITY).desc(), sf.col(LEAD_ID).asc(), sf.col(ROW).asc())
    ordered = scored.repartitionByRange(partitions, *order).sortWithinPartitions(*order)
    return ordered.withColumn(POSITION, sf.monotonically_increasing_id())


def range_partitions(rows: int, cores: int) -> int:
    """How many ranges a global sort of ``rows`` rows uses: a few million rows each, and one
    per core as long as each gets ``MIN_ROWS_PER_RANGE`` rows."""
    return max(1, -(-rows // ROWS_PER_PARTITION), min(cores, rows // MIN_ROWS_PER_RANGE))


def partition_sizes(frame: DataFrame, row: str) -> Counter[int]:
    """How many rows each partition of ``frame`` holds, from its id column ``row``."""
    from pyspark.sql import functions as sf

    partition = sf.shiftright(sf.col(row), _PARTITION_SHIFT).alias("partition")
    counted = frame.groupBy(partition).count().collect()
    return Counter({int(record["partition"]): int(record["count"]) for record in counted})


def with_ranks(ordered: DataFrame, sizes: Mapping[int, int]) -> DataFrame:
    """``ordered`` (from :func:`best_first`) with ``RANK``: 1 for its first row."""
    return ordered.withColumn(RANK, position_column(POSITION, sizes) + 1)


def duplicate_ids(tagged: DataFrame) -> int:
    """How many scored rows repeat a lead id that another scored row holds."""
    from pyspark.sql import functions as sf

    scored = tagged.where(sf.col(KIND) == SCORED)
    counts = scored.agg(sf.count("*").alias("rows"), sf.count_distinct(LEAD_ID).alias("ids"))
    record = counts.first()
    return 0 if record is None else int(record["rows"]) - int(record["ids"])


def scores_frame(
    ranked: DataFrame, options: ScoringOptions, provenance: str, partitions: int, kept: int
) -> DataFrame:
    """The scores in the output schema (``explain`` reasons included): best first with
    ``sort``, only the best ``kept`` ranks with a call list (``top``), else every row in input
    order (sorted again, over ``partitions`` ranges)."""
    from pyspark.sql import Column
    from pyspark.sql import functions as sf

    if options.top is not None:
        ranked = ranked.where(sf.col(RANK) <= kept)  # already best first
    elif not options.sort:
        ranked = ranked.repartitionByRange(partitions, ROW).sortWithinPartitions(ROW)
    columns: dict[str, Any] = scored_columns(
        sf.col(LEAD_ID),
        sf.col(PROBABILITY),
        sf.col(RANK),
        options.threshold,
        neutralise_text(provenance),
    )
    columns |= {column.name: sf.col(carried(column)) for column in reason_columns(options.explain)}
    return ranked.select(
        *(
            (value if isinstance(value, Column) else sf.lit(value))
            .cast(_SPARK_TYPES[column.dtype])
            .alias(column.name)
            for column in output_schema(options.explain)
            for value in [columns[column.name]]
        )
    )


def rejects_frame(
    tagged: DataFrame,
    columns: Iterable[str],
    partition_rows: Mapping[int, int],
    header: bool,
    partitions: int,
) -> DataFrame:
    """The rejected rows in input order: their cells, their line (or row), their reason."""
    from pyspark.sql import functions as sf

    position = "line" if header else "row"
    first = 2 if header else 1
    rejected = tagged.where(sf.col(KIND) == REJECTED)
    rejected = rejected.repartitionByRange(partitions, ROW).sortWithinPartitions(ROW)
    return rejected.select(
        *(sf.col(f"`{name}`") for name in columns),
        (position_column(ROW, partition_rows) + first).alias(position),
        sf.col(REASON).alias("reason"),
    )


def report_records(tagged: DataFrame) -> list[tuple[int, str]]:
    """The batch reports of the tagged records, as ``(first row id, report JSON)``."""
    from pyspark.sql import functions as sf

    reports = tagged.where(sf.col(KIND) == REPORT).select(ROW, REPORT_JSON).collect()
    return [(int(record[ROW]), str(record[REPORT_JSON])) for record in reports]
