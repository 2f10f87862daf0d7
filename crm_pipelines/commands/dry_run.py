"""`crm-pipelines dry-run`: what the next push would do, record by record, without pushing."""

from __future__ import annotations

from typing import Annotated

import typer

from crm_pipelines.commands.review import warehouse_from_env

BATCHES = ("company_export_batch", "contact_export_batch", "lead_export_batch")


def dry_run(
    limit: Annotated[int, typer.Option(help="Rows to show per batch (all counts are always shown).")] = 50,
    show_skips: Annotated[bool, typer.Option(help="Also list skipped and rejected rows with their reasons.")] = True,
) -> None:
    """Print each export batch's diff — per record: create or update, and per field the CRM value →
    the new value — then its skips and rejections with their reasons. Nothing is pushed. The
    batches are the *_export_batch assets: materialize them first (Dagster UI, or
    `dagster asset materialize -m crm_pipelines.definitions --select "+contact_export_batch"`)."""
    from crm_pipelines.export.dry_run import DRY_RUN_COLUMNS, render_dry_run

    warehouse = warehouse_from_env()
    present = [name for name in BATCHES if name in warehouse.table_names()]
    if not present:
        typer.echo(f"{warehouse.describe()} has no export batch yet: materialize the *_export_batch assets "
                   "first; this command only reads them.", err=True)
        raise typer.Exit(2)
    batches = {name: warehouse.read_arrow(name, DRY_RUN_COLUMNS) for name in present}
    for line in render_dry_run(batches, limit, show_skips):
        typer.echo(line)
