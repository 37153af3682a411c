"""Stage ``data``: check the raw file against its pin, validate it, clean it (steps 1-3).

Reads ``data/raw/raw_data.csv``; writes ``data/interim/leads.csv`` and ``data_summary.json``.
"""

from __future__ import annotations

from pathlib import Path

from loguru import logger

from lead_conversion_prediction.config import Params, Paths
from lead_conversion_prediction.csv_io import read_raw_leads, write_leads
from lead_conversion_prediction.dataset import clean_leads, summarise_data, target_balance
from lead_conversion_prediction.exceptions import DataContractError, RawDataChangedError
from lead_conversion_prediction.modeling.artifacts import DataSummary
from lead_conversion_prediction.stages._io import read_pin
from lead_conversion_prediction.utils.files import reading
from lead_conversion_prediction.utils.logging import log_stage
from lead_conversion_prediction.utils.storage import file_digest


def run_data(
    paths: Paths, params: Params, raw: Path | None = None, accept_changed: bool = False
) -> DataSummary:
    """Check the raw file against its pin, validate it, clean it, write the interim leads."""
    raw = raw or paths.raw_data
    with log_stage("data") as facts:
        pin = read_pin(paths.raw_data_pin)
        pinned = pin.md5
        try:
            md5 = check_raw_data(raw, pinned)
        except RawDataChangedError:
            if not accept_changed:
                raise
            md5 = file_digest(raw, "md5")
            logger.warning("{}: md5 {} is not the pinned {}; accepted", raw, md5, pinned)
        frame = read_raw_leads(raw)
        leads = clean_leads(frame, params.data)
        if leads.empty:
            raise DataContractError(
                raw, "no labelled rows are left after cleaning; check the data section of params"
            )
        summary = summarise_data(frame, leads, params.data, md5, pin.url)
        write_leads(paths.leads, leads)
        summary.write(paths.data_summary)
        facts.update(rows_raw=len(frame), rows_clean=len(leads), target=target_balance(leads))
    return summary


def check_raw_data(path: Path, pinned_md5: str) -> str:
    """Return the file's md5; raise :class:`RawDataChangedError` if it is not the pinned one."""
    with reading(path, hint="fetch it with 'make fetch' (lcp fetch)"):
        actual = file_digest(path, "md5")
    if actual != pinned_md5:
        raise RawDataChangedError(
            f"{path}: md5 {actual} is not the pinned {pinned_md5}; restore it with "
            "'dvc checkout', or pass --accept-changed-raw to train on it anyway"
        )
    return actual
