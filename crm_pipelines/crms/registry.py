"""The one list of CRMs. Everything else asks here for a CRM's facts, its Dagster resource or its
emulator; a name not listed is a clear error, never a fall-through to another CRM's settings.

An eighth CRM is a folder crms/<name>/ (client, emulator, facts.py, example.yaml) and one line
in BUILT_IN below.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from crm_pipelines.crms.facts import CrmFacts

if TYPE_CHECKING:
    from crm_pipelines.crms.base import CrmResource


def _load(path: str) -> Any:
    module, _, name = path.partition(":")
    loaded = importlib.import_module(module)
    return getattr(loaded, name) if name else loaded


# Every CRM, in the README's order, by the import path of its facts (plain data: loading them
# loads no client): an eighth CRM is one line here.
BUILT_IN = (
    "crm_pipelines.crms.salesforce.facts:FACTS",
    "crm_pipelines.crms.hubspot.facts:FACTS",
    "crm_pipelines.crms.dynamics.facts:FACTS",
    "crm_pipelines.crms.pipedrive.facts:FACTS",
    "crm_pipelines.crms.zoho.facts:FACTS",
    "crm_pipelines.crms.tribecrm.facts:FACTS",
    "crm_pipelines.crms.custom.facts:FACTS",
)
FACTS: dict[str, CrmFacts] = {facts.name: facts for facts in map(_load, BUILT_IN)}
# CRMs from outside the package, the same way ("module:ATTRIBUTE" of a CrmFacts, comma-separated):
# an in-house CRM kept in a repository of its own, or the toy CRM of tests/crms/toy.
EXTRA_CRMS_ENV = "CRM_PIPELINES_CRMS"
# The integration config used when none is given (CRM_PIPELINES_CONFIG unset).
DEFAULT = "salesforce"


class UnknownCrm(KeyError):
    def __str__(self) -> str:
        return self.args[0]


def names() -> tuple[str, ...]:
    """The CRMs an integration config may enable, in the README's order."""
    return tuple(FACTS)


def facts(crm: str) -> CrmFacts:
    try:
        return FACTS[crm]
    except KeyError:
        raise UnknownCrm(f"unknown CRM {crm!r}: the CRMs are {', '.join(FACTS)} "
                         "(crm_pipelines/crms/registry.py lists them)") from None


def example_config(crm: str) -> Path:
    """The example integration config in the CRM's folder (crms/<crm>/example.yaml): the folder
    its client module lives in, found without importing the client."""
    client_module = facts(crm).client.partition(":")[0]
    return Path(importlib.util.find_spec(client_module).origin).parent / "example.yaml"


def example_configs() -> list[Path]:
    return [example_config(crm) for crm in FACTS]


def crm_resource(crm: str, environment: str = "production") -> CrmResource:
    """The Dagster resource for ``crm``: required fields bound to their environment variables with
    ``dg.EnvVar`` (Dagster never shows them, and a run without them names the variable to set),
    optional ones only when set."""
    import dagster as dg

    known = facts(crm)
    make = _load(known.client)
    if not known.environment:  # it reads its own variables
        return make()
    missing = [variable for field, variable in known.environment.items()
               if field in known.required and not os.environ.get(variable)]
    if missing:
        from crm_pipelines.crms.base import CrmCredentialsMissing

        return CrmCredentialsMissing(crm=known.label, variables=missing)
    fields: dict[str, object] = {field: dg.EnvVar(variable) for field, variable in known.environment.items()
                                 if field in known.required or os.environ.get(variable)}
    return make(**fields, **known.settings(environment))


def _register_extra_crms() -> None:
    for path in filter(None, (p.strip() for p in os.environ.get(EXTRA_CRMS_ENV, "").split(","))):
        extra = _load(path)
        if not isinstance(extra, CrmFacts) or extra.name in FACTS:
            raise ValueError(f"{EXTRA_CRMS_ENV}: {path} is not the CrmFacts of a new CRM — fix: name a "
                             f"module:ATTRIBUTE holding a CrmFacts whose name is not one of {', '.join(FACTS)}")
        FACTS[extra.name] = extra


_register_extra_crms()

# The sandbox: each CRM's emulators, by the name the sandbox serves them under.
EMULATED: dict[str, str] = {name: crm for crm, known in FACTS.items() for name in known.emulators}


def emulated_names() -> tuple[str, ...]:
    """Every CRM the sandbox emulates (the Custom CRM twice: Northwind and Oldbook)."""
    return tuple(EMULATED)


def emulator(name: str) -> ModuleType:
    """The emulator module of the sandbox CRM ``name``: CRM, routes(ctx), seed(ctx, data),
    client_environment(sandbox)."""
    if name not in EMULATED:
        raise UnknownCrm(f"the sandbox emulates no CRM {name!r}: it emulates {', '.join(EMULATED)}")
    return _load(FACTS[EMULATED[name]].emulators[name])


def crm_of(name: str) -> str:
    """The integration config's CRM that the sandbox CRM ``name`` stands for (northwind → custom)."""
    emulator(name)
    return EMULATED[name]


def client_environment(name: str, sandbox: Any) -> dict[str, str]:
    """Environment variables that point the pipeline's resource at the sandbox CRM ``name`` of a
    running sandbox (sandbox/server.py's RunningSandbox: the registry does not import the sandbox)."""
    return emulator(name).client_environment(sandbox)
