"""The emulated CRMs. Each module exposes ``CRM`` (its name), ``routes(ctx)`` and
``seed(ctx, seed_data)``."""

from __future__ import annotations

from crm_pipelines.sandbox import dynamics, hubspot, pipedrive, salesforce, tribecrm, zoho
from crm_pipelines.sandbox.custom import northwind, oldbook

MODULES = (salesforce, hubspot, dynamics, pipedrive, northwind, oldbook, zoho, tribecrm)


def seed(ctx, data) -> dict[str, int]:
    """Load the generator's CRM side into every CRM the sandbox serves; returns records per CRM."""
    loaded = {}
    for module in MODULES:
        if module.CRM in ctx.crms:
            module.seed(ctx, data)
            loaded[module.CRM] = sum(len(ctx.store.records(c, o)) for c, o in ctx.store.objects() if c == module.CRM)
    return loaded
