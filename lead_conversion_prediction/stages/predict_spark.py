"""Scoring a table of raw leads on Spark (``lcp predict --engine spark``): read, score, write.

The input (CSV or Parquet, on any filesystem the Spark cluster reads) is scored partition by
partition with the chunk scorer of local scoring (``scoring/spark.py``). The scores are written
as Parquet to a hidden folder beside the output, rejected rows in its ``_rejects/``, and the
folder is renamed to the output at the end: a failure leaves no output behind, and an existing
output is replaced only when asked. PySpark is imported here and only here, on demand.
"""

from __future__ import annotations

import os
import re
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from loguru import logger

from lead_conversion_prediction.exceptions import (
    ArtifactError,
    ConfigError,
    DataContractError,
    InputNotFoundError,
)
from lead_conversion_prediction.schema import SCORING_COLUMNS, check_columns
from lead_conversion_prediction.scoring.io import InputFormat
from lead_conversion_prediction.scoring.model import LoadedModel, use_cores
from lead_conversion_prediction.scoring.score import ScoringOptions, ScoringReport
from lead_conversion_prediction.scoring.spark import (
    MALFORMED,
    POSITION,
    PartitionScorer,
    best_first,
    breach_error,
    duplicate_ids,
    merge_reports,
    partition_sizes,
    range_partitions,
    rejects_frame,
    report_records,
    score_partitions,
    scores_frame,
    with_ranks,
    with_row_ids,
)
from lead_conversion_prediction.utils.logging import silence_pyspark_pandas_warning

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

REJECTS_FOLDER = "_rejects"  # inside the output: Spark and Arrow readers skip names with _
_READ_COLUMNS = (*SCORING_COLUMNS, "source", "date_part")
_CSV_COLUMN_PRUNING = "spark.sql.csv.parser.columnPruning.enabled"
_CSV_NAMES = (".csv", ".csv.gz")
_PARQUET_NAMES = (".parquet", ".pq")


@contextmanager
def spark_session(master: str, batch_rows: int) -> Iterator[SparkSession]:
    """The Spark session to score in: spark-submit's or Databricks' when there is one, else a
    new one on ``master`` (stopped at the end), quiet and bound to this machine when local.

    Arrow batches hold ``batch_rows`` rows: the chunk size of local scoring.
    """
    silence_pyspark_pandas_warning()
    try:
        from pyspark.errors import PySparkException
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError("--engine spark needs PySpark: pip install -e '.[spark]'") from None
    submitted = any(
        name in os.environ for name in ("PYSPARK_GATEWAY_PORT", "DATABRICKS_RUNTIME_VERSION")
    )
    own = not submitted and SparkSession.getActiveSession() is None
    builder: Any = SparkSession.builder
    if own:
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = (
            builder.master(master)
            .appName("lcp predict")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={_log4j()}")
        )
        if master.startswith("local"):
            builder = builder.config("spark.driver.host", "127.0.0.1").config(
                "spark.driver.bindAddress", "127.0.0.1"
            )
    try:
        spark: SparkSession = builder.getOrCreate()
    except PySparkException as error:
        raise ConfigError(
            f"--spark-master {master}: Spark did not start ({_first_line(error)}); "
            "it needs Java 17 (java on PATH or JAVA_HOME)"
        ) from None
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(batch_rows))
    try:
        yield spark
    finally:
        if own:
            spark.stop()


def _log4j() -> str:
    """Spark's log configuration for a session lcp starts: errors only, on stderr."""
    return str(files("lead_conversion_prediction.scoring").joinpath("log4j2.properties"))


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
    output = _HadoopPath(spark, output_path)
    if output.exists() and not overwrite:
        raise ConfigError(f"--output {output_path}: exists; give --overwrite to replace it")
    source_format = input_format_of(spark, input_path, input_format)
    frame = read_leads(spark, input_path, source_format)
    # Lines are counted in one CSV file; otherwise rows, in the order Spark reads them.
    header = source_format == InputFormat.csv and len(frame.inputFiles()) == 1
    columns = tuple(name for name in frame.columns if name in _READ_COLUMNS)
    if options.explain:
        check_explain(loaded, options.explain)
    use_cores(loaded.model, 1)  # a Spark task has one core
    model = spark.sparkContext.broadcast(loaded)
    header_fields = len(frame.columns) - 1 if MALFORMED in frame.columns else None
    scorer = PartitionScorer(
        model, options, input_path, columns, _large_text(spark), header_fields
    )
    temporary = output.sibling(f".{output.name}.{uuid.uuid4().hex[:12]}.tmp")
    cached: list[DataFrame] = []
    # A CSV row is parsed whole, so that one with more or fewer fields is told apart (Spark
    # otherwise reads only the fields it is asked for); the session's setting comes back after.
    pruning = spark.conf.get(_CSV_COLUMN_PRUNING)
    spark.conf.set(_CSV_COLUMN_PRUNING, "false")
    try:
        tagged = score_partitions(with_row_ids(frame), scorer).persist()
        cached.append(tagged)
        merged = merge_reports(_reading(report_records, tagged, input_path))
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
            rejects.write.csv(f"{temporary.uri}/{REJECTS_FOLDER}", header=True, escape='"')
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


def check_explain(loaded: LoadedModel, explain: int) -> None:
    """Explain one made-up lead on the driver: an ``--explain`` beyond the model's inputs is a
    one-line error here, not a failed task on every executor."""
    import numpy as np
    import pandas as pd

    from lead_conversion_prediction.schema import MODEL_INPUT_COLUMNS
    from lead_conversion_prediction.scoring.score import Reasons

    Reasons.of(
        loaded.model, pd.DataFrame({name: [np.nan] for name in MODEL_INPUT_COLUMNS}), explain
    )


def input_format_of(spark: SparkSession, location: str, given: InputFormat | None) -> InputFormat:
    """The format of the input: ``given``, else the extension of the file, or of the files of
    the folder; a missing input or another format is a one-line error."""
    source = _HadoopPath(spark, location)
    names = source.file_names()
    if names is None:
        raise InputNotFoundError(location)
    if given is not None:
        return given
    lowered = {name.lower() for name in names}
    if lowered and all(name.endswith(_PARQUET_NAMES) for name in lowered):
        return InputFormat.parquet
    if lowered and all(name.endswith(_CSV_NAMES) for name in lowered):
        return InputFormat.csv
    raise DataContractError(
        location,
        "not CSV or Parquet (a .csv, .parquet or .pq file, or a folder of them); "
        "give --input-format to read it as one",
    )


def read_leads(spark: SparkSession, location: str, source_format: InputFormat) -> DataFrame:
    """The input as a Spark frame: CSV cells as text (the contract parses them), Parquet typed.

    Its columns are checked here; its rows when they are scored.
    """
    reader = spark.read
    try:
        if source_format == InputFormat.csv:
            # escape: a quote inside quotes is doubled (RFC 4180, pandas, Arrow); Spark's default
            # backslash would read "C:\" as an open quote and "a\",b" as one field.
            reader = reader.option("escape", '"')
            first = reader.csv(location, header=True, inferSchema=False)
            names, several = first.columns, len(first.inputFiles()) > 1
        else:
            frame = reader.parquet(location)
            names = frame.columns
    except _spark_error_types() as error:
        raise DataContractError(
            location, f"cannot be read as {source_format.value} ({_cause(error)})"
        ) from None
    if not names:
        raise DataContractError(location, "file is empty (no header row)")
    written = header_as_written(names)
    check_columns(written, location, SCORING_COLUMNS)
    if source_format == InputFormat.parquet:
        return frame
    # enforceSchema on, Spark reads the fields of every file of a folder by position, under the
    # first file's header; off, a file whose header differs fails its task. Spark renames an
    # empty or repeated name, then finds every header different from its own names: one file
    # has no other to differ from, and a folder of such files is refused.
    renamed = written != names
    if renamed and several:
        raise DataContractError(
            location,
            f"{_renamed(names, written)}; Spark cannot then tell whether the files of a folder "
            "share one header: name every column once, or score the files one by one",
        )
    # Every header field as text, and a row with more or fewer fields kept whole in MALFORMED:
    # Spark would otherwise read the fields it is asked for by position, and score a shifted row.
    from pyspark.sql.types import StringType, StructField, StructType

    text = StructType([StructField(name, StringType()) for name in [*names, MALFORMED]])
    try:
        return reader.schema(text).csv(
            location,
            header=True,
            enforceSchema=renamed,
            mode="PERMISSIVE",
            columnNameOfCorruptRecord=MALFORMED,
        )
    except _spark_error_types() as error:
        raise DataContractError(location, f"cannot be read as csv ({_cause(error)})") from None


def _renamed(names: list[str], written: list[str]) -> str:
    """What Spark renamed in a header: its first empty or repeated name."""
    position = next(i for i, name in enumerate(names) if name != written[i])
    name = written[position]
    if not name:
        return f"the header has an empty name (field {position + 1})"
    times = sum(other.lower() == name.lower() for other in written)
    return f"the header names column '{name}' {times} times"


def header_as_written(names: list[str]) -> list[str]:
    """A CSV header as the file gives it: Spark names an empty field by its position (``_c9``)
    and appends its position to each name that the header repeats (letter case aside),
    ``purchases13`` for a second ``purchases``. (A field written ``_c9`` in tenth place is
    taken for an empty one.)"""
    positions: dict[str, list[int]] = {}
    for position, name in enumerate(names):
        base = name.removesuffix(str(position))
        if base != name:
            positions.setdefault(base.lower(), []).append(position)
    written = ["" if name == f"_c{position}" else name for position, name in enumerate(names)]
    for repeats in positions.values():
        if len(repeats) > 1:
            for position in repeats:
                written[position] = names[position].removesuffix(str(position))
    return written


def _reading(function: Any, frame: DataFrame, location: str) -> Any:
    """Run ``function(frame)``: the Spark job that reads the input, where a file that cannot
    be read or parsed fails the job; that is a one-line error naming the input."""
    try:
        return function(frame)
    except _spark_error_types() as error:
        if not any(mark in _messages(error)[0] for mark in ("FAILED_READ_FILE", "MALFORMED")):
            raise
        other = _other_header(error)
        if other is not None:
            raise DataContractError(location, other) from None
        raise DataContractError(location, f"cannot be read ({_cause(error)})") from None


def _other_header(error: BaseException) -> str | None:
    """The problem of a CSV file whose header is not the first file's, from Spark's error."""
    for message in _java_messages(error):
        file = re.search(r"CSV file: (\S+)", message)
        if file is not None and "CSV header" in message:
            names = re.search(r"Expected: (.*) but found: (.*)", message)
            lengths = re.search(r"Header length: (\d+), schema size: (\d+)", message)
            if names is not None:
                detail = f"'{names.group(2)}' where the first file has '{names.group(1)}'"
            elif lengths is not None:
                detail = f"{lengths.group(1)} names where the first file has {lengths.group(2)}"
            else:
                detail = "other names than the first file's"
            return f"{file.group(1)}: its header has {detail}; the files must share one header"
    return None


def _spark_error_types() -> tuple[type[Exception], ...]:
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    return (PySparkException, Py4JJavaError)


def _messages(error: BaseException) -> list[str]:
    """The first line of the message of a Spark error and of each of its Java causes."""
    messages = [str(error), *_java_messages(error)]
    lines = [message.strip().splitlines()[0] for message in messages if message.strip()]
    return lines[1:] if len(lines) > 1 else lines  # Py4J's own line names only the call


def _java_messages(error: BaseException) -> list[str]:
    """The whole messages of a Spark error's Java exception and of each of its causes."""
    messages = []
    java = getattr(error, "java_exception", None)
    while java is not None:
        messages.append(str(java.getMessage()))
        java = java.getCause()
    return messages


def _cause(error: BaseException) -> str:
    """The innermost message of a Spark error, without its error class and SQL state."""
    message = _messages(error)[-1]
    message = re.sub(r"^\[[A-Z_.]+\]\s*", "", message)
    return re.sub(r"\s*SQLSTATE: \w+\s*$", "", message)


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _large_text(spark: SparkSession) -> bool:
    """Whether Spark exchanges text with Python as Arrow ``large_string``."""
    flag = spark.conf.get("spark.sql.execution.arrow.useLargeVarTypes", "false")
    return str(flag).lower() == "true"


class _HadoopPath:
    """A location on one of Spark's filesystems (local, HDFS, S3, DBFS...), through Hadoop."""

    def __init__(self, spark: SparkSession, location: str, fs: Any = None) -> None:
        jvm: Any = spark.sparkContext._jvm
        self._spark = spark
        self._jvm = jvm
        path = jvm.org.apache.hadoop.fs.Path(location)
        self._fs = fs or path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
        self._path = self._fs.makeQualified(path)

    @property
    def uri(self) -> str:
        return str(self._path.toString())

    @property
    def name(self) -> str:
        return str(self._path.getName())

    def sibling(self, name: str) -> _HadoopPath:
        return _HadoopPath(self._spark, f"{self._path.getParent().toString()}/{name}", self._fs)

    def exists(self) -> bool:
        return bool(self._fs.exists(self._path))

    def file_names(self) -> list[str] | None:
        """The names of the files at this location (a file, a folder or a glob), hidden ones
        (``_``, ``.``) left out; None when nothing is there."""
        statuses = self._fs.globStatus(self._path)
        if not statuses:
            return None
        names = []
        for status in statuses:
            listed = self._fs.listStatus(status.getPath()) if status.isDirectory() else [status]
            names += [str(entry.getPath().getName()) for entry in listed if entry.isFile()]
        return [name for name in names if not name.startswith(("_", "."))]

    def delete(self) -> None:
        if self.exists():
            self._fs.delete(self._path, True)

    def publish(self, target: _HadoopPath, overwrite: bool) -> None:
        """Rename this folder to ``target``; an existing target is replaced with ``overwrite``
        (renamed aside first, restored if the rename fails)."""
        aside = None
        if target.exists():
            if not overwrite:
                raise ConfigError(f"--output {target.uri}: exists; give --overwrite to replace it")
            aside = target.sibling(f".{target.name}.{uuid.uuid4().hex[:12]}.old")
            self._rename(target, aside)
        try:
            self._rename(self, target)
        except ArtifactError:
            if aside is not None:
                self._rename(aside, target)
            raise
        if aside is not None:
            aside.delete()
        logger.debug("predict: wrote {}", target.uri)

    def _rename(self, source: _HadoopPath, target: _HadoopPath) -> None:
        if not self._fs.rename(source._path, target._path):
            raise ArtifactError(f"{target.uri}: cannot rename {source.uri} to it")
