"""The ``lcp`` command line: one command per pipeline stage, ``pipeline`` for all, and scoring.

The root app assembles each area's commands (``stages``, ``registry``, ``scoring``,
``monitoring``, ``server``) as top-level commands. Paths default to the project's standard
locations
(``config.Paths``). Errors a user can fix are reported on one line with exit code 2
(``errors.py``); ``--debug`` shows the traceback instead. Heavy libraries are imported by the
commands, not here, so ``lcp --help`` is instant.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from typing import Annotated

import typer

from lead_conversion_prediction.cli import monitoring, registry, scoring, server, stages
from lead_conversion_prediction.cli.options import Settings, settings

app = typer.Typer(
    name="lcp",
    help="Lead conversion prediction: prepare data, train, evaluate, register and score.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
for area in (stages, registry, scoring, monitoring, server):
    app.add_typer(area.app)  # no name: its commands become the root's own


def _show_version(value: bool) -> None:
    if value:
        from lead_conversion_prediction import __version__

        typer.echo(f"lcp {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Log warnings only.")] = False,
    wait: Annotated[
        float,
        typer.Option(
            min=0,
            metavar="SECONDS",
            help="How long a command that writes waits for another run of this checkout.",
        ),
    ] = 0.0,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Show the version and exit.", callback=_show_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Lead conversion prediction: prepare data, train, evaluate, register and score."""
    import logging

    from lead_conversion_prediction.utils.logging import configure_logging

    chosen = settings(ctx)
    chosen.debug, chosen.wait = debug, wait
    configure_logging("DEBUG" if debug else "WARNING" if quiet else "INFO")
    # MLflow's notes on creating a SQLite store's tables are its own business.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)


def run() -> None:
    """Console entry point: run the app, reporting project errors on one line each (exit 2);
    its start-up runs with the cyclic garbage collector paused (``utils/start_up.py``)."""
    from lead_conversion_prediction.utils.start_up import pause_collector

    pause_collector()
    try:
        execute()
    finally:
        # The process is exiting: spare the final garbage collection of every loaded module's
        # objects, which takes about a second once MLflow is imported.
        gc.freeze()


def execute(args: Sequence[str] | None = None) -> None:
    """Run the app on ``args`` (the command line's by default); exits as ``lcp`` exits."""
    import os

    from lead_conversion_prediction.cli.errors import one_line, report

    # MLflow sends usage data and keeps an id under ~/.config/mlflow unless told not to; its
    # download progress bars would fill the logs.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    chosen = Settings()
    try:
        app(args=None if args is None else list(args), obj=chosen)
    except Exception as error:
        if chosen.debug or one_line(error) is None:
            raise
        report(error)
