"""What the commands share: the settings of the root options, the options several commands
take, and the project, its checkout lock and its tracking store as the commands use them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from lead_conversion_prediction.config import Params, Paths


@dataclass
class Settings:
    """The root options, kept in typer's context object (``ctx.obj``) for the commands."""

    debug: bool = False
    wait: float = 0.0  # seconds a command that writes waits for another run of the checkout


def settings(ctx: typer.Context) -> Settings:
    """The settings of this invocation (the defaults when the root callback did not run)."""
    root = ctx.find_root()
    if not isinstance(root.obj, Settings):
        root.obj = Settings()
    return root.obj


RawOption = Annotated[
    Path | None,
    typer.Option(
        "--raw", help="Raw lead CSV.", dir_okay=False, show_default="data/raw/raw_data.csv"
    ),
]
AcceptChangedOption = Annotated[
    bool,
    typer.Option(
        "--accept-changed-raw",
        help="Train on a raw file whose md5 differs from the one DVC pins.",
    ),
]
TrackingOption = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        help="MLflow store.",
        show_default="$MLFLOW_TRACKING_URI, else sqlite:///<project>/mlflow.db",
    ),
]
PromoteOption = Annotated[
    bool,
    typer.Option(
        "--promote",
        help="The release path: make the new version champion if better, and no worse.",
    ),
]


def project() -> tuple[Paths, Params]:
    """The project's paths and parameters."""
    from lead_conversion_prediction.config import Paths, load_params

    paths = Paths.from_env()
    return paths, load_params(paths.params_file)


@contextmanager
def writing(ctx: typer.Context, paths: Paths, command: str) -> Iterator[None]:
    """Hold the checkout's write lock (waiting up to ``--wait``), tidy it, then run."""
    from lead_conversion_prediction.stages._checkout import tidy_checkout
    from lead_conversion_prediction.utils.locking import checkout_lock

    with checkout_lock(paths.root, command, settings(ctx).wait):
        tidy_checkout(paths)
        yield


def use_tracking_store(option: str | None, check: bool = True) -> str:
    """The tracking URI to use, checked to answer first (one line when it cannot), and set as
    ``MLFLOW_TRACKING_URI`` for the command and the processes it starts."""
    import os

    from lead_conversion_prediction.config import default_tracking_uri

    uri = option or default_tracking_uri()
    if check:
        from lead_conversion_prediction.modeling.tracking_check import check_tracking_store

        check_tracking_store(uri)
    os.environ["MLFLOW_TRACKING_URI"] = uri
    return uri


def require_model_store(model: str | None, uri: str, name: str) -> None:
    """Tell a registry model (by default the champion) of a store not created yet at once, on
    one line: before the command checks its files or starts, and without creating the store."""
    from lead_conversion_prediction.modeling.registry import champion_uri, require_store

    require_store(model or champion_uri(name), uri)


def uses_registry(model: str | None) -> bool:
    """Whether a --model option names a registry or run URI (the default does)."""
    from lead_conversion_prediction.scoring.model import ModelRef

    return model is None or ModelRef.parse(model).is_registry


ALERT_EXIT_CODE = 3  # monitoring found an alert: schedulers fail the job on it
# A refused promotion is an expected outcome, not an error: `lcp promote` and the release path
# (`lcp pipeline --promote`, `make release`) tell it on one line and exit with this code; the
# champion stays as it was.
PROMOTION_REFUSED_EXIT_CODE = 0


def exit_on_refusal(reason: str) -> None:
    """Tell why a promotion was refused on stderr, one line, and exit with the refusal's code."""
    typer.echo(f"not promoted: {reason.removeprefix('refused: ')}", err=True)
    raise typer.Exit(PROMOTION_REFUSED_EXIT_CODE)


def exit_on_refused_release(paths: Paths) -> None:
    """After the release path's register stage: tell a refused promotion, as `lcp promote`
    does (the stage's record, reports/registry.json, holds the decision)."""
    from lead_conversion_prediction.modeling.artifacts import RegistryRecord

    record = RegistryRecord.read(paths.registry_record)
    if not record.promoted:
        exit_on_refusal(record.decision)


def exit_on_alerts(alerts: list[str]) -> None:
    """Name each alert on stderr, one line each, and exit 3; nothing when there is none."""
    if alerts:
        for line in alerts:
            typer.echo(line, err=True)
        raise typer.Exit(ALERT_EXIT_CODE)
