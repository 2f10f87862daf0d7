"""`crm-pipelines review-mapping`: the field mapping checked against the CRM's described fields."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from crm_pipelines.config import CONFIG_ENV_VAR, ConfigError, load_config
from crm_pipelines.resources.warehouse import WAREHOUSE_SCHEMA_ENV, WAREHOUSE_URL_ENV, Warehouse

MARK = {"ok": "ok     ", "warning": "WARNING", "error": "ERROR  "}


def warehouse_from_env() -> Warehouse:
    fields = {k: v for k, v in (("url", os.environ.get(WAREHOUSE_URL_ENV)),
                                ("schema_name", os.environ.get(WAREHOUSE_SCHEMA_ENV))) if v}
    return Warehouse(**fields)


def review_mapping(
    config: Annotated[Path | None, typer.Option(help="Integration config; default: $CRM_PIPELINES_CONFIG or the "
                                                     "bundled Salesforce example.")] = None,
) -> None:
    """Print each field mapping with its status against the crm_schema table: ok, warning (e.g. text
    into a picklist, with the allowed internal values) or error (missing, read-only or non-creatable
    field, a type that cannot fit, a company field in the contacts tab). Exits 1 on any error, so
    it can gate a deploy. Materialize crm_schema first (`crm-pipelines demo` does)."""
    from crm_pipelines.export.review import review_mapping as review

    try:
        integration = load_config(str(config) if config else os.environ.get(CONFIG_ENV_VAR) or None)
    except ConfigError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None
    warehouse = warehouse_from_env()
    if "crm_schema" not in warehouse.table_names():
        typer.echo(f"{warehouse.describe()} has no crm_schema table yet: materialize the crm_schema asset "
                   "(e.g. `crm-pipelines demo`, or from the Dagster UI) and run this again.", err=True)
        raise typer.Exit(2)
    findings = review(integration, warehouse.read_table("crm_schema"))
    for row in findings.to_dict("records"):
        typer.echo(f"{MARK[row['status']]}  {row['tab']:<10} {row['crm_field']:<36} {row['source']:<22} "
                   f"{row['message']}")
    counts = findings["status"].value_counts().to_dict()
    typer.echo(f"\n{counts.get('ok', 0)} ok, {counts.get('warning', 0)} warnings, {counts.get('error', 0)} errors "
               f"({integration.active_crm})")
    if counts.get("error"):
        raise typer.Exit(1)
