"""The generator's CRM side as Dataverse rows: users → systemusers, companies → accounts,
people → contacts (or leads when ``is_lead``).

Ids are derived from the seed ids (UUID 5), so the same seed always gives the same GUIDs, and
each row keeps its ``seed_id`` in the hidden ``_seed_id`` field for tests to join back to the
generator's labels. Rows keep the generator's created/modified times.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

import pandas as pd

from crm_pipelines.sandbox.app import SandboxContext
from crm_pipelines.enginy.crm_side import SeedData
from crm_pipelines.sandbox.store import utc_now

from crm_pipelines.sandbox.odata import format_datetime
from .schema import CRM, INDUSTRY, TABLES
from .state import state

_SEED_NS = uuid.UUID("0b6c7a8e-54f1-4d0e-a7c3-93f2e1d5b6a4")
INDUSTRY_CODES = {text.casefold(): value for value, text in INDUSTRY} | {"finance": 16}
LEAD_STATUS = {"Open - Not Contacted": (0, 1), "Working - Contacted": (0, 2), "Qualified": (1, 3)}


def seed_guid(kind: str, seed_id: Any) -> str:
    return str(uuid.uuid5(_SEED_NS, f"{kind}/{seed_id}"))


def _value(value: Any) -> Any:
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if hasattr(value, "item"):
        return value.item()
    return value


def _when(value: Any) -> datetime:
    value = _value(value)
    if value is None:
        return utc_now()
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.to_pydatetime().astimezone(timezone.utc)


def _put(ctx: SandboxContext, logical_name: str, record_id: str, fields: dict[str, Any],
         created: Any, modified: Any, owner: str | None = None) -> None:
    table = TABLES[logical_name]
    created_at, modified_at = _when(created), _when(modified if modified is not None else created)
    row = {k: v for k, v in fields.items() if v is not None}
    row[table.primary_id] = record_id
    if owner is not None:
        row["_ownerid_value"] = owner
        row.setdefault("_lookup_types", {})["ownerid"] = "systemuser"
    if "fullname" in table.by_name:
        row["fullname"] = " ".join(p for p in (row.get("firstname"), row.get("lastname")) if p)
    if "statecode" in table.by_name:
        row.setdefault("statecode", 0)
        row.setdefault("statuscode", 1)
    row["createdon"], row["modifiedon"] = format_datetime(created_at), format_datetime(modified_at)
    row["versionnumber"] = state(ctx).next_version()
    record = ctx.store.create(CRM, table.entity_set, record_id, row, at=created_at)
    record.modified_at = modified_at


def seed_tables(ctx: SandboxContext, seed: SeedData) -> None:
    users = {}
    for u in seed.users.itertuples(index=False):
        user_id = users[u.seed_id] = seed_guid("systemuser", u.seed_id)
        _put(ctx, "systemuser", user_id, {
            "firstname": _value(u.first_name), "lastname": _value(u.last_name),
            "internalemailaddress": _value(u.email), "domainname": _value(u.email),
            "isdisabled": False, "_seed_id": u.seed_id}, None, None)
    accounts = {}
    for c in seed.companies.itertuples(index=False):
        account_id = accounts[c.seed_id] = seed_guid("account", c.seed_id)
        industry = _value(c.industry)
        employees = _value(c.employees)
        _put(ctx, "account", account_id, {
            "name": _value(c.name), "websiteurl": _value(c.website),
            "telephone1": _value(c.phone),
            "industrycode": INDUSTRY_CODES.get(str(industry).casefold()) if industry else None,
            "numberofemployees": int(employees) if employees is not None else None,
            "crm_linkedinurl": _value(c.linkedin_url), "_seed_id": c.seed_id,
        }, c.created_at, c.modified_at, users.get(_value(c.owner_seed_id)))
    for p in seed.contacts.itertuples(index=False):
        company = accounts.get(_value(p.company_seed_id))
        common = {"firstname": _value(p.first_name), "lastname": _value(p.last_name),
                  "emailaddress1": _value(p.email), "telephone1": _value(p.phone),
                  "jobtitle": _value(p.job_title), "crm_linkedinurl": _value(p.linkedin_url),
                  "_seed_id": p.seed_id}
        owner = users.get(_value(p.owner_seed_id))
        if bool(p.is_lead):
            statecode, statuscode = LEAD_STATUS.get(_value(p.lead_status), (0, 1))
            fields = {**common, "companyname": _value(p.company_name),
                      "subject": f"Lead: {_value(p.company_name) or _value(p.last_name)}",
                      "statecode": statecode, "statuscode": statuscode}
            if company:
                fields["_parentaccountid_value"] = company
                fields["_lookup_types"] = {"parentaccountid": "account"}
            _put(ctx, "lead", seed_guid("lead", p.seed_id), fields, p.created_at, p.modified_at, owner)
        else:
            fields = dict(common)
            if company:
                fields["_parentcustomerid_value"] = company
                fields["_lookup_types"] = {"parentcustomerid": "account"}
            _put(ctx, "contact", seed_guid("contact", p.seed_id), fields, p.created_at,
                 p.modified_at, owner)
