"""The sandbox's TribeCRM: its OData REST API with an API key, as crm_pipelines.crms.tribecrm.client
calls it (any HTTP client will do)::

    requests.get(f"{base_url}/v1/odata/Relation_Person", params={"$filter": "LastName eq 'Jansen'"},
                 headers={"Authorization": f"Bearer {API_KEY}"})

Persons and organizations are Relations; a person works at an organization through a
``Relationship_Person_Contact_Standard`` (its ``Relation`` the organization, its ``Person`` the
person, with the job title); users are the account's employees. Custom fields carry GUID API
names (``entities.custom_name(label)``); ``$metadata`` gives their labels. Settings (PATCH
/_sandbox/settings/tribecrm): ``api_key``, ``burst_limit`` (None lifts it), ``window_seconds``,
``max_page_size``.

Endpoint templates, as ctx.stats counts them and FaultRule.endpoint names them:
  /v1/odata/Relation_Person (GET list, POST create) · /v1/odata/Relation_Person({key}) (GET, PATCH,
  PUT, DELETE), the other entity sets alike · /v1/odata/$metadata
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pandas as pd
from starlette.routing import BaseRoute

from crm_pipelines.sandbox.app import SandboxContext
from crm_pipelines.enginy.crm_side import SeedData
from crm_pipelines.sandbox.seed import seed_text, seed_time
from crm_pipelines.sandbox.store import Record

from .api import API, API_KEY, routes as _routes
from .entities import CONTACT, CRM, EMPLOYEE, ORGANIZATION, PERSON, custom_name

__all__ = ["API", "API_KEY", "CONTACT", "CRM", "EMPLOYEE", "ORGANIZATION", "PERSON", "custom_name", "insert",
           "routes", "seed"]


def routes(ctx: SandboxContext) -> list[BaseRoute]:
    return _routes(ctx)


def insert(ctx: SandboxContext, entity_set: str, fields: dict[str, Any], created_at: datetime | None = None,
           modified_at: datetime | None = None, key: str | None = None) -> Record:
    """Put a record straight into the store, unchecked, as if it had always been in the account
    (seeding, and tests needing many records); its history holds a single create. Links are
    given as ``{"Person.ID": …, "Relation.ID": …}``."""
    clean = {k: v for k, v in fields.items() if v is not None and (not isinstance(v, str) or v.strip())}
    record = ctx.store.create(CRM, entity_set, key or str(uuid.uuid4()), clean, at=created_at)
    if modified_at is not None and modified_at > record.created_at:
        record.modified_at = modified_at
    return record


def _key(kind: str, seed_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"tribecrm-{kind}:{seed_id}"))


def seed(ctx: SandboxContext, seed: SeedData) -> None:
    """Users → employees (each a person too, as in TribeCRM), companies → organizations, contacts
    → persons working at their company. Nothing seeded was made by Enginy: no Enginy Id is set."""
    for row in seed.users.itertuples(index=False):
        person = insert(ctx, PERSON, {"FirstName": seed_text(row.first_name), "LastName": seed_text(row.last_name),
                                      "EmailAddress": seed_text(row.email)}, key=_key("user", row.seed_id))
        insert(ctx, EMPLOYEE, {"Person.ID": person.id, "EmailAddress": seed_text(row.email), "IsActive": True},
               key=_key("employee", row.seed_id))

    organizations: dict[str, str] = {}
    for row in seed.companies.itertuples(index=False):
        organizations[row.seed_id] = insert(ctx, ORGANIZATION, {
            "Name": seed_text(row.name), "Website": seed_text(row.website) or seed_text(row.domain),
            "PhoneNumber": seed_text(row.phone), "LinkedIn": seed_text(row.linkedin_url),
            "NumberOfEmployees": None if pd.isna(row.employees) else int(row.employees), "_seed_id": row.seed_id,
        }, created_at=seed_time(row.created_at), modified_at=seed_time(row.modified_at), key=_key("org", row.seed_id)).id

    for row in seed.contacts.itertuples(index=False):
        when = {"created_at": seed_time(row.created_at), "modified_at": seed_time(row.modified_at)}
        person = insert(ctx, PERSON, {
            "FirstName": seed_text(row.first_name), "LastName": seed_text(row.last_name) or "(unknown)",
            "EmailAddress": seed_text(row.email), "PhoneNumber": seed_text(row.phone), "LinkedIn": seed_text(row.linkedin_url),
            "_seed_id": row.seed_id}, key=_key("person", row.seed_id), **when)
        organization = organizations.get(seed_text(row.company_seed_id) or "")
        if organization is not None:
            insert(ctx, CONTACT, {"Person.ID": person.id, "Relation.ID": organization,
                                  "JobTitle": seed_text(row.job_title), "EmailAddress": seed_text(row.email)},
                   key=_key("contact", row.seed_id), **when)


def client_environment(sandbox) -> dict[str, str]:
    """The variables (crms/tribecrm/facts.py) that point the TribeCRM resource at the sandbox."""
    return {"TRIBECRM_BASE_URL": sandbox.base_url + API, "TRIBECRM_API_KEY": API_KEY,
            "TRIBECRM_CA_BUNDLE": str(sandbox.tls.ca_bundle.resolve())}
