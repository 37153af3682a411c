"""Files of leads in, files of scores out: the formats, the readers, the writers, the rejects.

Readers yield chunks of the contract's columns from CSV or Parquet (or CSV on stdin); writers
take Arrow tables in the output schema (``scoring/output.py``). Text a spreadsheet would
execute is neutralised in CSV output and in the rejects file. Heavy libraries are imported by
the functions, so the command line can read the enums at start-up.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from lead_conversion_prediction.exceptions import ConfigError, DataContractError, UnparsedCellError
from lead_conversion_prediction.scoring import STDIO
from lead_conversion_prediction.scoring.output import neutralise_formulas
from lead_conversion_prediction.utils.files import is_gzip, open_binary, reading

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pacsv

_PARQUET_SUFFIXES = (".parquet", ".pq")
HEADER_MAX_BYTES = 16 << 20  # a header row over this is refused, not read
# A peek at stdin gives this much when more is coming: a longer header cannot be read twice.
STDIN_LOOKAHEAD_BYTES = 4096


class InputFormat(StrEnum):
    """The formats leads are read from."""

    csv = "csv"
    parquet = "parquet"

    @classmethod
    def of(cls, location: str) -> InputFormat:
        """Parquet for a .parquet or .pq file; CSV for anything else, stdin included."""
        return cls.parquet if location.lower().endswith(_PARQUET_SUFFIXES) else cls.csv


class OutputFormat(StrEnum):
    """The formats scores are written in (the writers are in ``WRITERS``)."""

    csv = "csv"
    parquet = "parquet"

    @classmethod
    def of(cls, location: str) -> OutputFormat:
        """The format a file's extension names (CSV for stdout); any other is refused."""
        suffix = "" if location == STDIO else Path(location).suffix.lower()
        known = {"": cls.csv, ".csv": cls.csv, **dict.fromkeys(_PARQUET_SUFFIXES, cls.parquet)}
        if suffix not in known or (suffix == "" and location != STDIO):
            raise ConfigError(
                f"--output {location}: not a .csv or .parquet file; name one, or give "
                "--output-format"
            )
        return known[suffix]


@dataclass
class RaggedRows:
    """Rows of a CSV file with more or fewer fields than its header, set aside while it is read.

    Their cells cannot be told apart, so they are never scored: they break the contract as a
    whole row. ``records`` are their 0-based positions among the file's data rows (a quoted
    line break does not start a row; a blank line, empty or of spaces only, is no row, as
    pandas and Spark read it), in file order; ``fields``, how many fields each has; ``cut``,
    whether it is part of a record that a reader of one line per row (Spark) cut at a quoted
    line break.
    """

    columns: list[str] = field(default_factory=list)  # the named columns the file holds
    expected: int = 0
    records: list[int] = field(default_factory=list)
    fields: list[int] = field(default_factory=list)
    cut: list[bool] = field(default_factory=list)
    blank: int = 0  # lines of spaces only, so far: Arrow counts them as rows, and skips empty ones

    def note(self, row: pacsv.InvalidRow) -> str:
        """Arrow's handler of an invalid row: note it, and read on without it."""
        from lead_conversion_prediction.csv_io import is_blank_line

        if row.number is None:  # only a reader on several threads loses count
            return "error"
        if is_blank_line(row.text):
            self.blank += 1
            return "skip"
        self.expected = row.expected_columns
        self.records.append(row.number - 2 - self.blank)  # Arrow counts the header as row 1
        self.fields.append(row.actual_columns)
        self.cut.append(False)  # Arrow reads quoted line breaks
        return "skip"

    def positions(self, read: np.ndarray) -> np.ndarray:
        """The positions in the file of rows given by their positions among the rows read."""
        import numpy as np

        read_before = np.asarray(self.records, dtype=np.int64) - np.arange(len(self.records))
        return read + np.searchsorted(read_before, read, side="right")

    def before(self, rows: list[int]) -> bool:
        """Whether the first of these rows comes before the first of ``rows``: the first bad
        row of a file stops the run."""
        return bool(self.records) and bool(rows) and self.records[0] < rows[0]

    def reasons(self) -> list[str]:
        """Each row's reason, as a rejects file gives it."""
        return [f"row: {self.problem(i)}" for i in range(len(self.records))]

    def error(self, file: str) -> DataContractError:
        """The one-line error naming the first of these rows."""
        first, n_bad = self.records[:5], len(self.records)
        return DataContractError(file, self.problem(0), rows=first, n_bad=n_bad)

    def problem(self, index: int) -> str:
        """What is wrong with the ``index``-th of these rows."""
        from lead_conversion_prediction.csv_io import field_count_problem

        problem = field_count_problem(self.fields[index], self.expected)
        if self.cut[index]:
            problem += " (a line break inside quotes, which Spark reads as the end of a row)"
        return problem


def read_chunks(
    source: str,
    source_format: InputFormat,
    chunk_rows: int,
    columns: Iterable[str],
    typed: bool = False,
    ragged: RaggedRows | None = None,
    required: Iterable[str] = (),
) -> Iterator[pd.DataFrame]:
    """Yield the named columns of a CSV or Parquet file, ``chunk_rows`` at a time.

    CSV cells are read as text, or ``typed`` as the contract's types (a cell that does not
    parse then raises :class:`UnparsedCellError`). CSV rows with more or fewer fields than the
    header go to ``ragged``, or without it stop the reading. Named columns absent from the file
    are left out; a ``required`` one stops the reading before a row is read.
    """
    import pyarrow as pa

    try:
        with reading(source):  # opening, decoding, gunzipping: one-line errors
            yield from READERS[source_format](
                source, chunk_rows, set(columns), tuple(required), typed, ragged
            )
    except pa.ArrowInvalid as error:
        message = str(error).splitlines()[0]
        if "UTF8" in message or "UTF-8" in message:
            raise DataContractError(source, "not UTF-8 text") from None
        if typed and "conversion error" in message:
            raise UnparsedCellError(message) from None
        raise DataContractError(source, f"cannot be read ({message})") from None
    except OSError as error:  # Arrow's gzip reader: a cut or corrupt file
        if "compress" not in str(error) and "inflate" not in str(error):
            raise
        raise DataContractError(source, f"not a whole gzip file ({error})") from None


def _csv_chunks(
    source: str,
    chunk_rows: int,
    columns: set[str],
    required: tuple[str, ...],
    typed: bool,
    ragged: RaggedRows | None,
) -> Iterator[pd.DataFrame]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from lead_conversion_prediction.schema import FIELDS, MISSING_CELLS, check_columns

    arrow_types = {"integer": pa.int64(), "number": pa.float64(), "boolean": pa.bool_()}
    header, header_bytes = _read_header(source)
    stream, reader = _arrow_stream(source), None
    try:
        check_columns(header, source, required)
        wanted = [name for name in header if name in columns]
        if ragged is not None:
            ragged.columns = wanted
        types = {
            name: arrow_types.get(FIELDS[name].kind, pa.string()) if typed else pa.string()
            for name in wanted
        }
        # One reading thread, so that Arrow counts the rows it sets aside; a streaming reader
        # parses on one thread anyway.
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(
                # A block holds whole rows: the header's, and rows as wide as it.
                block_size=max(1 << 20, chunk_rows * 64, 4 * header_bytes),
                use_threads=False,
            ),
            parse_options=pacsv.ParseOptions(
                invalid_row_handler=ragged.note if ragged is not None else None
            ),
            convert_options=pacsv.ConvertOptions(
                include_columns=wanted,
                column_types=types,
                null_values=list(MISSING_CELLS),
                strings_can_be_null=True,
            ),
        )
        pending: list[Any] = []
        rows = 0
        for batch in reader:
            pending.append(batch)
            rows += batch.num_rows
            if rows >= chunk_rows:
                yield pa.Table.from_batches(pending).to_pandas()
                pending, rows = [], 0
        if pending:
            yield pa.Table.from_batches(pending).to_pandas()
    finally:
        if reader is not None:
            reader.close()
        if source != STDIO:
            stream.close()


def _arrow_stream(source: str) -> Any:
    """What Arrow reads: stdin through Python, a file through Arrow's own (and its own gzip).

    Arrow reads ahead on a thread of its own. A Python stream has that thread call back into
    Python, and a thread still in such a call when the interpreter exits (after a bad first
    block, say) aborts the process; an Arrow stream never calls back.
    """
    import pyarrow as pa

    if source == STDIO:
        return sys.stdin.buffer
    gzipped = is_gzip(Path(source))
    return pa.input_stream(source, compression="gzip" if gzipped else None, buffer_size=1 << 20)


def input_columns(source: str, source_format: InputFormat) -> list[str]:
    """The column names of a CSV or Parquet input file."""
    import pyarrow.parquet as pq

    with reading(source):
        parquet = source_format == InputFormat.parquet
        return list(pq.read_schema(source).names) if parquet else _read_header(source)[0]


def _read_header(source: str) -> tuple[list[str], int]:
    """The header row's names and its length in bytes, naming file-level problems.

    A file's header is read whole, however wide, up to ``HEADER_MAX_BYTES``. Standard input
    cannot be read twice, so only what its buffer holds can be looked at: a longer header is
    refused, with the reason.
    """
    if source == STDIO:
        stdin = sys.stdin.buffer
        head = stdin.peek(1 << 16) if isinstance(stdin, io.BufferedReader) else b""
        first = _first_line(head)
        if first is None and len(head) >= STDIN_LOOKAHEAD_BYTES:
            raise DataContractError(
                source,
                f"the header row is longer than the {len(head):,} bytes standard input can be "
                "looked ahead: give the leads as a file",
            )
        line = head if first is None else first
        return _parse_header(line, head, source), len(line)
    with open_binary(Path(source)) as stream:
        blocks: list[bytes] = []
        read = commas = 0
        while True:  # each block is searched once: a wide header costs its length, no more
            block = stream.read(1 << 16)
            if not block:
                head = first = b"".join(blocks)
                break
            blocks.append(block)
            read += len(block)
            if _first_line(block) is not None:
                head = b"".join(blocks)
                first = _first_line(head) or b""
                break
            commas += block.count(b",")
            if read > HEADER_MAX_BYTES:
                raise DataContractError(
                    source,
                    f"the header row is over {HEADER_MAX_BYTES >> 20} MiB "
                    f"({commas + 1:,} column{'s' if commas else ''} at least): keep the "
                    "columns the contract reads, and fewer others",
                )
    return _parse_header(first, head, source), len(first)


def _first_line(head: bytes) -> bytes | None:
    """The first line of ``head`` (old Macs end lines with \\r), or None if none ends in it."""
    found = re.search(rb"\r\n|\r|\n", head)
    return None if found is None else head[: found.start()]


def _parse_header(first: bytes, head: bytes, source: str) -> list[str]:
    """The names of the header row ``first``, read from the start of the file, ``head``."""
    if not head.strip():
        raise DataContractError(source, "file is empty (no header row)")
    try:
        return next(csv.reader([first.decode("utf-8").lstrip("\ufeff")]))
    except csv.Error as error:
        raise DataContractError(source, f"the header row cannot be read ({error})") from None


def _parquet_chunks(
    source: str,
    chunk_rows: int,
    columns: set[str],
    required: tuple[str, ...],
    typed: bool,
    ragged: RaggedRows | None,
) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    from lead_conversion_prediction.schema import check_columns

    if source == STDIO:
        raise DataContractError(source, "Parquet cannot be read from stdin; give a file")
    try:
        parquet = pq.ParquetFile(source)
        check_columns(parquet.schema_arrow.names, source, required)
        wanted = [name for name in parquet.schema_arrow.names if name in columns]
        for batch in parquet.iter_batches(batch_size=chunk_rows, columns=wanted):
            yield batch.to_pandas()
    except OSError as error:
        if error.errno is not None:  # the file system's, not Arrow's reading of the file
            raise
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataContractError(source, f"not a readable Parquet file ({reason})") from None


READERS: dict[
    InputFormat,
    Callable[
        [str, int, set[str], tuple[str, ...], bool, RaggedRows | None], Iterator[pd.DataFrame]
    ],
] = {
    InputFormat.csv: _csv_chunks,
    InputFormat.parquet: _parquet_chunks,
}


def write_tables(tables: Iterator[pa.Table], target: Path | IO[bytes], fmt: OutputFormat) -> None:
    """Write a stream of score tables to a file or a binary stream."""
    writer: Any = None
    try:
        for table in tables:
            if writer is None:
                writer = WRITERS[fmt](target, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def _sink(target: Path | IO[bytes]) -> str | IO[bytes]:
    return str(target) if isinstance(target, Path) else target


def _csv_writer(target: Path | IO[bytes], schema: pa.Schema) -> Any:
    from lead_conversion_prediction.scoring.output import RoundedCsvWriter

    return RoundedCsvWriter(_sink(target), schema)  # numbers to 6 significant digits


def _parquet_writer(target: Path | IO[bytes], schema: pa.Schema) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # Only text repeats: a dictionary of a million distinct ids or probabilities is built and
    # then thrown away, at a third of the writing time.
    text = [field.name for field in schema if pa.types.is_dictionary(field.type)]
    return pq.ParquetWriter(_sink(target), schema, use_dictionary=text)


WRITERS: dict[OutputFormat, Callable[[Path | IO[bytes], pa.Schema], Any]] = {
    OutputFormat.csv: _csv_writer,
    OutputFormat.parquet: _parquet_writer,
}


def write_rejects(rejects: pd.DataFrame, path: Path) -> None:
    """Write rejected rows, with their line and reason, as CSV with formulas neutralised.

    Every cell is quoted: a cell holding a lone carriage return is then one cell, not the end
    of a row (the csv module quotes only what its line terminator holds).
    """
    text = rejects.astype("object").apply(neutralise_formulas)
    text.to_csv(path, index=False, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)
