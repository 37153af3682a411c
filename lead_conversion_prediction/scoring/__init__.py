"""Scoring raw leads with the lead model: the model, the scores, the files, the concurrency.

This module is imported by the command line at start-up, so it holds only light constants.
"""

from enum import StrEnum

CHUNK_ROWS = 100_000  # rows scored at a time: bounds memory, keeps the data in cache
STDIO = "-"  # an input or output location meaning stdin or stdout
SPARK_MASTER = "local[*]"  # where --engine spark runs when lcp starts Spark itself
MAX_REASONS = 5  # --explain K: at most one reason per model input (schema.MODEL_INPUT_COLUMNS)


class Engine(StrEnum):
    """What scores a file."""

    local = "local"  # this process: chunks streamed through the model on every core
    spark = "spark"  # a Spark application: partitions scored where the data lives


class OnError(StrEnum):
    """What to do with rows that break the data contract."""

    fail = "fail"  # stop with an error naming the file, the column and the first bad lines
    skip = "skip"  # score the rest; write the bad rows, with their reason, to a rejects file
