"""What to run when an input is missing: the ``dvc.yaml`` stage that writes it.

The readers (``utils/files.py``, ``utils/storage.py``) name a missing file only; the commands
that read the pipeline's outputs add the hint here, where the error leaves for the user, so
the readers need not know the pipeline.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

from lead_conversion_prediction.config import PROJ_ROOT, run_root
from lead_conversion_prediction.exceptions import InputNotFoundError

P = ParamSpec("P")
R = TypeVar("R")


def hints_missing_inputs(run: Callable[P, R]) -> Callable[P, R]:
    """``run``, where a missing file that a stage of ``dvc.yaml`` writes, and that the reader
    gave no hint for, says ``run 'lcp <stage>' first``."""

    @functools.wraps(run)
    def hinted(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return run(*args, **kwargs)
        except InputNotFoundError as error:
            hint = "" if error.hint else producer_hint(error.path)
            if not hint:
                raise
            raise InputNotFoundError(error.path, hint).with_traceback(
                error.__traceback__
            ) from None

    return hinted


def producer_hint(path: Path | str) -> str:
    """``run 'lcp <stage>' first`` for a file that a stage of ``dvc.yaml`` writes, else ''."""
    stage = producing_stage(Path(path))
    return f"run 'lcp {stage}' first (or 'dvc repro')" if stage else ""


def producing_stage(path: Path) -> str | None:
    """The ``dvc.yaml`` stage whose outputs hold ``path`` (relative to the run root), if any."""
    import yaml

    try:
        relative = path.resolve().relative_to(run_root())
        stages = yaml.safe_load((PROJ_ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    except (ValueError, OSError, KeyError, TypeError, yaml.YAMLError):
        return None
    for name, stage in stages.items():
        for entry in [*stage.get("outs", []), *stage.get("metrics", []), *stage.get("plots", [])]:
            declared = Path(next(iter(entry)) if isinstance(entry, dict) else entry)
            if relative == declared or declared in relative.parents:
                return str(name)
    return None
