"""Score raw leads with the lead model: one frame in memory, or whole files in bounded memory.

:func:`score_leads` scores a frame. :func:`score_file` streams a CSV or Parquet file (or
stdin) through the data contract and the model in chunks, keeps only each row's id and
probability, then writes the ranked scores (CSV, Parquet or stdout) in one atomic step:
a failure leaves no output, and the input is only read.
"""

from __future__ import annotations

import csv
import io
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import pandas as pd

from lead_conversion_prediction.config import ID_COLUMN, MODEL_INPUT_COLUMNS, SCORING_CHUNK_ROWS
from lead_conversion_prediction.exceptions import ArtifactError, DataContractError
from lead_conversion_prediction.modeling.evaluate import positive_probability

Format = Literal["csv", "parquet"]
STDIO = "-"
OUTPUT_COLUMNS = (ID_COLUMN, "conversion_probability", "predicted_label", "rank", "model")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def score_leads(model: Any, leads: pd.DataFrame, threshold: float = 0.5) -> pd.DataFrame:
    """Return each lead's conversion probability, label (above ``threshold``) and rank."""
    probability = positive_probability(model, leads.loc[:, list(MODEL_INPUT_COLUMNS)])
    scores = pd.DataFrame(
        {
            ID_COLUMN: leads[ID_COLUMN].to_numpy() if ID_COLUMN in leads else range(len(leads)),
            "conversion_probability": probability,
            "predicted_label": (probability > threshold).astype("int64"),
        }
    )
    scores["rank"] = rank_descending(probability)
    return scores


def rank_descending(probability: np.ndarray) -> np.ndarray:
    """Rank 1 for the highest probability; ties keep their input order."""
    return _ranks(_best_first(probability))


def _best_first(probability: np.ndarray) -> np.ndarray:
    """Row positions from the highest probability down; ties in input order."""
    order: np.ndarray = np.argsort(-probability, kind="stable")
    return order.astype(_index_type(len(probability)), copy=False)


def _ranks(order: np.ndarray) -> np.ndarray:
    ranks = np.empty(len(order), dtype=_index_type(len(order) + 1))
    ranks[order] = np.arange(1, len(order) + 1, dtype=ranks.dtype)
    return ranks


def _index_type(n: int) -> type[np.signedinteger[Any]]:
    """int32 while it holds ``n`` (half the memory of int64 for ten million rows)."""
    return np.int32 if n < np.iinfo(np.int32).max else np.int64


def count_repeats(values: np.ndarray) -> int:
    """How many values repeat one that comes earlier (sorting a copy: no hash table)."""
    ordered = np.sort(values)
    return int(np.count_nonzero(ordered[1:] == ordered[:-1]))


def neutralise_formulas(values: pd.Series) -> pd.Series:
    """Prefix text a spreadsheet would execute (``=``, ``+``, ``-``, ``@``...) with a quote."""
    text = values.astype("str")
    risky = values.notna() & text.str.startswith(_FORMULA_STARTS)
    return text.where(~risky, "'" + text).where(values.notna())


@dataclass
class LoadedModel:
    """A lead model ready to score, and how the scores name it."""

    model: Any
    label: str


def load_scoring_model(spec: str | None, default: Path) -> LoadedModel:
    """Load the model to score with: a registry URI, an artifact path, or ``default``.

    ``models:/lead_model@champion`` and ``runs:/...`` URIs load from MLflow (the tracking
    store must be configured); a path loads a joblib artifact after checking its SHA-256.
    """
    import os

    from lead_conversion_prediction.utils.storage import file_digest, load_artifact

    if spec and ":/" in spec:
        import mlflow

        try:
            model = mlflow.sklearn.load_model(spec)
        except Exception as error:
            raise ArtifactError(f"{spec}: cannot load the model ({error})") from None
        loaded = LoadedModel(model, _registry_label(spec))
    else:
        path = Path(spec) if spec else default
        model = load_artifact(path)
        loaded = LoadedModel(model, f"{path.name}@sha256:{file_digest(path)[:12]}")
    if "n_jobs" in loaded.model[-1].get_params():
        loaded.model[-1].set_params(n_jobs=os.cpu_count() or 1)  # scoring may use every core
    return loaded


def _registry_label(uri: str) -> str:
    """``models:/name@alias`` becomes ``models:/name/<version>``; other URIs stay as given."""
    if not uri.startswith("models:/") or "@" not in uri:
        return uri
    from mlflow import MlflowClient

    name, alias = uri.removeprefix("models:/").split("@", 1)
    version = MlflowClient().get_model_version_by_alias(name, alias).version
    return f"models:/{name}/{version}"


@dataclass
class ScoringOptions:
    """How to score: the label threshold, the output order, and what to do with bad rows."""

    threshold: float = 0.5
    sort: bool = False
    on_error: Literal["fail", "skip"] = "fail"
    training_source: str = "signup"
    training_source_only: bool = False
    chunk_rows: int = SCORING_CHUNK_ROWS


@dataclass
class ScoringReport:
    """What happened to the rows of a scored file."""

    rows_scored: int = 0
    rows_rejected: int = 0
    rejected_for: Counter[str] = field(default_factory=Counter)
    missing: Counter[str] = field(default_factory=Counter)
    unseen: Counter[str] = field(default_factory=Counter)
    other_sources: Counter[str] = field(default_factory=Counter)
    duplicate_ids: int = 0
    seconds: float = 0.0

    def merge(self, other: ScoringReport) -> None:
        """Add the counts of another part of the same file."""
        self.rows_scored += other.rows_scored
        self.rows_rejected += other.rows_rejected
        self.rejected_for.update(other.rejected_for)
        self.missing.update(other.missing)
        self.unseen.update(other.unseen)
        self.other_sources.update(other.other_sources)

    def warnings(self) -> list[str]:
        """One line per thing a user should know about the scored rows."""
        lines = []
        if self.missing:
            lines.append(f"missing values imputed as in training: {_counts(self.missing)}")
        if self.unseen:
            lines.append(f"levels unseen in training, scored as missing: {_counts(self.unseen)}")
        if self.other_sources:
            lines.append(
                "leads from sources the model was not trained on, scored anyway: "
                f"{_counts(self.other_sources)}"
            )
        if self.duplicate_ids:
            lines.append(f"{self.duplicate_ids} rows repeat a lead_id already in the file")
        return lines


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{key}={value:,}" for key, value in counter.most_common())


@dataclass
class ScoredChunk:
    """One chunk's scores, rejected rows and counts."""

    ids: np.ndarray
    probability: np.ndarray
    rejected: pd.DataFrame | None
    report: ScoringReport


def score_chunk(
    loaded: LoadedModel,
    chunk: pd.DataFrame,
    options: ScoringOptions,
    file: str,
    offset: int = 0,
    header: bool = True,
) -> ScoredChunk:
    """Check and score one chunk of raw leads; ``offset`` rows of the file precede it."""
    from lead_conversion_prediction.schema import KNOWN_SOURCES, SCORING_COLUMNS, check_leads

    report = ScoringReport()
    typed, breaches = check_leads(chunk, file, SCORING_COLUMNS, not_empty=(ID_COLUMN,))
    bad = np.zeros(len(chunk), dtype=bool)
    reasons = np.full(len(chunk), "", dtype=object)
    for breach in breaches:
        if options.on_error == "fail":
            raise breach.error(file, offset, header)
        fresh = breach.rows[~bad[breach.rows]]
        reasons[fresh] = breach.reason
        bad[fresh] = True
    if "source" in typed:
        other = (typed["source"] != options.training_source).to_numpy() & ~bad
        report.other_sources.update(
            {str(k): int(v) for k, v in typed.loc[other, "source"].value_counts().items()}
        )
        report.unseen["source"] = int(
            (~typed["source"].isin(KNOWN_SOURCES).to_numpy() & ~bad).sum()
        )
        if options.training_source_only and other.any():
            reasons[other] = (
                f"column 'source': not the training source '{options.training_source}'"
            )
            bad |= other
    good = typed.loc[~bad] if bad.any() else typed
    # Plain floats (missing as NaN) instead of nullable integers and booleans: the same codes
    # for the model, half the preprocessing time.
    X = good.loc[:, list(MODEL_INPUT_COLUMNS)].astype("float64")
    report.missing.update({str(k): int(v) for k, v in X.isna().sum().items() if v})
    coder = loaded.model[0].named_transformers_["categorical"]["code"]
    report.unseen.update(coder.count_unseen(X[list(coder.feature_names_in_)]))
    report.unseen = +report.unseen  # drop the zero counts
    rejected = None
    if bad.any():
        numbers = np.flatnonzero(bad) + offset + (2 if header else 1)
        position = "line" if header else "row"
        rejected = chunk.loc[bad].assign(**{position: numbers, "reason": reasons[bad]})
        report.rejected_for.update(reason.split(":")[0] for reason in reasons[bad])
    report.rows_scored = len(good)
    report.rows_rejected = int(bad.sum())
    return ScoredChunk(
        ids=good[ID_COLUMN].to_numpy(dtype=np.int64),
        probability=positive_probability(loaded.model, X) if len(good) else np.zeros(0),
        rejected=rejected,
        report=report,
    )


def score_file(
    loaded: LoadedModel,
    source: str,
    target: str,
    options: ScoringOptions,
    rejects: Path | None = None,
    source_format: Format | None = None,
    target_format: Format | None = None,
    progress: Callable[[int], None] | None = None,
) -> ScoringReport:
    """Score every row of ``source`` into ``target``; ``-`` is stdin or stdout.

    Rows that break the contract stop the run (``on_error="fail"``) with an error naming the
    file, the column and up to five bad rows, or (``"skip"``) go to ``rejects`` with a reason.
    Chunks are read ahead and scored two at a time (the heavy work releases the GIL); results
    are taken in file order.
    """
    from lead_conversion_prediction.utils.storage import atomic_path

    started = time.perf_counter()
    source_format = source_format or _format(source)
    # A CSV file is first read with the contract's types (Arrow parses them off the GIL); if a
    # cell does not parse, or a row is rejected, the file is read again as text, so that errors
    # and the rejects file show the cells as written.
    typed = source_format == "csv" and source != STDIO
    try:
        scored = _score_chunks(loaded, source, source_format, options, typed, progress)
    except _UnparsedCellError:
        scored = _score_chunks(loaded, source, source_format, options, False, progress)
    report, lead_ids, probability, rejected = scored
    report.duplicate_ids = count_repeats(lead_ids)
    if rejected and rejects is not None:
        with atomic_path(rejects) as temporary:
            _write_rejects(pd.concat(rejected, ignore_index=True), temporary)
    tables = _output_tables(lead_ids, probability, loaded.label, options)
    if target == STDIO:
        _write_tables(tables, sys.stdout.buffer, target_format or "csv")
    else:
        with atomic_path(Path(target)) as temporary:
            _write_tables(tables, temporary, target_format or _format(target))
    report.seconds = time.perf_counter() - started
    return report


class _UnparsedCellError(Exception):
    """A cell of a CSV file does not parse as its column's type: read the file as text."""


def _score_chunks(
    loaded: LoadedModel,
    source: str,
    source_format: Format,
    options: ScoringOptions,
    typed: bool,
    progress: Callable[[int], None] | None,
) -> tuple[ScoringReport, np.ndarray, np.ndarray, list[pd.DataFrame]]:
    """Score every chunk of ``source``; return the report, ids, probabilities and rejects.

    Each chunk's ids and probabilities go to temporary files as they come, so memory stays
    flat while the file is read, whatever its length.
    """
    import tempfile

    from lead_conversion_prediction.schema import SCORING_COLUMNS

    header = source_format == "csv"
    wanted = (*SCORING_COLUMNS, "source", "date_part")
    chunks = read_ahead(read_chunks(source, source_format, options.chunk_rows, wanted, typed))

    def numbered() -> Iterator[tuple[pd.DataFrame, int]]:
        offset = 0
        for chunk in chunks:
            yield chunk, offset
            offset += len(chunk)

    report = ScoringReport()
    rejected: list[pd.DataFrame] = []
    with tempfile.TemporaryFile() as ids, tempfile.TemporaryFile() as probabilities:
        for scored in map_in_order(
            lambda item: score_chunk(loaded, item[0], options, source, item[1], header),
            numbered(),
        ):
            if typed and scored.rejected is not None:
                raise _UnparsedCellError("rows are rejected: keep their cells as written")
            scored.ids.astype(np.int64).tofile(ids)
            scored.probability.astype(np.float64).tofile(probabilities)
            if scored.rejected is not None:
                rejected.append(scored.rejected)
            report.merge(scored.report)
            if progress is not None:
                progress(scored.report.rows_scored + scored.report.rows_rejected)
        if report.rows_scored + report.rows_rejected == 0:
            raise DataContractError(source, "file has a header but no data rows")
        ids.seek(0)
        probabilities.seek(0)
        return report, np.fromfile(ids, np.int64), np.fromfile(probabilities, np.float64), rejected


def map_in_order(
    function: Callable[[Any], Any], items: Iterator[Any], workers: int = 2, window: int = 3
) -> Iterator[Any]:
    """``map`` on a thread pool: at most ``window`` items in flight, results in input order."""
    from collections import deque
    from concurrent.futures import Future, ThreadPoolExecutor

    with ThreadPoolExecutor(workers, thread_name_prefix="score") as pool:
        pending: deque[Future[Any]] = deque()
        try:
            for item in items:
                pending.append(pool.submit(function, item))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def read_ahead(chunks: Iterator[pd.DataFrame], depth: int = 2) -> Iterator[pd.DataFrame]:
    """Yield ``chunks`` while a thread reads the next ones (Arrow reads without the GIL)."""
    import queue
    import threading

    pending: queue.Queue[object] = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def offer(item: object) -> bool:
        while not stop.is_set():
            try:
                pending.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in chunks:
                if not offer(chunk):
                    return
            offer(done)
        except BaseException as error:  # handed to the consumer, which raises it
            offer(error)

    reader = threading.Thread(target=produce, name="read-ahead", daemon=True)
    reader.start()
    try:
        while (item := pending.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        reader.join()


def _format(location: str) -> Format:
    return "parquet" if location.lower().endswith((".parquet", ".pq")) else "csv"


def read_chunks(
    source: str,
    source_format: Format,
    chunk_rows: int,
    columns: Iterable[str],
    typed: bool = False,
) -> Iterator[pd.DataFrame]:
    """Yield the named columns of a CSV or Parquet file, ``chunk_rows`` at a time.

    CSV cells are read as text, or ``typed`` as the contract's types (a cell that does not
    parse then raises ``_UnparsedCellError``). Named columns absent from the file are left out; the
    contract says which are required.
    """
    import pyarrow as pa

    try:
        if source_format == "parquet":
            yield from _parquet_chunks(source, chunk_rows, set(columns))
        else:
            yield from _csv_chunks(source, chunk_rows, set(columns), typed)
    except pa.ArrowInvalid as error:
        message = str(error).splitlines()[0]
        if "UTF8" in message or "UTF-8" in message:
            raise DataContractError(source, "not UTF-8 text") from None
        if typed and "conversion error" in message:
            raise _UnparsedCellError(message) from None
        raise DataContractError(source, f"cannot be read ({message})") from None


def _csv_chunks(
    source: str, chunk_rows: int, columns: set[str], typed: bool
) -> Iterator[pd.DataFrame]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from lead_conversion_prediction.schema import FIELDS

    arrow_types = {"integer": pa.int64(), "number": pa.float64(), "boolean": pa.bool_()}
    stream = _open_binary(source)
    try:
        header = _peek_header(stream, source)
        wanted = [name for name in header if name in columns]
        types = {
            name: arrow_types.get(FIELDS[name].kind, pa.string()) if typed else pa.string()
            for name in wanted
        }
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(block_size=max(1 << 20, chunk_rows * 64)),
            convert_options=pacsv.ConvertOptions(
                include_columns=wanted, column_types=types, strings_can_be_null=True
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
        if source != STDIO:
            stream.close()


def _open_binary(source: str) -> IO[bytes]:
    if source == STDIO:
        return sys.stdin.buffer
    try:
        return Path(source).open("rb", buffering=1 << 20)
    except FileNotFoundError:
        raise DataContractError(source, "file not found") from None
    except IsADirectoryError:
        raise DataContractError(source, "is a directory, not a file") from None


def _peek_header(stream: IO[bytes], source: str) -> list[str]:
    """Read the header row without consuming it, naming file-level problems."""
    head = stream.peek(1 << 16) if isinstance(stream, io.BufferedReader) else b""
    if not head.strip():
        raise DataContractError(source, "file is empty (no header row)")
    first = head.split(b"\n", 1)[0]
    try:
        text = first.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataContractError(
            source, f"not UTF-8 text (bad byte at offset {error.start})"
        ) from None
    return next(csv.reader([text.lstrip("\ufeff")]))


def _parquet_chunks(source: str, chunk_rows: int, columns: set[str]) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    if source == STDIO:
        raise DataContractError(source, "Parquet cannot be read from stdin; give a file")
    try:
        parquet = pq.ParquetFile(source)
    except FileNotFoundError:
        raise DataContractError(source, "file not found") from None
    wanted = [name for name in parquet.schema_arrow.names if name in columns]
    for batch in parquet.iter_batches(batch_size=chunk_rows, columns=wanted):
        yield batch.to_pandas()


def _output_tables(
    lead_ids: np.ndarray, probability: np.ndarray, label: str, options: ScoringOptions
) -> Iterator[Any]:
    """The scores as Arrow tables of ``chunk_rows`` rows, ranked, in input or score order."""
    import pyarrow as pa

    order = _best_first(probability)
    ranks = _ranks(order)
    if not options.sort:
        del order  # rows go out in input order: slices, no index array
    model = pa.array([neutralise_formulas(pd.Series([label])).iloc[0]])
    for start in range(0, max(len(probability), 1), options.chunk_rows):
        rows: Any = (
            order[start : start + options.chunk_rows]
            if options.sort
            else slice(start, start + options.chunk_rows)
        )
        chosen = probability[rows]
        yield pa.table(
            {
                ID_COLUMN: lead_ids[rows],
                "conversion_probability": chosen,
                "predicted_label": (chosen > options.threshold).astype(np.int8),
                "rank": ranks[rows].astype(np.int64),
                "model": pa.DictionaryArray.from_arrays(np.zeros(len(chosen), np.int8), model),
            }
        )


def _write_tables(tables: Iterator[Any], target: Path | IO[bytes], fmt: Format) -> None:
    writer: Any = None
    try:
        for table in tables:
            if writer is None:
                writer = _writer(target, table.schema, fmt)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def _writer(target: Path | IO[bytes], schema: Any, fmt: Format) -> Any:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    sink = str(target) if isinstance(target, Path) else target
    if fmt == "parquet":
        return pq.ParquetWriter(sink, schema)
    return pacsv.CSVWriter(sink, schema, write_options=pacsv.WriteOptions(quoting_style="needed"))


def _write_rejects(rejects: pd.DataFrame, path: Path) -> None:
    text = rejects.astype("object").apply(neutralise_formulas)
    text.to_csv(path, index=False, lineterminator="\n")
