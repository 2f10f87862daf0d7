"""What one CRM declares about itself: the facts the rest of the pipeline asks the registry for.

Plain data, importing nothing of Dagster or HTTP, so that the integration config can be checked
against the CRMs without loading their clients; clients and emulators are named by import path
and loaded only when used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class CrmFacts:
    name: str  # the integration config's key under crm: (salesforce, hubspot, …)
    label: str  # as a user reads it in a message (Salesforce, Zoho CRM, …)
    client: str  # "module:callable" making its Dagster resource; with ``environment``, a resource class
    # Resource field → environment variable; the required ones are bound with dg.EnvVar always, the
    # others only when set. Empty: the callable reads its own variables (the Custom CRM).
    environment: Mapping[str, str] = field(default_factory=dict)
    required: frozenset[str] = frozenset()
    # Fields the resource takes from the integration config's crm.<name>.environment (sandbox/production).
    settings: Callable[[str], dict[str, object]] = lambda environment: {}
    has_leads: bool = False  # a Leads tab in the field mapping (a lead object to push to)
    leads_may_be_people: bool = False  # an Enginy contact may already be one of its leads
    duplicate_rules: bool = False  # it can refuse a create as a likely duplicate
    push_chunk: int = 100  # records per call (or per call batch) of a push
    # Fields it insists on for a new record, per object; the export gates check every create has them.
    required_on_create: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # The query language whose string literals its client writes (crms/wire/query_literals.py):
    # soql, odata, coql; None when values travel as JSON or query parameters only.
    query_language: str | None = None
    # The emulated CRMs that stand for it in the sandbox: emulated name → "module" exposing CRM,
    # routes(ctx), seed(ctx, data) and client_environment(sandbox).
    emulators: Mapping[str, str] = field(default_factory=dict)
    description: str | None = None  # shown for crm.<name> in the config's schema
