"""Monitoring a scored batch (``lcp monitor``, ``lcp predict --monitor``): has it drifted?

Reads a batch of leads with the same readers and data contract as ``lcp predict`` (CSV,
Parquet, gzip, stdin; bad rows stop it, or with ``--on-error skip`` are set aside), scores it,
and counts its inputs and probabilities in the bins of the model's reference profile, chunk by
chunk. A file of scores (``conversion_probability``, as ``lcp predict`` writes) is read as
it is: only the prediction is compared, with the model the scores name. Writes ``drift.json``
and ``report.html`` to the output folder and logs a monitoring run to MLflow; the caller exits
3 when an input is in alert.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from lead_conversion_prediction.config import Params, Paths
from lead_conversion_prediction.exceptions import ConfigError, DataContractError
from lead_conversion_prediction.monitoring.counts import BatchCounts, count_batch, merge_all
from lead_conversion_prediction.monitoring.drift import DriftReport
from lead_conversion_prediction.monitoring.profile import ReferenceProfile
from lead_conversion_prediction.schema import ID_COLUMN
from lead_conversion_prediction.scoring import CHUNK_ROWS, STDIO, OnError
from lead_conversion_prediction.scoring.io import InputFormat, input_columns, read_chunks
from lead_conversion_prediction.scoring.locations import check_input_present
from lead_conversion_prediction.scoring.model import ModelRef
from lead_conversion_prediction.stages._monitoring import DriftPublisher
from lead_conversion_prediction.utils.logging import log_stage

PROBABILITY = "conversion_probability"
MODEL_COLUMN = "model"


def run_monitor(
    paths: Paths,
    params: Params,
    input_path: str,
    output_dir: Path,
    model: str | None = None,
    on_error: OnError = OnError.fail,
    input_format: InputFormat | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> DriftReport:
    """Compare a batch of leads (or of scores) with the model's reference profile."""
    from lead_conversion_prediction.scoring.model import load_scoring_model
    from lead_conversion_prediction.scoring.score import ScoringOptions
    from lead_conversion_prediction.stages.predict import score_file

    counts: BatchCounts | None
    with log_stage("monitor") as facts:
        check_input_present(input_path)
        input_format = input_format or InputFormat.of(input_path)
        if input_path != STDIO and PROBABILITY in input_columns(input_path, input_format):
            profile, provenance, counts = _count_scores(
                paths, input_path, input_format, model, chunk_rows
            )
            logs_here = "mlflow" in sys.modules  # the profile came from the registry
            drift = DriftPublisher(params, input_path, output_dir, logs_here=logs_here)
        else:
            ref = ModelRef.parse(model or f"models:/{params.registry.model_name}@champion")
            drift = DriftPublisher(params, input_path, output_dir, logs_here=ref.is_registry)
            loaded = load_scoring_model(
                ref, paths.lead_model, with_profile=True, cache=paths.cache_dir
            )
            assert loaded.profile is not None
            options = ScoringOptions(
                threshold=params.threshold,
                skip_bad_rows=on_error == OnError.skip,
                training_source=params.data.source,
                chunk_rows=chunk_rows,
                profile=loaded.profile,
            )
            rejects = output_dir / "rejects.csv" if on_error == OnError.skip else None
            if rejects is not None:
                output_dir.mkdir(parents=True, exist_ok=True)
            scored = score_file(loaded, input_path, None, options, rejects, input_format)
            profile, provenance, counts = loaded.profile, loaded.provenance, scored.drift
        report = drift.report(profile, counts, provenance)
        facts.update(rows=report.rows, status=report.status)
    return report


def _count_scores(
    paths: Paths, input_path: str, input_format: InputFormat, model: str | None, chunk_rows: int
) -> tuple[ReferenceProfile, str, BatchCounts]:
    """Count a file of scores: their probabilities, for the model they name.

    A CSV file holds them to ``CSV_SIGNIFICANT_DIGITS``: they are counted so, from any file,
    against bin edges rounded alike. The model's outputs take few values, and the reference's
    edges fall on them: a probability rounded below its own edge would change bin.
    """
    from lead_conversion_prediction.scoring.model import load_reference_profile
    from lead_conversion_prediction.scoring.output import round_significant

    parts: list[BatchCounts] = []
    named: set[str] = set()
    profile: ReferenceProfile | None = None
    offset = 0
    columns = (ID_COLUMN, PROBABILITY, MODEL_COLUMN)
    for chunk in read_chunks(
        input_path, input_format, chunk_rows, columns, required=(PROBABILITY,)
    ):
        probability = round_significant(
            _probabilities(chunk[PROBABILITY], input_path, offset, input_format)
        )
        if MODEL_COLUMN in chunk:
            named.update(str(value) for value in chunk[MODEL_COLUMN].dropna().unique())
        if profile is None:
            spec = model or _named_model(paths, named, input_path)
            profile, provenance = load_reference_profile(ModelRef.parse(spec), paths.lead_model)
            profile = rounded_edges(profile)
        parts.append(count_batch(profile, None, probability))
        offset += len(chunk)
    if profile is None:
        raise DataContractError(input_path, "file has a header but no data rows")
    if model is None:
        _named_model(paths, named, input_path)  # a later chunk may name another model
    return profile, provenance, merge_all(parts)


def rounded_edges(profile: ReferenceProfile) -> ReferenceProfile:
    """``profile`` with its prediction's bin edges rounded as a CSV of scores holds them."""
    from lead_conversion_prediction.scoring.output import round_significant

    prediction = profile.prediction
    bins = {
        name: getattr(prediction, name).model_copy(
            update={
                "edges": [
                    float(edge) for edge in round_significant(getattr(prediction, name).edges)
                ]
            }
        )
        for name in ("psi", "ks")
    }
    return profile.model_copy(update={"prediction": prediction.model_copy(update=bins)})


def _probabilities(
    values: object, input_path: str, offset: int, input_format: InputFormat
) -> np.ndarray:
    import pandas as pd

    assert isinstance(values, pd.Series)
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~((numbers >= 0) & (numbers <= 1)))
    if len(bad):
        raise DataContractError(
            input_path,
            "not a probability from 0 to 1",
            PROBABILITY,
            rows=(bad[:5] + offset).tolist(),
            n_bad=len(bad),
            header=input_format == InputFormat.csv,
        )
    return numbers


def _named_model(paths: Paths, named: set[str], input_path: str) -> str:
    """The model the scores name: a registry version, or the workspace's file by digest."""
    from lead_conversion_prediction.scoring.model import names_file

    if len(named) != 1:
        raise ConfigError(
            f"{input_path}: the scores name {len(named) or 'no'} models; give --model"
        )
    (name,) = named
    if ModelRef.parse(name).is_registry:
        return name
    if names_file(name, paths.lead_model):
        return str(paths.lead_model)
    raise ConfigError(f"{input_path}: the scores name {name}, not in this workspace; give --model")
