"""Spark's scores in order: a global sort best first, ranks, and the rows' lines in the input.

The tagged records of ``scoring/spark.py`` carry each row's ``monotonically_increasing_id()``:
with the row counts of the partitions before it, that gives its position in the input, so a
breach or a rejected row is named by its line. The scored rows are sorted over ranges, never in
one partition, and the output and rejects frames are built in the output schema.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from lead_conversion_prediction.exceptions import DataContractError
from lead_conversion_prediction.scoring.output import (
    neutralise_text,
    output_schema,
    reason_columns,
)
from lead_conversion_prediction.scoring.score import ScoringOptions, scored_columns
from lead_conversion_prediction.scoring.spark import (
    KIND,
    LEAD_ID,
    PARTITION_SHIFT,
    PROBABILITY,
    REASON,
    REJECTED,
    ROW,
    SCORED,
    SPARK_TYPES,
    PartitionReports,
    carried,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

POSITION = "_position"  # monotonically_increasing_id() once the rows are sorted best first
RANK = "_rank"
_POSITION_MASK = (1 << PARTITION_SHIFT) - 1
ROWS_PER_PARTITION = 2_000_000  # in a global sort: tens of megabytes of ids and scores
MIN_ROWS_PER_RANGE = 10_000


def positions(partition_rows: Mapping[int, int], row_ids: Iterable[int]) -> list[int]:
    """The 0-based input positions of row ids, given the rows of each partition."""
    offsets = partition_offsets(partition_rows)
    return [offsets[row >> PARTITION_SHIFT] + (row & _POSITION_MASK) for row in row_ids]


def partition_offsets(partition_rows: Mapping[int, int]) -> list[int]:
    """How many rows precede each partition, by partition number."""
    size = max(partition_rows, default=-1) + 1
    counts = np.array([partition_rows.get(number, 0) for number in range(size)], dtype=np.int64)
    return [int(offset) for offset in np.concatenate([[0], np.cumsum(counts)[:-1]])]


def position_column(row: str, partition_rows: Mapping[int, int]) -> Column:
    """The 0-based position of each row, from its id column ``row``, as a Spark column."""
    from pyspark.sql import functions as sf

    offsets = sf.array(*(sf.lit(offset) for offset in partition_offsets(partition_rows) or [0]))
    partition = sf.shiftright(sf.col(row), PARTITION_SHIFT).cast("int")
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

    partition = sf.shiftright(sf.col(row), PARTITION_SHIFT).alias("partition")
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
            .cast(SPARK_TYPES[column.dtype])
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
