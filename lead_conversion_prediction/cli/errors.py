"""Errors a user can fix, told on one line (exit code 2) instead of a traceback.

A missing file that a stage of ``dvc.yaml`` writes says which stage to run first. The readers
(``utils/files.py``, ``utils/storage.py``) name the file only; the hint is added here, where the
error leaves for the user, so that the readers need not know the pipeline.
"""

from __future__ import annotations

from pathlib import Path

import typer

from lead_conversion_prediction.exceptions import (
    ENVIRONMENT_ERRNOS,
    InputNotFoundError,
    LeadConversionError,
)


def registry_failure(error: Exception) -> str | None:
    """One line for an error of the tracking store (MLflow's, its HTTP client's, or its
    database's: a SQLite file locked by a writer), naming the store's URI without its
    password; None for any other error."""
    import os
    import sys

    from lead_conversion_prediction.utils.secrets import redact_uri

    exceptions = sys.modules.get("mlflow.exceptions")
    requests = sys.modules.get("requests.exceptions")
    where = redact_uri(os.environ.get("MLFLOW_TRACKING_URI", "the tracking store"))
    if exceptions is not None and isinstance(error, exceptions.MlflowException):
        text = " ".join(str(getattr(error, "message", error)).split())[:300]
        if error.error_code == "PERMISSION_DENIED":
            user = os.environ.get("MLFLOW_TRACKING_USERNAME", "?")
            return f"{where}: user '{user}' is not allowed to do that ({text})"
        if error.error_code == "UNAUTHENTICATED":
            return f"{where}: the credentials were refused ({text})"
        return f"{where}: {text}"
    if requests is not None and isinstance(error, requests.RequestException):
        return f"{where}: the tracking server failed to answer ({type(error).__name__})"
    database = sys.modules.get("sqlalchemy.exc")
    if database is not None and isinstance(error, database.OperationalError):
        cause = " ".join(str(error.orig).split())[:200]  # the driver's words, not the SQL
        return f"{where}: the store's database refused the query ({cause}); try again"
    return None


def one_line(error: Exception) -> list[str] | None:
    """What to tell the user of an error they can fix, or None for a bug (a traceback)."""
    from lead_conversion_prediction.utils.secrets import redact_text

    if isinstance(error, InputNotFoundError) and not error.hint:
        error = InputNotFoundError(error.path, producer_hint(error.path))
    if isinstance(error, LeadConversionError):
        lines = str(error).splitlines()
    elif isinstance(error, OSError) and error.errno in ENVIRONMENT_ERRNOS:
        lines = [f"{error.filename or 'a file'}: {error.strerror}"]
    else:
        message = registry_failure(error)
        if message is None:
            return None
        lines = [message]
    return [f"error: {redact_text(line)}" for line in lines]


def producer_hint(path: Path | str) -> str:
    """``run 'lcp <stage>' first`` for a file that a stage of ``dvc.yaml`` writes, else ''."""
    stage = producing_stage(Path(path))
    return f"run 'lcp {stage}' first (or 'dvc repro')" if stage else ""


def producing_stage(path: Path) -> str | None:
    """The ``dvc.yaml`` stage whose outputs hold ``path`` (relative to the run root), if any."""
    import yaml

    from lead_conversion_prediction.config import PROJ_ROOT, run_root

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


def report(error: Exception) -> None:
    """Tell the user the error on stderr and exit with code 2."""
    for line in one_line(error) or [str(error)]:
        typer.echo(line, err=True)
    raise SystemExit(2) from None
