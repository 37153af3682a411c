"""Spark around the scoring: the session, the filesystems it reaches, and its errors in one line.

A session lcp starts itself is quiet and bound to this machine when local; spark-submit's or
Databricks' is used as it is. Locations are read and renamed through Hadoop, so the input and
the output may be on any filesystem the cluster reads. PySpark is imported on demand.
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from loguru import logger

from lead_conversion_prediction.exceptions import ArtifactError, ConfigError
from lead_conversion_prediction.utils.logging import silence_pyspark_pandas_warning

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


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
            f"--spark-master {master}: Spark did not start ({first_line(error)}); "
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


def large_text(spark: SparkSession) -> bool:
    """Whether Spark exchanges text with Python as Arrow ``large_string``."""
    flag = spark.conf.get("spark.sql.execution.arrow.useLargeVarTypes", "false")
    return str(flag).lower() == "true"


class HadoopPath:
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

    def sibling(self, name: str) -> HadoopPath:
        return HadoopPath(self._spark, f"{self._path.getParent().toString()}/{name}", self._fs)

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

    def publish(self, target: HadoopPath, overwrite: bool) -> None:
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

    def _rename(self, source: HadoopPath, target: HadoopPath) -> None:
        if not self._fs.rename(source._path, target._path):
            raise ArtifactError(f"{target.uri}: cannot rename {source.uri} to it")


def spark_error_types() -> tuple[type[Exception], ...]:
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    return (PySparkException, Py4JJavaError)


def error_messages(error: BaseException) -> list[str]:
    """The first line of the message of a Spark error and of each of its Java causes."""
    messages = [str(error), *java_messages(error)]
    lines = [message.strip().splitlines()[0] for message in messages if message.strip()]
    return lines[1:] if len(lines) > 1 else lines  # Py4J's own line names only the call


def java_messages(error: BaseException) -> list[str]:
    """The whole messages of a Spark error's Java exception and of each of its causes."""
    messages = []
    java = getattr(error, "java_exception", None)
    while java is not None:
        messages.append(str(java.getMessage()))
        java = java.getCause()
    return messages


CAUSE_CHARACTERS = 300  # a cause may quote a whole record: a header of 30,000 names, say


def error_cause(error: BaseException) -> str:
    """The innermost message of a Spark error, without its error class and SQL state, cut to
    ``CAUSE_CHARACTERS``."""
    message = error_messages(error)[-1]
    message = re.sub(r"^\[[A-Z_.]+\]\s*", "", message)
    message = re.sub(r"\s*SQLSTATE: \w+\s*$", "", message)
    if len(message) <= CAUSE_CHARACTERS:
        return message
    return f"{message[:CAUSE_CHARACTERS]}... ({len(message):,} characters)"


def first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
