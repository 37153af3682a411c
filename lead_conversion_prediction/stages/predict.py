"""Scoring a file of raw leads (``lcp predict``): read in chunks, score, write in one step.

The file is streamed through the data contract and the model in chunks; only each row's id
and probability (and with ``--explain``, its reasons) are kept, in temporary files, then the
ranked scores are written (CSV, Parquet or stdout) in one atomic step: a failure leaves no
output, and the input is only read. ``--top`` writes only the likeliest leads, best first.
With ``--engine spark`` the same chunk scorer runs on Spark's partitions instead
(``stages/predict_spark.py``, imported only then: PySpark is an optional dependency).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from loguru import logger

from lead_conversion_prediction.config import Params, Paths
from lead_conversion_prediction.csv_io import physical_lines, with_physical_lines
from lead_conversion_prediction.exceptions import (
    DataContractError,
    UnparsedCellError,
)
from lead_conversion_prediction.schema import SCORING_COLUMNS, ready_contract
from lead_conversion_prediction.scoring import CHUNK_ROWS, SPARK_MASTER, STDIO, Engine, OnError
from lead_conversion_prediction.scoring.concurrency import map_in_order, read_ahead
from lead_conversion_prediction.scoring.io import (
    InputFormat,
    OutputFormat,
    RaggedRows,
    read_chunks,
    write_rejects,
    write_tables,
)
from lead_conversion_prediction.scoring.locations import (
    check_input_present,
    check_locations,
    check_spark_options,
    is_local_master,
)
from lead_conversion_prediction.scoring.model import LoadedModel, ModelRef, load_scoring_model
from lead_conversion_prediction.scoring.reasons import Reasons, record_type
from lead_conversion_prediction.scoring.score import (
    CallList,
    ScoredChunk,
    ScoringOptions,
    ScoringReport,
    count_repeats,
    ranked_tables,
    score_chunk,
)
from lead_conversion_prediction.stages._monitoring import DriftPublisher
from lead_conversion_prediction.utils.atomic import atomic_path, sweep_abandoned
from lead_conversion_prediction.utils.logging import log_stage, progress_bar

if TYPE_CHECKING:
    from lead_conversion_prediction.monitoring.counts import BatchCounts
    from lead_conversion_prediction.monitoring.profile import ReferenceProfile


def run_predict(
    paths: Paths,
    params: Params,
    input_path: str,
    output_path: str,
    model: str | None = None,
    threshold: float | None = None,
    sort: bool = False,
    on_error: OnError = OnError.fail,
    rejects: Path | None = None,
    training_source_only: bool = False,
    input_format: InputFormat | None = None,
    output_format: OutputFormat | None = None,
    chunk_rows: int = CHUNK_ROWS,
    explain: int = 0,
    top: str | None = None,
    engine: Engine = Engine.local,
    spark_master: str = SPARK_MASTER,
    overwrite: bool = False,
    monitor: Path | None = None,
) -> ScoringReport:
    """Score a file of raw leads with the lead model; ``-`` is stdin or stdout.

    The threshold defaults to ``params.yaml``'s; rejected rows go to ``rejects``, by default
    ``<output>.rejects.csv``. ``explain`` adds that many reasons per lead; ``top`` (``500`` or
    ``10%``) keeps only the likeliest leads.
    With the Spark engine, the input is any CSV or Parquet location Spark reads, the output a
    Parquet folder (replaced only with ``overwrite``) and rejected rows go to its ``_rejects/``.
    With ``monitor`` (a folder), the same pass counts the scored rows for drift and writes
    the monitoring report there (``stages/monitor.py``).
    """
    call_list = CallList.parse(top) if top is not None else None
    with log_stage("predict") as facts:
        if engine == Engine.spark:
            check_spark_options(input_path, output_path, rejects, output_format)
        if engine == Engine.local or is_local_master(spark_master):
            check_input_present(input_path)
        if engine == Engine.local:  # the options and files, checked before the model loads
            if rejects is None and output_path != STDIO:
                rejects = Path(f"{output_path}.rejects.csv")
            output_format = output_format or OutputFormat.of(output_path)
            check_locations(input_path, output_path, rejects)
        ref = ModelRef.parse(model or f"models:/{params.registry.model_name}@champion")
        drift = None
        if monitor is not None:  # its worker imports what the report needs meanwhile
            drift = DriftPublisher(params, input_path, monitor, logs_here=ref.is_registry)
        loaded = load_scoring_model(
            ref, paths.lead_model, with_profile=monitor is not None, cache=paths.cache_dir
        )
        if ref.is_file(paths.lead_model):
            warn_unless_champion(paths)
        options = ScoringOptions(
            threshold=params.threshold if threshold is None else threshold,
            sort=sort,
            skip_bad_rows=on_error == OnError.skip,
            training_source=params.data.source,
            training_source_only=training_source_only,
            chunk_rows=chunk_rows,
            explain=explain,
            reason_floor=params.predict.reason_floor,
            top=call_list,
            max_rows=params.predict.max_rows,
            profile=loaded.profile,
        )
        if engine == Engine.spark:
            from lead_conversion_prediction.scoring.spark_session import spark_session
            from lead_conversion_prediction.stages.predict_spark import (
                REJECTS_FOLDER,
                score_dataset,
            )

            with spark_session(spark_master, chunk_rows) as spark:
                report = score_dataset(
                    spark, loaded, input_path, output_path, options, input_format, overwrite
                )
            rejected_to = f"{output_path.rstrip('/')}/{REJECTS_FOLDER}/"
        else:
            with progress_bar("scoring") as advance:
                report = score_file(
                    loaded,
                    input_path,
                    output_path,
                    options,
                    rejects=rejects,
                    input_format=input_format,
                    output_format=output_format,
                    progress=advance,
                    counted=None if drift is None else drift.counted,
                )
            rejected_to = str(rejects)
        for warning in report.warnings():
            logger.warning("predict: {}", warning)
        if report.rows_rejected:
            logger.warning(
                "predict: {:,} rows rejected ({}), written to {}",
                report.rows_rejected,
                ", ".join(f"{k}: {v:,}" for k, v in report.rejected_for.most_common()),
                rejected_to,
            )
        rate = report.rows_scored / report.seconds if report.seconds else 0.0
        logger.info(
            "predict: {:,} rows scored, {:,} rejected, in {:.2f} s ({:,.0f} rows/s) with {}",
            report.rows_scored,
            report.rows_rejected,
            report.seconds,
            rate,
            loaded.provenance,
        )
        facts.update(scored=report.rows_scored, rejected=report.rows_rejected)
    if drift is not None and loaded.profile is not None:
        report.alerts = drift.report(loaded.profile, report.drift, loaded.provenance).alert_lines()
    return report


def warn_unless_champion(paths: Paths) -> None:
    """Warn when the workspace's model is not the champion, as far as the workspace knows it.

    The last registration in this store (``reports/registry.json``) names the champion then
    and the digest of the model it registered: comparing them costs no store query, so
    scoring a file loads no MLflow. Where the record is missing, of another store or of
    another model, nothing can be said cheaply and nothing is said: the scores name the file.
    """
    from lead_conversion_prediction.config import default_tracking_uri
    from lead_conversion_prediction.modeling.artifacts import RegistryRecord
    from lead_conversion_prediction.utils.secrets import redact_uri
    from lead_conversion_prediction.utils.storage import file_digest

    if not paths.registry_record.is_file():
        return
    record = RegistryRecord.read(paths.registry_record)
    digest = record.workspace_sha256
    if record.tracking_uri != redact_uri(default_tracking_uri()) or digest is None:
        return
    if digest != file_digest(paths.lead_model):
        logger.warning(
            "predict: {} is not the model registered last (version {}); the scores name the file",
            paths.lead_model,
            record.version,
        )
    elif record.champion != record.version:
        which = f"version {record.champion}" if record.champion is not None else "none yet"
        logger.warning(
            "predict: {} is not the champion (champion: {}); the scores name the file",
            paths.lead_model,
            which,
        )


def score_file(
    loaded: LoadedModel,
    input_path: str,
    output_path: str | None,
    options: ScoringOptions,
    rejects: Path | None = None,
    input_format: InputFormat | None = None,
    output_format: OutputFormat | None = None,
    progress: Callable[[int], None] | None = None,
    counted: Callable[[ReferenceProfile, BatchCounts | None, str], None] | None = None,
) -> ScoringReport:
    """Score every row of ``input_path`` into ``output_path`` (None: only count them, as
    ``lcp monitor`` does); ``-`` is stdin or stdout.

    Rows that break the contract stop the run with an error naming the file, the column and up
    to five bad rows, or (``skip_bad_rows``) go to ``rejects`` with a reason. Chunks are read
    ahead and scored two at a time (the heavy work releases the GIL); results are taken in
    file order.
    """
    ready_contract(SCORING_COLUMNS)  # the contract's checks (and pandera) ready before the clock
    started = time.perf_counter()
    input_format = input_format or InputFormat.of(input_path)
    output_format = output_format or OutputFormat.of(output_path or STDIO)
    check_locations(input_path, output_path, rejects)
    # A CSV file is first read with the contract's types (Arrow parses them off the GIL); if a
    # cell does not parse, or a row is rejected, the file is read again as text, so that errors
    # and the rejects file show the cells as written.
    typed = input_format == InputFormat.csv and input_path != STDIO
    lines = input_format == InputFormat.csv and input_path != STDIO  # the file can be re-read
    try:
        try:
            scored = _score_chunks(loaded, input_path, input_format, options, typed, progress)
        except UnparsedCellError:
            scored = _score_chunks(loaded, input_path, input_format, options, False, progress)
    except DataContractError as error:
        raise with_physical_lines(error, input_path) if lines else error from None
    report, lead_ids, probability, rejected, reasons = scored
    if counted is not None and options.profile is not None:  # the drift report, meanwhile
        counted(options.profile, report.drift, loaded.provenance)
    report.duplicate_ids = count_repeats(lead_ids)
    for target in (None if output_path is None else Path(output_path), rejects):
        if target is not None and str(target) != STDIO:
            for left in sweep_abandoned(target):
                logger.info("predict: removed {}, left by a run that was killed", left)
    if rejected and rejects is not None:
        position = "line" if input_format == InputFormat.csv else "row"
        rejects_frame = pd.concat(rejected, ignore_index=True).sort_values(
            position, kind="stable", ignore_index=True
        )
        if lines:
            starts = physical_lines(Path(input_path), rejects_frame["line"] - 2)
            rejects_frame["line"] = [starts[line - 2] for line in rejects_frame["line"]]
        with atomic_path(rejects) as temporary:
            write_rejects(rejects_frame, temporary)
    elif rejects is not None and rejects.exists():
        rejects.unlink()  # an earlier run's rejects: this run has none
        logger.info("predict: removed {}, an earlier run's rejects", rejects)
    if output_path is not None:
        tables = ranked_tables(lead_ids, probability, loaded.provenance, options, reasons)
        if output_path == STDIO:
            write_tables(tables, sys.stdout.buffer, output_format)
        else:
            with atomic_path(Path(output_path)) as temporary:
                write_tables(tables, temporary, output_format)
    report.seconds = time.perf_counter() - started
    return report


def _score_chunks(
    loaded: LoadedModel,
    input_path: str,
    input_format: InputFormat,
    options: ScoringOptions,
    typed: bool,
    progress: Callable[[int], None] | None,
) -> tuple[ScoringReport, np.ndarray, np.ndarray, list[pd.DataFrame], Reasons | None]:
    """Score every chunk of the input; return the report, ids, probabilities, rejects and
    (``explain``) reasons.

    Each chunk's ids, probabilities and reasons go to temporary files as they come, so memory
    stays flat while the file is read, whatever its length. CSV rows with more or fewer fields
    than the header are set aside by the reader: they stop the run or are rejected too, and
    the others' line numbers count them.
    """
    header = input_format == InputFormat.csv
    wanted = (*SCORING_COLUMNS, "source", "date_part")
    ragged = RaggedRows()
    chunks = read_ahead(
        read_chunks(
            input_path, input_format, options.chunk_rows, wanted, typed, ragged, SCORING_COLUMNS
        )
    )

    def numbered() -> Iterator[tuple[pd.DataFrame, int]]:
        offset = 0
        for chunk in chunks:
            if options.max_rows is not None and offset + len(chunk) > options.max_rows:
                raise DataContractError(
                    input_path,
                    f"holds more than {options.max_rows:,} rows, the most lcp predict scores "
                    "in one run (predict.max_rows in params.yaml): split it, or score it "
                    "with --engine spark",
                )
            yield chunk, offset
            offset += len(chunk)

    report = ScoringReport()
    rejected: list[pd.DataFrame] = []
    inputs: tuple[str, ...] = ()
    with (
        tempfile.TemporaryFile() as ids,
        tempfile.TemporaryFile() as probabilities,
        tempfile.TemporaryFile() as explained,
    ):
        for scored in _in_file_order(
            map_in_order(
                lambda item: score_chunk(loaded, item[0], options, input_path, item[1], header),
                numbered(),
            ),
            ragged,
        ):
            if typed and scored.rejected is not None:
                raise UnparsedCellError("rows are rejected: keep their cells as written")
            scored.ids.astype(np.int64).tofile(ids)
            scored.probability.astype(np.float64).tofile(probabilities)
            if scored.reasons is not None:
                inputs = scored.reasons.inputs
                scored.reasons.records().tofile(explained)
            if scored.rejected is not None:
                rejected.append(scored.rejected)
            report.merge(scored.report)
            if progress is not None:
                progress(scored.report.rows_scored + scored.report.rows_rejected)
        if ragged.records:
            if not options.skip_bad_rows:
                raise ragged.error(input_path)
            for frame in rejected:
                frame["line"] = ragged.positions(frame["line"].to_numpy() - 2) + 2
            why = ragged.reasons()
            rejected.append(
                pd.DataFrame(
                    {
                        **dict.fromkeys(ragged.columns),  # its cells cannot be told apart
                        "line": np.asarray(ragged.records) + 2,
                        "reason": why,
                    }
                )
            )
            report.reject(why)
        if report.rows_scored + report.rows_rejected == 0:
            raise DataContractError(input_path, "file has a header but no data rows")
        reasons = None
        if options.explain and inputs:
            explained.seek(0)
            records = np.fromfile(explained, record_type(options.explain))
            reasons = Reasons.from_records(inputs, records, options.reason_floor)
        ids.seek(0)
        probabilities.seek(0)
        lead_ids, probability = np.fromfile(ids, np.int64), np.fromfile(probabilities, np.float64)
        return report, lead_ids, probability, rejected, reasons


def _in_file_order(scored: Iterator[ScoredChunk], ragged: RaggedRows) -> Iterator[ScoredChunk]:
    """``scored``, with a breach of the contract naming its rows' places in the file, or the
    row set aside by the reader before it: the first bad row of the file stops the run."""
    try:
        yield from scored
    except DataContractError as error:
        if not error.rows or not error.header or not ragged.records:
            raise
        rows = [int(row) for row in ragged.positions(np.asarray(error.rows))]
        if ragged.before(rows):
            raise ragged.error(error.file) from None
        raise DataContractError(
            error.file, error.problem, error.column, rows, error.n_bad, error.header
        ) from None
