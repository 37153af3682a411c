"""Where ``lcp predict`` reads and writes, checked before anything is loaded or written.

An input that is missing, a folder where a file belongs, an output into a missing folder, or
any output that is the input (through a link too) is one line: the scores never replace the
leads they come from. The Spark engine reads and writes locations, not standard streams.
"""

from __future__ import annotations

from pathlib import Path

from lead_conversion_prediction.exceptions import (
    ConfigError,
    DataContractError,
    InputNotFoundError,
)
from lead_conversion_prediction.scoring import STDIO
from lead_conversion_prediction.scoring.io import OutputFormat


def is_local_master(master: str) -> bool:
    """Whether Spark runs in this process's machine, reading paths without a scheme here."""
    import os

    return master.startswith("local") and not os.environ.get("HADOOP_CONF_DIR")


def check_input_present(input_path: str) -> None:
    """Tell a missing local input before the model loads or Spark starts: seconds sooner."""
    path = input_path.removeprefix("file://") if input_path.startswith("file:///") else input_path
    if path != STDIO and "://" not in path and not Path(path).exists():
        raise InputNotFoundError(input_path)


def check_spark_options(
    input_path: str, output_path: str, rejects: Path | None, output_format: OutputFormat | None
) -> None:
    """Refuse the options the Spark engine cannot honour, before Spark starts."""
    if STDIO in (input_path, output_path):
        raise ConfigError("--engine spark reads and writes locations, not stdin or stdout")
    if output_format not in (None, OutputFormat.parquet):
        raise ConfigError("--engine spark writes a Parquet folder: leave out --output-format")
    if rejects is not None:
        raise ConfigError("--engine spark writes rejected rows to <output>/_rejects/")


def check_locations(input_path: str, output_path: str | None, rejects: Path | None) -> None:
    """Refuse an input that is a folder, an output into a missing folder, and any output that
    is the input itself (through a link too): scores never replace the leads they come from."""
    if input_path != STDIO and Path(input_path).is_dir():
        raise DataContractError(input_path, "is a directory, not a file")
    for option, target in (("--output", output_path), ("--rejects", rejects)):
        if target is None or str(target) == STDIO:
            continue
        path = Path(target)
        if not path.parent.is_dir():
            raise ConfigError(f"{option} {target}: folder {path.parent} does not exist")
        if path.is_dir():
            raise ConfigError(f"{option} {target}: is a directory; name a file")
        exists = input_path != STDIO and path.exists() and Path(input_path).exists()
        if exists and path.samefile(input_path):
            raise ConfigError(f"{option} {target}: is the input file {input_path}")
    if (
        output_path is not None
        and rejects is not None
        and STDIO not in (output_path, str(rejects))
    ):
        output, rejected = Path(output_path), Path(rejects)
        linked = output.exists() and rejected.exists() and output.samefile(rejected)
        if linked or output.resolve() == rejected.resolve():
            raise ConfigError(f"--rejects {rejects}: is the output file; name another file")
