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

from lead_conversion_prediction.config import ID_COLUMN, MODEL_INPUT_COLUMNS
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
    order = np.argsort(-probability, kind="stable")
    ranks = np.empty(len(probability), dtype=np.int64)
    ranks[order] = np.arange(1, len(probability) + 1)
    return ranks


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
    chunk_rows: int = 250_000


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
    good = typed.loc[~bad]
    X = good.loc[:, list(MODEL_INPUT_COLUMNS)]
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
    from lead_conversion_prediction.schema import SCORING_COLUMNS
    from lead_conversion_prediction.utils.storage import atomic_path

    started = time.perf_counter()
    source_format = source_format or _format(source)
    header = source_format == "csv"
    wanted = (*SCORING_COLUMNS, "source", "date_part")
    chunks = read_ahead(read_chunks(source, source_format, options.chunk_rows, wanted))

    def numbered() -> Iterator[tuple[pd.DataFrame, int]]:
        offset = 0
        for chunk in chunks:
            yield chunk, offset
            offset += len(chunk)

    report = ScoringReport()
    ids: list[np.ndarray] = []
    probabilities: list[np.ndarray] = []
    rejected: list[pd.DataFrame] = []
    for scored in map_in_order(
        lambda item: score_chunk(loaded, item[0], options, source, item[1], header), numbered()
    ):
        ids.append(scored.ids)
        probabilities.append(scored.probability)
        if scored.rejected is not None:
            rejected.append(scored.rejected)
        report.merge(scored.report)
        if progress is not None:
            progress(scored.report.rows_scored + scored.report.rows_rejected)
    if report.rows_scored + report.rows_rejected == 0:
        raise DataContractError(source, "file has a header but no data rows")

    lead_ids = np.concatenate(ids)
    probability = np.concatenate(probabilities)
    report.duplicate_ids = int(pd.Series(lead_ids).duplicated().sum())
    if rejected and rejects is not None:
        with atomic_path(rejects) as temporary:
            _write_rejects(pd.concat(rejected, ignore_index=True), temporary)
    frames = _output_frames(lead_ids, probability, loaded.label, options)
    if target == STDIO:
        _write_frames(frames, sys.stdout.buffer, target_format or "csv")
    else:
        with atomic_path(Path(target)) as temporary:
            _write_frames(frames, temporary, target_format or _format(target))
    report.seconds = time.perf_counter() - started
    return report


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
    source: str, source_format: Format, chunk_rows: int, columns: Iterable[str]
) -> Iterator[pd.DataFrame]:
    """Yield the named columns of a CSV (as text) or Parquet file, ``chunk_rows`` at a time.

    Named columns absent from the file are left out; the contract says which are required.
    """
    import pyarrow as pa

    try:
        if source_format == "parquet":
            yield from _parquet_chunks(source, chunk_rows, set(columns))
        else:
            yield from _csv_chunks(source, chunk_rows, set(columns))
    except pa.ArrowInvalid as error:
        message = str(error).splitlines()[0]
        if "UTF8" in message or "UTF-8" in message:
            raise DataContractError(source, "not UTF-8 text") from None
        raise DataContractError(source, f"cannot be read ({message})") from None


def _csv_chunks(source: str, chunk_rows: int, columns: set[str]) -> Iterator[pd.DataFrame]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    stream = _open_binary(source)
    try:
        header = _peek_header(stream, source)
        wanted = [name for name in header if name in columns]
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(block_size=max(1 << 20, chunk_rows * 64)),
            convert_options=pacsv.ConvertOptions(
                include_columns=wanted,
                column_types=dict.fromkeys(wanted, pa.string()),
                strings_can_be_null=True,
            ),
        )
        pending: list[pd.DataFrame] = []
        rows = 0
        for batch in reader:
            pending.append(batch.to_pandas())
            rows += batch.num_rows
            if rows >= chunk_rows:
                yield pd.concat(pending, ignore_index=True)
                pending, rows = [], 0
        if pending:
            yield pd.concat(pending, ignore_index=True)
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


def _output_frames(
    lead_ids: np.ndarray, probability: np.ndarray, label: str, options: ScoringOptions
) -> Iterator[pd.DataFrame]:
    ranks = rank_descending(probability)
    order = np.argsort(ranks) if options.sort else np.arange(len(ranks))
    model = neutralise_formulas(pd.Series([label])).iloc[0]
    for start in range(0, max(len(order), 1), options.chunk_rows):
        rows = order[start : start + options.chunk_rows]
        yield pd.DataFrame(
            {
                ID_COLUMN: lead_ids[rows],
                "conversion_probability": probability[rows],
                "predicted_label": (probability[rows] > options.threshold).astype(np.int8),
                "rank": ranks[rows],
                "model": model,
            }
        )


def _write_frames(frames: Iterator[pd.DataFrame], target: Path | IO[bytes], fmt: Format) -> None:
    import pyarrow as pa

    writer: Any = None
    try:
        for frame in frames:
            table = pa.Table.from_pandas(frame, preserve_index=False)
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
