"""The sandbox's Salesforce: REST + Bulk API 2.0 as simple-salesforce 1.12 speaks them.

How a connector talks to it (simple-salesforce builds login URLs from ``domain`` as
https://{domain}.salesforce.com, so the token is fetched with requests first)::

    token = requests.post(f"{base_url}/services/oauth2/token", data={
        "grant_type": "client_credentials",
        "client_id": "sandbox-client", "client_secret": "sandbox-secret"}).json()
    sf = Salesforce(instance_url=token["instance_url"], session_id=token["access_token"])

The password grant also works (username "integration@enginy-customer.com", password
"sandbox-password"). Credentials, quotas and rules are settings of the CRM
(``ctx.crm_settings("salesforce")`` or PATCH /_sandbox/settings/salesforce); see
``common.DEFAULTS``. Custom fields are added with ``add_custom_field`` or
POST /_sandbox/salesforce/fields/{object}.

Endpoint templates, as ctx.stats counts them and FaultRule.endpoint names them (V is
/services/data/{version}; the paths simple-salesforce calls are listed, most also answer without
or with a trailing slash under their own template):
  /services/oauth2/token · V/query/ · V/query/{locator} · V/queryAll/ · V/queryAll/{locator}
  V/sobjects · V/sobjects/{sobject}/describe · V/sobjects/{sobject}/ (GET, POST create)
  V/sobjects/{sobject}/{record_id} · V/sobjects/{sobject}/{field}/{value} (upsert by external id)
  V/sobjects/{sobject}/updated/ · V/sobjects/{sobject}/deleted/ · V/limits/
  V/composite/sobjects · V/composite/sobjects/{sobject}/{field}
  V/jobs/ingest · V/jobs/ingest/{job_id} · V/jobs/ingest/{job_id}/batches
  V/jobs/ingest/{job_id}/successfulResults|failedResults|unprocessedrecords
  V/jobs/query · V/jobs/query/{job_id} · V/jobs/query/{job_id}/results

Module map: schema (objects, fields, ids), soql (grammar and evaluation), reads (query rows),
writes (checks and writes), rest (REST endpoints), bulk (Bulk API 2.0), chunking (PK chunking of
bulk query jobs, and the timeout of the ones that cannot be chunked).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from crm_pipelines.sandbox.app import SandboxContext
from crm_pipelines.crms.salesforce.emulator import bulk, rest
from crm_pipelines.crms.salesforce.emulator.common import DEFAULTS, TOKEN_PATH
from crm_pipelines.crms.salesforce.emulator import schema as _schema
from crm_pipelines.crms.salesforce.emulator.schema import CRM, make_id, schema_for
from crm_pipelines.enginy.crm_side import SeedData
from crm_pipelines.sandbox.seed import seed_text, seed_time
from crm_pipelines.sandbox.store import Record

__all__ = ["CRM", "DEFAULTS", "TOKEN_PATH", "add_custom_field", "insert", "make_id", "routes", "seed"]


def routes(ctx: SandboxContext) -> list[BaseRoute]:
    async def custom_fields(request: Request) -> Response:
        """POST a field spec (or a list of them) to add custom fields; GET lists them."""
        obj = request.path_params["object"]
        settings = ctx.crm_settings(CRM)
        if request.method == "POST":
            body = await request.json()
            try:
                added = [_schema.add_custom_field(settings, obj, spec).describe()
                         for spec in (body if isinstance(body, list) else [body])]
            except (KeyError, ValueError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse(added, status_code=201)
        return JSONResponse(settings.get("custom_fields", {}).get(obj, []))

    return [
        *rest.routes(ctx),
        *bulk.routes(ctx),
        Route("/_sandbox/salesforce/fields/{object}", custom_fields, methods=["GET", "POST"]),
    ]


def add_custom_field(ctx: SandboxContext, obj: str, name: str, type: str = "string", **options: Any) -> dict:
    """Add a custom field to the org (until the next reset); answers its describe entry.

    ``options`` as in describe: label, length, picklistValues (strings), restricted, externalId,
    unique, nillable, referenceTo, createable, updateable.
    """
    spec = {"name": name, "type": type, **options}
    return _schema.add_custom_field(ctx.crm_settings(CRM), obj, spec).describe()


def insert(ctx: SandboxContext, obj: str, fields: dict[str, Any], created_at: datetime | None = None,
           modified_at: datetime | None = None) -> Record:
    """Put a record straight into the store, unchecked, as if it had always been in the org.

    For seeding and for tests that need thousands of records without thousands of calls; the
    history holds a single create, so "created exactly once" checks stay meaningful.
    """
    clean = {k: v for k, v in fields.items() if v is not None and not (isinstance(v, float) and pd.isna(v))}
    for f in schema_for(ctx.crm_settings(CRM), obj).fields.values():
        if f.createable and f.default is not None and f.name not in clean:
            clean[f.name] = f.default
    record = ctx.store.create(CRM, obj, make_id(obj), clean, at=created_at)
    if modified_at is not None and modified_at > record.created_at:
        record.modified_at = modified_at
    return record


def seed(ctx: SandboxContext, seed: SeedData) -> None:
    """Users → User, companies → Account, contacts → Contact (or Lead when is_lead)."""
    users: dict[str, str] = {}
    for row in seed.users.itertuples(index=False):
        first, last = seed_text(row.first_name), seed_text(row.last_name) or "User"
        email = seed_text(row.email)
        alias = ((first or "")[:1] + last[:4]).lower() or "user"
        record = insert(ctx, "User", {"FirstName": first, "LastName": last, "Email": email, "Username": email,
                                      "Alias": alias, "IsActive": True, "_seed_id": row.seed_id})
        users[row.seed_id] = record.id

    accounts: dict[str, str] = {}
    for row in seed.companies.itertuples(index=False):
        employees = None if pd.isna(row.employees) else int(row.employees)
        record = insert(ctx, "Account", {
            "Name": seed_text(row.name), "Website": seed_text(row.website), "Phone": seed_text(row.phone),
            "Industry": seed_text(row.industry), "NumberOfEmployees": employees,
            "LinkedIn_Company_Page__c": seed_text(row.linkedin_url), "OwnerId": users.get(row.owner_seed_id),
            "_seed_id": row.seed_id,
        }, created_at=seed_time(row.created_at), modified_at=seed_time(row.modified_at))
        accounts[row.seed_id] = record.id

    for row in seed.contacts.itertuples(index=False):
        common = {
            "FirstName": seed_text(row.first_name), "LastName": seed_text(row.last_name) or "[not provided]",
            "Email": seed_text(row.email), "Phone": seed_text(row.phone), "Title": seed_text(row.job_title),
            "LinkedIn_Profile__c": seed_text(row.linkedin_url), "OwnerId": users.get(row.owner_seed_id),
            "_seed_id": row.seed_id,
        }
        when = {"created_at": seed_time(row.created_at), "modified_at": seed_time(row.modified_at)}
        if bool(row.is_lead):
            insert(ctx, "Lead", {**common, "Company": seed_text(row.company_name) or "[not provided]",
                                 "Status": seed_text(row.lead_status) or "Open - Not Contacted"}, **when)
        else:
            company = seed_text(row.company_seed_id)
            insert(ctx, "Contact", {**common, "AccountId": accounts.get(company) if company else None}, **when)


def client_environment(sandbox) -> dict[str, str]:
    """The variables (crms/salesforce/facts.py) that point the Salesforce resource at the sandbox."""
    return {"SALESFORCE_LOGIN_URL": sandbox.base_url, "SALESFORCE_CLIENT_ID": DEFAULTS["client_id"],
            "SALESFORCE_CLIENT_SECRET": DEFAULTS["client_secret"]}
