"""The sandbox's HubSpot: CRM v3 objects, properties, owners and associations v4, as
hubspot-api-client v12 calls them.

A connector uses the official client unchanged, pointed at the sandbox::

    api = HubSpot(access_token=ACCESS_TOKEN, host=base_url, ssl_ca_cert=ca_bundle)
    api.crm.contacts.basic_api.get_page(limit=100, properties=["email"])

(the client is built on urllib3, so it trusts the sandbox through ``ssl_ca_cert``, not
REQUESTS_CA_BUNDLE). Contacts, companies and the engagements tasks, emails and notes are
objects; contacts are unique by email. Limits (the ten-second burst limit, the daily limit,
search's per-second limit) are settings of the CRM (``limits.DEFAULTS``; PATCH
/_sandbox/settings/hubspot, ``None`` lifts one); so are ``access_token`` and
``search_lag_seconds``, how long a write stays out of search (0, at once, unless set).

Endpoint templates, as ctx.stats counts them and FaultRule.endpoint names them:
  /crm/v3/objects/{objectType} (GET list, POST create) · /crm/v3/objects/{objectType}/{objectId}
  /crm/v3/objects/{objectType}/search · /crm/v3/objects/{objectType}/batch/{read|create|update|upsert|archive}
  /crm/v3/properties/{objectType} · /crm/v3/properties/{objectType}/{propertyName}
  /crm/v3/owners/ · /crm/v3/owners/{ownerId}
  /crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}[/{toObjectId}]
  /crm/v4/objects/{fromObjectType}/{fromObjectId}/associations/default/{toObjectType}/{toObjectId}
  /crm/v4/associations/{fromObjectType}/{toObjectType}/labels
  /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/{create|read|archive|associate/default|labels/archive}

Module map: schema (object types, properties, values), records (ids, system properties,
writes), search, associations, limits, api (the HTTP handlers).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from starlette.routing import BaseRoute

from crm_pipelines.sandbox.app import SandboxContext
from crm_pipelines.enginy.crm_side import SeedData
from crm_pipelines.sandbox.seed import seed_text, seed_time
from crm_pipelines.sandbox.store import Record

from . import associations as links
from .api import ACCESS_TOKEN, routes as _routes
from .records import next_id
from .schema import CRM

__all__ = ["ACCESS_TOKEN", "CRM", "insert", "routes", "seed"]

# The generator speaks Salesforce's lead statuses; HubSpot's own options stand in for them.
LEAD_STATUS = {"Open - Not Contacted": "NEW", "Working - Contacted": "IN_PROGRESS", "Qualified": "OPEN_DEAL"}


def routes(ctx: SandboxContext) -> list[BaseRoute]:
    return _routes(ctx)


def insert(ctx: SandboxContext, obj: str, properties: dict[str, Any], created_at: datetime | None = None,
           modified_at: datetime | None = None) -> Record:
    """Put a record straight into the store, unchecked, as if it had always been in the portal.

    For seeding and for tests that need thousands of records without thousands of calls; the
    history holds a single create, so "created exactly once" checks stay meaningful.
    """
    clean = {k: str(v) for k, v in properties.items() if seed_text(v) is not None}
    record = ctx.store.create(CRM, obj, next_id(ctx, obj), clean, at=created_at)
    if modified_at is not None and modified_at > record.created_at:
        record.modified_at = modified_at
    return record


def seed(ctx: SandboxContext, seed: SeedData) -> None:
    """Users → owners, companies → companies, contacts → contacts with their primary company."""
    owners: dict[str, str] = {}
    for row in seed.users.itertuples(index=False):
        owner = insert(ctx, "owners", {"email": seed_text(row.email), "firstName": seed_text(row.first_name),
                                       "lastName": seed_text(row.last_name)})
        # A new dict, not an edit: the store shares a record's fields with its create change
        # until the first update, and the user id is the owner's, not what the seed created.
        owner.fields = {**owner.fields, "userId": int(owner.id) + 7_000_000}
        owners[row.seed_id] = owner.id

    companies: dict[str, str] = {}
    for row in seed.companies.itertuples(index=False):
        record = insert(ctx, "companies", {
            "name": row.name, "domain": row.domain, "website": row.website, "phone": row.phone,
            "numberofemployees": None if pd.isna(row.employees) else int(row.employees),
            "linkedin_company_page": row.linkedin_url, "hubspot_owner_id": owners.get(row.owner_seed_id),
            "_seed_id": row.seed_id,
        }, created_at=seed_time(row.created_at), modified_at=seed_time(row.modified_at))
        companies[row.seed_id] = record.id

    emails: set[str] = set()
    for row in seed.contacts.itertuples(index=False):
        # HubSpot stores emails lower-cased and keeps one contact per email; a duplicate person
        # already in the portal exists there only under another (or no) address, so the second
        # copy keeps no email.
        email = (seed_text(row.email) or "").lower() or None
        if email in emails:
            email = None
        if email is not None:
            emails.add(email)
        company_id = companies.get(seed_text(row.company_seed_id) or "")
        record = insert(ctx, "contacts", {
            "firstname": row.first_name, "lastname": row.last_name, "email": email, "phone": row.phone,
            "jobtitle": row.job_title, "hs_linkedin_url": row.linkedin_url, "company": row.company_name,
            "hubspot_owner_id": owners.get(row.owner_seed_id),
            "lifecyclestage": "lead" if bool(row.is_lead) else "customer",
            "hs_lead_status": LEAD_STATUS.get(seed_text(row.lead_status) or "") if bool(row.is_lead) else None,
            "associatedcompanyid": company_id, "_seed_id": row.seed_id,
        }, created_at=seed_time(row.created_at), modified_at=seed_time(row.modified_at))
        if company_id is not None:
            links.seed_pair(ctx, "contacts", record.id, "companies", company_id,
                            [links.UNLABELED_CONTACT_COMPANY, links.PRIMARY_COMPANY], at=record.created_at)


def client_environment(sandbox) -> dict[str, str]:
    """The variables (crms/hubspot/facts.py) that point the HubSpot resource at the sandbox."""
    return {"HUBSPOT_HOST": sandbox.base_url, "HUBSPOT_ACCESS_TOKEN": ACCESS_TOKEN,
            "HUBSPOT_CA_BUNDLE": str(sandbox.tls.ca_bundle.resolve())}
