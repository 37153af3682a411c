"""The pipeline's CSV files in and out: read with one-line errors, written as the raw file is.

A CSV file is read whole by pandas with the contract's missing cells; a file-level problem
(missing, not UTF-8, empty, a row with another number of fields than the header, a column the
header repeats) is a :class:`DataContractError` naming the file and the line. Raw leads are
then typed and checked against the contract (``schema.py``), and a breach names the lines its
rows start on, quoted line breaks counted. Scoring streams its files instead
(``scoring/io.py``), with the same notion of a blank line and of a ragged row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from lead_conversion_prediction.exceptions import DataContractError
from lead_conversion_prediction.schema import (
    DATE_FORMAT,
    MISSING_CELLS,
    TRAINING_COLUMNS,
    check_columns,
    validate_leads,
)
from lead_conversion_prediction.utils.files import open_binary, reading
from lead_conversion_prediction.utils.storage import write_csv


def read_raw_leads(path: Path, required: Iterable[str] = TRAINING_COLUMNS) -> pd.DataFrame:
    """Read a raw lead CSV and return it typed and validated against the contract."""
    frame = read_csv_text(path)
    try:
        return validate_leads(frame, path, required)
    except DataContractError as error:
        raise with_physical_lines(error, path) from None


def read_csv_text(path: Path) -> pd.DataFrame:
    """Read a CSV file, turning file-level problems into a one-line :class:`DataContractError`."""
    try:
        with reading(path):
            frame = pd.read_csv(
                path,
                encoding="utf-8",
                encoding_errors="strict",
                na_values=list(MISSING_CELLS),
                keep_default_na=False,
            )
    except pd.errors.EmptyDataError:
        raise DataContractError(path, "file is empty (no header row)") from None
    except pd.errors.ParserError as error:
        raise _parser_error(path, str(error)) from None
    if frame.empty:
        raise DataContractError(path, "file has a header but no data rows")
    # pandas renames a repeated name ("purchases.1"): the contract checks the header as written.
    check_columns(
        pd.read_csv(path, header=None, nrows=1, dtype="str", keep_default_na=False).iloc[0], path
    )
    return frame


def _parser_error(path: Path, message: str) -> DataContractError:
    """pandas' parser error as one line: a row with another number of fields than the header
    is named as ``lcp predict`` names it."""
    ragged = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
    if ragged is None:
        return DataContractError(path, f"not a valid CSV file ({' '.join(message.split())})")
    expected, line, count = (int(number) for number in ragged.groups())
    return DataContractError(path, field_count_problem(count, expected), rows=[line - 2])


def field_count_problem(count: int, expected: int) -> str:
    """What is wrong with a CSV row of ``count`` fields under a header of ``expected``."""
    return f"{count} field{'s' * (count != 1)} where the header has {expected}"


def with_physical_lines(error: DataContractError, path: Path | str) -> DataContractError:
    """``error`` naming the lines its rows start on in the file, quoted line breaks counted."""
    if not error.rows or not error.header:
        return error
    starts = physical_lines(Path(path), error.rows[:5])
    return error.at_lines([starts[row] for row in error.rows[:5]])


def physical_lines(path: Path, rows: Iterable[int]) -> dict[int, int]:
    """The line each data row (0-based) starts on in a CSV file with a header (line 1); blank
    lines are no rows."""
    import contextlib
    import csv
    import io

    wanted = set(rows)
    found: dict[int, int] = {row: row + 2 for row in wanted}  # if the file cannot be re-read
    text = io.TextIOWrapper(open_binary(path), encoding="utf-8", newline="")
    with text as stream, contextlib.suppress(csv.Error):
        reader = csv.reader(stream)
        next(reader, None)
        start = reader.line_num + 1
        row = 0
        for fields in reader:
            if not fields or (len(fields) == 1 and is_blank_line(fields[0])):
                start = reader.line_num + 1
                continue
            if row in wanted:
                found[row] = start
                wanted.discard(row)
                if not wanted:
                    break
            row += 1
            start = reader.line_num + 1
    return found


def is_blank_line(text: str) -> bool:
    """Whether a line of a CSV file holds spaces or tabs only: no row, as pandas and Spark read
    it (Arrow skips only empty lines)."""
    return not text.strip(" \t")


def write_leads(path: Path, leads: pd.DataFrame) -> None:
    """Write typed leads as CSV, atomically, with dates written as the raw file writes them."""
    write_csv(path, leads.assign(date_part=leads["date_part"].dt.strftime(DATE_FORMAT)))
