"""``lcp verify``: check a models folder or a ``models.tar`` against its manifest.

A folder's interrupted commit (a run killed while switching in its models) is completed
first, and when no other run holds the checkout, the temporary files of killed runs are
removed. Every problem is one line; any problem makes the command fail.
"""

from __future__ import annotations

from pathlib import Path

from loguru import logger

from lead_conversion_prediction.config import Paths
from lead_conversion_prediction.exceptions import LockedError, VerificationError
from lead_conversion_prediction.stages._checkout import tidy_checkout
from lead_conversion_prediction.utils.locking import checkout_lock
from lead_conversion_prediction.utils.storage import (
    check_artifact_set,
    check_bundle,
    complete_commit,
)


def run_verify(paths: Paths, target: Path | None = None) -> int:
    """Verify ``target`` (default ``models/``); return how many files were checked."""
    target = target or paths.models_dir
    required = [member.name for member in paths.model_set]  # an emptied manifest fails
    if target.is_dir():
        if target.resolve() == paths.models_dir.resolve():
            _tidy_if_idle(paths)
        if complete_commit(target):
            logger.warning("verify: completed the commit of a run killed while saving {}", target)
        problems, checked = check_artifact_set(target, required)
    else:
        problems, members = check_bundle(target, required)
        checked = len(members)
    if problems:
        raise VerificationError(problems)
    logger.info("verify: {} files of {} match their manifest", checked, target)
    return checked


def _tidy_if_idle(paths: Paths) -> None:
    try:
        with checkout_lock(paths.root, "verify"):
            tidy_checkout(paths)
    except LockedError:
        logger.info("verify: another run is writing; its temporary files are left alone")
