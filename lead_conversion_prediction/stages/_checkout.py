"""Putting a checkout in order before a run writes to it (the caller holds its lock)."""

from __future__ import annotations

from loguru import logger

from lead_conversion_prediction.config import Paths
from lead_conversion_prediction.utils.atomic import sweep_temporary
from lead_conversion_prediction.utils.storage import complete_commit


def tidy_checkout(paths: Paths) -> None:
    """Complete the artifact sets a killed run had committed, remove its temporary files."""
    for folder in (paths.processed_dir, paths.models_dir):
        if complete_commit(folder):
            logger.warning("completed the commit of a run killed while saving {}", folder)
    removed = sweep_temporary([paths.root / "data", paths.models_dir, paths.reports_dir])
    if removed:
        logger.warning("removed {} temporary files of killed runs", len(removed))
