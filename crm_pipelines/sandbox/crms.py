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
            modules.append(importlib.import_module(f"crm_pipelines.sandbox.{name}"))
        except ModuleNotFoundError as exc:  # a CRM not built yet
            if exc.name != f"crm_pipelines.sandbox.{name}":
                raise
    return modules


MODULES = _load()
