"""The input of Spark scoring: its format, its header checked against the contract, its reading.

CSV cells are read as text (the contract parses them) and a row with more or fewer fields than
the header is kept whole, to be rejected as local scoring rejects it; Parquet is read typed.
A file that cannot be read, or a folder whose files do not share one header, is a one-line
error naming the input.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from lead_conversion_prediction.exceptions import DataContractError, InputNotFoundError
from lead_conversion_prediction.schema import SCORING_COLUMNS, check_columns
from lead_conversion_prediction.scoring.io import InputFormat
from lead_conversion_prediction.scoring.spark import MALFORMED
from lead_conversion_prediction.scoring.spark_session import (
    HadoopPath,
    error_cause,
    error_messages,
    java_messages,
    spark_error_types,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

READ_COLUMNS = (*SCORING_COLUMNS, "source", "date_part")
_CSV_NAMES = (".csv", ".csv.gz")
_PARQUET_NAMES = (".parquet", ".pq")


def input_format_of(spark: SparkSession, location: str, given: InputFormat | None) -> InputFormat:
    """The format of the input: ``given``, else the extension of the file, or of the files of
    the folder; a missing input or another format is a one-line error."""
    source = HadoopPath(spark, location)
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
    except spark_error_types() as error:
        if "MALFORMED_CSV_RECORD" in error_messages(error)[0]:  # the header row itself
            raise DataContractError(
                location,
                "Spark's CSV parser cannot read the header row (more than its 20,480 fields, "
                "or a quote left open): keep the columns the contract reads, or score the file "
                "with the local engine",
            ) from None
        raise DataContractError(
            location, f"cannot be read as {source_format.value} ({error_cause(error)})"
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
    except spark_error_types() as error:
        raise DataContractError(
            location, f"cannot be read as csv ({error_cause(error)})"
        ) from None


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


def reading_input(function: Any, frame: DataFrame, location: str) -> Any:
    """Run ``function(frame)``: the Spark job that reads the input, where a file that cannot
    be read or parsed fails the job; that is a one-line error naming the input."""
    try:
        return function(frame)
    except spark_error_types() as error:
        if not any(mark in error_messages(error)[0] for mark in ("FAILED_READ_FILE", "MALFORMED")):
            raise
        other = _other_header(error)
        if other is not None:
            raise DataContractError(location, other) from None
        raise DataContractError(location, f"cannot be read ({error_cause(error)})") from None


def _other_header(error: BaseException) -> str | None:
    """The problem of a CSV file whose header is not the first file's, from Spark's error."""
    for message in java_messages(error):
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
