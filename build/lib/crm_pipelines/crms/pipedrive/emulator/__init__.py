"""The sandbox's Pipedrive: API v2 persons and organizations, API v1 recents, leads, fields and
users, as crm_pipelines.crms.pipedrive.client calls them (any HTTP client will do)::

    requests.get(f"{base_url}/api/v2/persons", params={"limit": 100}, headers={"x-api-token": API_TOKEN})

Persons link to an organization (``org_id``) and an owner (a user); leads link to a person or an
organization. Custom fields have hashed keys (fields.py). The rate limit is a setting of the CRM
(``api.DEFAULTS``; PATCH /_sandbox/settings/pipedrive, ``burst_limit: null`` lifts it); so is
``api_token``.

Endpoint templates, as ctx.stats counts them and FaultRule.endpoint names them:
  /api/v2/persons · /api/v2/persons/{id:int} · /api/v2/persons/search (organizations alike)
  /v1/recents · /v1/leads · /v1/leads/{id} · /v1/personFields · /v1/organizationFields · /v1/leadFields
  /v1/users
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

from .api import API_TOKEN, routes as _routes
from .fields import CRM, by_name, fields_for

__all__ = ["API_TOKEN", "CRM", "insert", "routes", "seed"]


def routes(ctx: SandboxContext) -> list[BaseRoute]:
    return _routes(ctx)


def insert(ctx: SandboxContext, obj: str, fields: dict[str, Any], created_at: datetime | None = None,
           modified_at: datetime | None = None, record_id: str | None = None) -> Record:
    """Put a record straight into the store, unchecked, as if it had always been in the account
    (seeding, and tests needing many records); its history holds a single create."""
    clean = {k: v for k, v in fields.items() if v is not None and (not isinstance(v, str) or v.strip())}
    if record_id is None:
        record_id = str(max((int(r.id) for r in ctx.store.records(CRM, obj, include_deleted=True)), default=0) + 1)
    record = ctx.store.create(CRM, obj, record_id, clean, at=created_at)
    if modified_at is not None and modified_at > record.created_at:
        record.modified_at = modified_at
    return record


def custom_key(ctx: SandboxContext, obj: str, name: str) -> str:
    return by_name(ctx.crm_settings(CRM), obj, name).key


def seed(ctx: SandboxContext, seed: SeedData) -> None:
    """Users → users, companies → organizations, contacts → persons; a contact the generator
    marks as a lead is a person with a lead on it."""
    users: dict[str, str] = {}
    for row in seed.users.itertuples(index=False):
        name = " ".join(p for p in (seed_text(row.first_name), seed_text(row.last_name)) if p)
        users[row.seed_id] = insert(ctx, "users", {"name": name, "email": seed_text(row.email), "active": True}).id

    org_keys = {name: custom_key(ctx, "organizations", name) for name in ("Website", "LinkedIn", "Employees")}
    companies: dict[str, str] = {}
    for row in seed.companies.itertuples(index=False):
        record = insert(ctx, "organizations", {
            "name": seed_text(row.name), "owner_id": users.get(row.owner_seed_id),
            org_keys["Website"]: seed_text(row.website) or seed_text(row.domain), org_keys["LinkedIn"]: seed_text(row.linkedin_url),
            org_keys["Employees"]: None if pd.isna(row.employees) else int(row.employees), "_seed_id": row.seed_id,
        }, created_at=seed_time(row.created_at), modified_at=seed_time(row.modified_at))
        companies[row.seed_id] = record.id

    linkedin = custom_key(ctx, "persons", "LinkedIn")
    for row in seed.contacts.itertuples(index=False):
        first, last = seed_text(row.first_name), seed_text(row.last_name)
        email, phone = seed_text(row.email), seed_text(row.phone)
        org_id = companies.get(seed_text(row.company_seed_id) or "")
        person = insert(ctx, "persons", {
            "name": " ".join(p for p in (first, last) if p) or email or "(no name)", "first_name": first,
            "last_name": last, "job_title": seed_text(row.job_title), "org_id": org_id,
            "owner_id": users.get(row.owner_seed_id),
            "emails": [{"value": email, "primary": True, "label": "work"}] if email else None,
            "phones": [{"value": phone, "primary": True, "label": "work"}] if phone else None,
            linkedin: seed_text(row.linkedin_url), "_seed_id": row.seed_id,
        }, created_at=seed_time(row.created_at), modified_at=seed_time(row.modified_at))
        if bool(row.is_lead):
            insert(ctx, "leads", {"title": f"{person.fields['name']} lead", "person_id": person.id,
                                  "organization_id": org_id, "owner_id": users.get(row.owner_seed_id),
                                  "_seed_id": row.seed_id},
                   created_at=person.created_at, modified_at=person.modified_at,
                   record_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"pipedrive-lead:{row.seed_id}")))


def named_fields(ctx: SandboxContext, obj: str, record: Record) -> dict[str, Any]:
    """A record's fields as a person reads them in Pipedrive: custom fields by name, the primary
    email and phone as text (for tests that check what a push wrote)."""
    names = {f.key: f.name for f in fields_for(ctx.crm_settings(CRM), obj) if f.custom}
    shown = {names.get(key, key): value for key, value in record.fields.items()}
    for key in ("emails", "phones"):
        values = shown.pop(key, None) or []
        shown[key[:-1]] = next((v["value"] for v in values if v.get("primary")), None)
    return shown


def client_environment(sandbox) -> dict[str, str]:
    """The variables (crms/pipedrive/facts.py) that point the Pipedrive resource at the sandbox."""
    return {"PIPEDRIVE_BASE_URL": sandbox.base_url, "PIPEDRIVE_API_TOKEN": API_TOKEN,
            "PIPEDRIVE_CA_BUNDLE": str(sandbox.tls.ca_bundle.resolve())}
