"""The emulated CRMs. Each module exposes ``CRM`` (its name), ``routes(ctx)`` and
``seed(ctx, seed_data)``."""

from __future__ import annotations

import importlib
from types import ModuleType

_NAMES = ("salesforce", "hubspot", "dynamics")


def _load() -> list[ModuleType]:
    modules = []
    for name in _NAMES:
        try:
            module = importlib.import_module(f"crm_pipelines.sandbox.{name}")
            if hasattr(module, "routes"):  # a CRM still being built is skipped
                modules.append(module)
        except ModuleNotFoundError as exc:  # a CRM not built yet
            if exc.name != f"crm_pipelines.sandbox.{name}":
                raise
    return modules


MODULES = _load()


def seed(ctx, data) -> dict[str, int]:
    """Load the generator's CRM side into every CRM the sandbox serves; returns records per CRM."""
    loaded = {}
    for module in MODULES:
        if module.CRM in ctx.crms:
            module.seed(ctx, data)
            loaded[module.CRM] = sum(len(ctx.store.records(c, o)) for c, o in ctx.store.objects() if c == module.CRM)
    return loaded
