"""What one CRM declares about itself: the facts the rest of the pipeline asks the registry for.

Plain data, importing nothing of Dagster or HTTP, so that the integration config can be checked
against the CRMs without loading their clients; clients and emulators are named by import path
and loaded only when used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Capability(StrEnum):
    """What a CRM may offer beyond the CrmClient protocol; crms/base.py says what each asks of its
    client, and tests/crms/test_conformance.py holds every client to what its facts claim."""

    LEADS = "leads"  # a lead object besides contacts: pull, describe and push take "leads"
    ACTIVITIES = "activities"  # campaign events logged as completed CRM activities (ActivityLogging)
    BULK = "bulk"  # big pulls and pushes go through a bulk API job (BulkApi)
    # Incremental pulls follow the CRM's own change token (PullResult.state), which also reports
    # deletions, rather than a modification-time window alone.
    CHANGE_TRACKING = "change tracking"


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
    capabilities: frozenset[Capability] = frozenset()
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

    def can(self, capability: Capability) -> bool:
        return capability in self.capabilities

    @property
    def has_leads(self) -> bool:
        """A Leads tab in the field mapping (a lead object to push to)."""
        return self.can(Capability.LEADS)
