"""`crm-pipelines dry-run`: what the next push would do, record by record, without pushing."""

from __future__ import annotations

from typing import Annotated

import typer

from crm_pipelines.commands.review import warehouse_from_env


def dry_run(
    limit: Annotated[int, typer.Option(help="Rows to list per kind (rejections, updates, creates, skips) of "
                                            "each batch; the summary always counts them all.")] = 20,
    show_skips: Annotated[bool, typer.Option(help="Also list skipped rows with their reasons (rejections are "
                                                  "always listed).")] = True,
    as_leads: Annotated[bool, typer.Option(help="Describe a push launched with as_leads: true (the lead batch "
                                                "sent instead of the contact batch).")] = False,
) -> None:
    """Print a summary — when each export batch was built, a warning when the CRM changed since (a
    push, or CRM changes pulled since), each batch's creates, updates, skips and rejections, and which
    batches a push sends — then the rows of those batches: rejections with their reasons, updates
    (per field the CRM value → the new value), creates (their values) and skips. Nothing is pushed.
    The batches are the *_export_batch assets: materialize them first (the enginy_sync job, or
    `dagster asset materialize -m crm_pipelines.definitions --select "+contact_export_batch"`)."""
    from crm_pipelines.export.dry_run import read_dry_run, render_dry_run

    warehouse = warehouse_from_env()
    described = read_dry_run(warehouse, as_leads)
    if not described.batches:
        typer.echo(f"{warehouse.describe()} has no export batch yet: materialize the *_export_batch assets "
                   "first; this command only reads them.", err=True)
        raise typer.Exit(2)
    for line in render_dry_run(described, limit, show_skips):
        typer.echo(line)
