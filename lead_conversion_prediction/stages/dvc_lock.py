"""Recording the pipeline's outputs in ``dvc.lock``, as ``dvc commit dvc.yaml`` would."""

from __future__ import annotations

from pathlib import Path

from loguru import logger

from lead_conversion_prediction.utils.logging import log_stage, reroute_dvc_logs


def is_dvc_project(root: Path) -> bool:
    """True when ``root`` holds a DVC project with this pipeline."""
    return (root / ".dvc").is_dir() and (root / "dvc.yaml").is_file()


def record_in_dvc_lock(root: Path) -> None:
    """Record the pipeline's current outputs in ``dvc.lock``, as ``dvc commit dvc.yaml`` does.

    A failure is reported as a warning: the outputs are complete, only the lock is stale.
    """
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    reroute_dvc_logs()

    with log_stage("dvc.lock"):
        try:
            with Repo(str(root)) as repo:
                repo.commit(str(root / "dvc.yaml"), force=True, relink=False)
        except DvcException as error:
            logger.warning("dvc.lock not updated ({}); run 'dvc commit dvc.yaml'", error)
