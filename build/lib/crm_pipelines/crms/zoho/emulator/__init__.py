"""The sandbox's Zoho CRM: the accounts server's OAuth 2.0 token endpoint and the CRM API v7, as
crm_pipelines.crms.zoho.client calls them (any HTTP client will do)::

    token = requests.post(f"{base_url}/oauth/v2/token", data={"grant_type": "refresh_token",
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "refresh_token": REFRESH_TOKEN}).json()
    requests.get(f"{base_url}/crm/v7/Contacts", params={"fields": "Last_Name,Email"},
                 headers={"Authorization": f"Zoho-oauthtoken {token['access_token']}"})

Modules: Contacts (linked to an account by the ``Account_Name`` lookup), Accounts and Leads, with
an ``Owner`` (a user) each; custom fields ``Enginy_Id`` (unique, so an upsert may check
duplicates on it) and ``LinkedIn`` (fields.py). Access tokens expire after ``token_seconds``;
``expire_tokens(ctx)`` ends them at once. Settings (PATCH /_sandbox/settings/zoho):
``token_seconds``, ``tokens_per_10_minutes``, ``concurrency``, and the client id, secret and
refresh token the accounts server accepts.

Endpoint templates, as ctx.stats counts them and FaultRule.endpoint names them:
  /oauth/v2/token · /crm/v7/Contacts (GET list, POST insert, PUT update) · /crm/v7/Contacts/{id}
  /crm/v7/Contacts/upsert · /crm/v7/Contacts/deleted (Accounts and Leads alike)
  /crm/v7/coql · /crm/v7/settings/fields · /crm/v7/users
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

from .api import API, CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, TOKEN_PATH, expire_tokens, next_id, routes as _routes
from .fields import CRM

__all__ = ["API", "CLIENT_ID", "CLIENT_SECRET", "CRM", "REFRESH_TOKEN", "TOKEN_PATH", "expire_tokens", "insert",
           "routes", "seed"]

# The generator speaks Salesforce's lead statuses; Zoho's own options stand in for them.
LEAD_STATUS = {"Open - Not Contacted": "Not Contacted", "Working - Contacted": "Contacted",
               "Qualified": "Pre-Qualified"}


def routes(ctx: SandboxContext) -> list[BaseRoute]:
    return _routes(ctx)


def insert(ctx: SandboxContext, module: str, fields: dict[str, Any], created_at: datetime | None = None,
           modified_at: datetime | None = None) -> Record:
    """Put a record straight into the store, unchecked, as if it had always been in the org
    (seeding, and tests needing many records); its history holds a single create."""
    clean = {k: v for k, v in fields.items() if v is not None and (not isinstance(v, str) or v.strip())}
    record = ctx.store.create(CRM, module, next_id(ctx, module), clean, at=created_at)
    if modified_at is not None and modified_at > record.created_at:
        record.modified_at = modified_at
    return record


def seed(ctx: SandboxContext, seed: SeedData) -> None:
    """Users → users, companies → Accounts, contacts → Contacts, or Leads where the generator
    marks them as leads."""
    users: dict[str, str] = {}
    for row in seed.users.itertuples(index=False):
        first, last = seed_text(row.first_name), seed_text(row.last_name)
        users[row.seed_id] = insert(ctx, "users", {
            "first_name": first, "last_name": last, "full_name": " ".join(p for p in (first, last) if p),
            "email": seed_text(row.email), "active": True}).id

    accounts: dict[str, str] = {}
    for row in seed.companies.itertuples(index=False):
        accounts[row.seed_id] = insert(ctx, "Accounts", {
            "Account_Name": seed_text(row.name), "Website": seed_text(row.website) or seed_text(row.domain),
            "Phone": seed_text(row.phone), "Industry": seed_text(row.industry), "LinkedIn": seed_text(row.linkedin_url),
            "Employees": None if pd.isna(row.employees) else int(row.employees),
            "Owner": users.get(row.owner_seed_id), "_seed_id": row.seed_id,
        }, created_at=seed_time(row.created_at), modified_at=seed_time(row.modified_at)).id

    for row in seed.contacts.itertuples(index=False):
        common = {"First_Name": seed_text(row.first_name), "Last_Name": seed_text(row.last_name) or "(unknown)",
                  "Email": seed_text(row.email), "Phone": seed_text(row.phone), "LinkedIn": seed_text(row.linkedin_url),
                  "Owner": users.get(row.owner_seed_id), "_seed_id": row.seed_id}
        when = {"created_at": seed_time(row.created_at), "modified_at": seed_time(row.modified_at)}
        if bool(row.is_lead):
            insert(ctx, "Leads", {**common, "Company": seed_text(row.company_name), "Designation": seed_text(row.job_title),
                                  "Lead_Status": LEAD_STATUS.get(seed_text(row.lead_status) or "")}, **when)
        else:
            insert(ctx, "Contacts", {**common, "Title": seed_text(row.job_title),
                                     "Account_Name": accounts.get(seed_text(row.company_seed_id) or "")}, **when)


def client_environment(sandbox) -> dict[str, str]:
    """The variables (crms/zoho/facts.py) that point the Zoho CRM resource at the sandbox."""
    return {"ZOHO_ACCOUNTS_URL": sandbox.base_url, "ZOHO_API_DOMAIN": sandbox.base_url, "ZOHO_CLIENT_ID": CLIENT_ID,
            "ZOHO_CLIENT_SECRET": CLIENT_SECRET, "ZOHO_REFRESH_TOKEN": REFRESH_TOKEN,
            "ZOHO_CA_BUNDLE": str(sandbox.tls.ca_bundle.resolve())}
