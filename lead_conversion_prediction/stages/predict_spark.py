"""Scoring a table of raw leads on Spark (``lcp predict --engine spark``): read, score, write.

The input (CSV or Parquet, on any filesystem the Spark cluster reads: ``scoring/spark_input.py``)
is scored partition by partition with the chunk scorer of local scoring (``scoring/spark.py``),
then sorted and ranked (``scoring/spark_ranks.py``). The scores are written as Parquet to a
hidden folder beside the output, rejected rows in its ``_rejects/``, and the folder is renamed
to the output at the end: a failure leaves no output behind, and an existing output is replaced
only when asked. PySpark is imported only by these modules, on demand
(``scoring/spark_session.py``).
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING

from lead_conversion_prediction.exceptions import ConfigError, DataContractError
from lead_conversion_prediction.scoring.io import InputFormat
from lead_conversion_prediction.scoring.model import LoadedModel, use_cores
from lead_conversion_prediction.scoring.score import ScoringOptions, ScoringReport
from lead_conversion_prediction.scoring.spark import (
    MALFORMED,
    PartitionScorer,
    check_explain,
    merge_reports,
    report_records,
    score_partitions,
    with_row_ids,
)
from lead_conversion_prediction.scoring.spark_input import (
    READ_COLUMNS,
    input_format_of,
    read_leads,
    reading_input,
)
from lead_conversion_prediction.scoring.spark_ranks import (
    POSITION,
    best_first,
    breach_error,
    duplicate_ids,
    partition_sizes,
    range_partitions,
    rejects_frame,
    scores_frame,
    with_ranks,
)
from lead_conversion_prediction.scoring.spark_session import HadoopPath, large_text

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

REJECTS_FOLDER = "_rejects"  # inside the output: Spark and Arrow readers skip names with _
_CSV_COLUMN_PRUNING = "spark.sql.csv.parser.columnPruning.enabled"


def score_dataset(
    spark: SparkSession,
    loaded: LoadedModel,
    input_path: str,
    output_path: str,
    options: ScoringOptions,
    input_format: InputFormat | None = None,
    overwrite: bool = False,
) -> ScoringReport:
    """Score every row of ``input_path`` into the Parquet folder ``output_path``.

    Rows that break the contract stop the run with an error naming the input, the column and
    up to five lines (rows, for Parquet or several files), or (``skip_bad_rows``) go to
    ``<output>/_rejects/`` as CSV with their line and reason.
    """
    started = time.perf_counter()
    output = HadoopPath(spark, output_path)
    if output.exists() and not overwrite:
        raise ConfigError(f"--output {output_path}: exists; give --overwrite to replace it")
    source_format = input_format_of(spark, input_path, input_format)
    frame = read_leads(spark, input_path, source_format)
    # Lines are counted in one CSV file; otherwise rows, in the order Spark reads them.
    header = source_format == InputFormat.csv and len(frame.inputFiles()) == 1
    columns = tuple(name for name in frame.columns if name in READ_COLUMNS)
    if options.explain:
        check_explain(loaded, options.explain)
    use_cores(loaded.model, 1)  # a Spark task has one core
    model = spark.sparkContext.broadcast(loaded)
    header_fields = len(frame.columns) - 1 if MALFORMED in frame.columns else None
    scorer = PartitionScorer(model, options, input_path, columns, large_text(spark), header_fields)
    temporary = output.sibling(f".{output.name}.{uuid.uuid4().hex[:12]}.tmp")
    cached: list[DataFrame] = []
    # A CSV row is parsed whole, so that one with more or fewer fields is told apart (Spark
    # otherwise reads only the fields it is asked for); the session's setting comes back after.
    pruning = spark.conf.get(_CSV_COLUMN_PRUNING)
    spark.conf.set(_CSV_COLUMN_PRUNING, "false")
    try:
        tagged = score_partitions(with_row_ids(frame), scorer).persist()
        cached.append(tagged)
        merged = merge_reports(reading_input(report_records, tagged, input_path))
        error = breach_error(merged, input_path, header)
        if error is not None:
            raise error
        if merged.rows == 0:
            raise DataContractError(input_path, "file has a header but no data rows")
        report = merged.report
        report.duplicate_ids = duplicate_ids(tagged)
        cores = spark.sparkContext.defaultParallelism
        partitions = range_partitions(report.rows_scored, cores)
        ordered = best_first(tagged, partitions, options.explain).persist()
        cached.append(ordered)
        ranked = with_ranks(ordered, partition_sizes(ordered, POSITION))
        kept = report.rows_scored if options.top is None else options.top.rows(report.rows_scored)
        scores = scores_frame(ranked, options, loaded.provenance, partitions, kept)
        scores.write.parquet(temporary.uri)
        if report.rows_rejected:
            rejects = rejects_frame(
                tagged,
                columns,
                merged.partition_rows,
                header,
                range_partitions(report.rows_rejected, cores),
            )
            # Every cell quoted, as locally: a lone carriage return stays inside its cell.
            rejects.write.csv(
                f"{temporary.uri}/{REJECTS_FOLDER}", header=True, escape='"', quoteAll=True
            )
        temporary.publish(output, overwrite)
    finally:
        temporary.delete()
        for frame_ in cached:
            frame_.unpersist()
        model.unpersist()
        if pruning is None:
            spark.conf.unset(_CSV_COLUMN_PRUNING)
        else:
            spark.conf.set(_CSV_COLUMN_PRUNING, pruning)
    report.seconds = time.perf_counter() - started
    return report
