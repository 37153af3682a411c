"""The registry's commands: the champion alias (promote, rollback, champion) and its lock."""

from __future__ import annotations

from typing import Annotated

import typer

from lead_conversion_prediction.cli.options import (
    TrackingOption,
    exit_on_refusal,
    project,
    use_tracking_store,
)

app = typer.Typer()


@app.command()
def promote(
    version: Annotated[
        int | None,
        typer.Option(min=1, help="The version to promote.", show_default="the challenger"),
    ] = None,
    tracking_uri: TrackingOption = None,
) -> None:
    """Make a version champion if it is better, and no worse."""
    from lead_conversion_prediction.exceptions import PromotionRefusedError
    from lead_conversion_prediction.stages.promote import run_promote

    paths, params = project()  # a rule that cannot be met is refused before the store is asked
    use_tracking_store(tracking_uri)
    try:
        run_promote(paths, params, version=version)
    except PromotionRefusedError as refusal:
        exit_on_refusal(str(refusal))


@app.command()
def rollback(
    to: Annotated[
        int | None,
        typer.Option(
            "--to",
            min=1,
            metavar="N",
            help="An earlier champion to go back to.",
            show_default="the champion before the current one",
        ),
    ] = None,
    tracking_uri: TrackingOption = None,
) -> None:
    """Give @champion to the champion before it.

    Again: one more step back along the champions' line. --to N goes straight to an
    earlier champion N."""
    from lead_conversion_prediction.stages.promote import run_rollback

    paths, params = project()
    use_tracking_store(tracking_uri)
    run_rollback(paths, params, to)


@app.command()
def champion(tracking_uri: TrackingOption = None) -> None:
    """Show the champion: its metrics, lineage and history."""
    from lead_conversion_prediction.stages.promote import champion_report

    use_tracking_store(tracking_uri)
    for line in champion_report(project()[1]):
        typer.echo(line)


@app.command()
def unlock(tracking_uri: TrackingOption = None) -> None:
    """Break the registry lock left by a process that is gone.

    A process on the holder's own machine breaks a dead holder's lock by itself; this is for
    a holder that died on another machine. Make sure it is gone first.
    """
    from lead_conversion_prediction.modeling.registry_lock import break_lock, lock_name

    use_tracking_store(tracking_uri)
    name = project()[1].registry.model_name
    holder = break_lock(name)
    if holder is None:
        typer.echo(f"{lock_name(name)}: not held")
    else:
        typer.echo(f"{lock_name(name)}: broken (it was held by {holder.describe()})")
