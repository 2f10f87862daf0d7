"""What the activity tests need of each CRM: a small seeded org (users, two contacts, a lead where
the CRM has leads), its client through the official library, and each logged activity read back
from the sandbox's store as the CRM holds it (key, record, owner, subject, description)."""

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

import pandas as pd

from crm_pipelines.crms.dynamics import emulator as sandbox_dynamics
from crm_pipelines.crms.hubspot import emulator as sandbox_hubspot
from crm_pipelines.crms.hubspot.client import HubSpotResource
from crm_pipelines.crms.salesforce import emulator as sandbox_salesforce
from crm_pipelines.crms.hubspot.emulator import associations as hubspot_links
from crm_pipelines.enginy.crm_side import SeedData
from tests.connectors.test_push import CRMS as PUSH_CRMS

SEEDED = datetime(2024, 1, 1, tzinfo=timezone.utc)
# HubSpot's search trails its writes by seconds. The sandbox makes a HubSpot org's search lag
# this long, so a lost create looked up by search too soon is found missing and sent again.
HUBSPOT_SEARCH_LAG = 1.0


def _salesforce(sandbox, obj: str, f: dict[str, Any]) -> dict[str, Any]:
    return {"key": f.get("Enginy_Activity_Id__c"), "record": f.get("WhoId"), "owner": f.get("OwnerId"),
            "subject": f.get("Subject"), "description": f.get("Description"),
            "completed": f.get("Status") == "Completed", "kind": f.get("TaskSubtype")}


def _hubspot(sandbox, obj: str, f: dict[str, Any], record_id: str) -> dict[str, Any]:
    contacts = hubspot_links.linked(sandbox.ctx, obj, record_id, "contacts")
    return {"key": f.get("enginy_activity_id"), "record": contacts[0][0] if len(contacts) == 1 else contacts,
            "owner": f.get("hubspot_owner_id"), "subject": f.get("hs_email_subject") or f.get("hs_task_subject"),
            "description": f.get("hs_email_text") or f.get("hs_task_body"),
            "completed": f.get("hs_task_status") == "COMPLETED" or f.get("hs_email_status") == "SENT",
            "kind": f.get("hs_task_type") or obj}


def _dynamics(sandbox, obj: str, f: dict[str, Any]) -> dict[str, Any]:
    return {"key": f.get(sandbox_dynamics.ENGINY_KEY), "record": f.get("_regardingobjectid_value"),
            "owner": f.get("_ownerid_value"), "subject": f.get("subject"), "description": f.get("description"),
            "completed": (f.get("statecode"), f.get("statuscode")) == (1, 5),
            "kind": (f.get("_lookup_types") or {}).get("regardingobjectid")}


@dataclass
class ActivityCrm:
    name: str
    objects: tuple[str, ...]  # where logged activities live in the sandbox's store
    create: tuple[str, str]  # (method, endpoint template) of the call that creates them
    ceiling: int  # activities per create call
    has_leads: bool
    view: Callable[..., dict[str, Any]]

    def resource(self, sandbox):
        resource = PUSH_CRMS[self.name].resource(sandbox)
        if self.name == "hubspot":  # the client waits out the lag this org's search has
            return HubSpotResource(**{**resource.model_dump(), "search_lag_seconds": HUBSPOT_SEARCH_LAG})
        return resource

    def logged(self, sandbox) -> list[dict[str, Any]]:
        """Every activity the CRM holds, with how many times it was created."""
        out = []
        for obj in self.objects:
            for r in sandbox.ctx.store.records(self.name, obj, include_deleted=True):
                args = (sandbox, obj, r.fields, r.id) if self.name == "hubspot" else (sandbox, obj, r.fields)
                out.append({**self.view(*args), "id": r.id, "creates": [c.op for c in r.history].count("create")})
        return out

    def create_calls(self, sandbox) -> int:
        method, endpoint = self.create
        return sum(n for (c, m, e), n in sandbox.ctx.stats.calls.items()
                   if c == self.name and m == method and e == endpoint)


CRMS = {
    "salesforce": ActivityCrm("salesforce", ("Task",), ("POST", "/services/data/{version}/composite/sobjects"),
                              200, True, _salesforce),
    "hubspot": ActivityCrm("hubspot", ("emails", "tasks"), ("POST", "/crm/v3/objects/{objectType}/batch/create"),
                           100, False, _hubspot),
    "dynamics": ActivityCrm("dynamics", ("tasks",), ("POST", "/api/data/v9.2/$batch"), 100, True, _dynamics),
}


@dataclass
class Org:
    """A seeded CRM: its people (Enginy contact id → CRM object and id) and users (name → CRM id)."""

    crm: ActivityCrm
    sandbox: Any
    people: dict[str, tuple[str, str]]
    users: dict[str, str]


def _ids(sandbox, crm: str, obj: str) -> dict[str, str]:
    return {r.fields["_seed_id"]: r.id for r in sandbox.ctx.store.records(crm, obj) if r.fields.get("_seed_id")}


def seed_org(sandbox, crm: ActivityCrm) -> Org:
    """Users ada, bob and cy; contacts c1, c2 and person c3 (a lead where the CRM has leads)."""
    users = pd.DataFrame({"seed_id": ["ada", "bob", "cy"], "first_name": ["Ada", "Bob", "Cy"],
                          "last_name": ["Lovelace", "Babbage", "Young"],
                          "email": ["ada@seller.example", "bob@seller.example", "cy@seller.example"]})
    people = pd.DataFrame({"seed_id": ["c1", "c2", "c3"], "first_name": ["Grace", "Alan", "Edsger"],
                           "last_name": ["Hopper", "Turing", "Dijkstra"],
                           "email": ["grace@buyer.example", "alan@buyer.example", "edsger@buyer.example"],
                           "phone": None, "job_title": None, "linkedin_url": None, "company_seed_id": None,
                           "company_name": "Buyer", "owner_seed_id": "cy", "lead_status": None,
                           "created_at": SEEDED, "modified_at": SEEDED, "is_lead": [False, False, crm.has_leads]})
    seed = SeedData(users, pd.DataFrame(columns=["seed_id", "name", "domain", "website", "linkedin_url", "phone",
                                                 "industry", "employees", "owner_seed_id", "created_at",
                                                 "modified_at"]), people)
    module = {"salesforce": sandbox_salesforce, "hubspot": sandbox_hubspot, "dynamics": sandbox_dynamics}[crm.name]
    module.seed(sandbox.ctx, seed)
    if crm.name == "hubspot":
        sandbox.ctx.crm_settings("hubspot")["search_lag_seconds"] = HUBSPOT_SEARCH_LAG
    contacts_obj, leads_obj, users_obj = {"salesforce": ("Contact", "Lead", "User"),
                                          "hubspot": ("contacts", None, "owners"),
                                          "dynamics": ("contacts", "leads", "systemusers")}[crm.name]
    found = {k: ("contacts", v) for k, v in _ids(sandbox, crm.name, contacts_obj).items()}
    if leads_obj:
        found |= {k: ("leads", v) for k, v in _ids(sandbox, crm.name, leads_obj).items()}
    if crm.name == "hubspot":  # owners keep no seed id: they are known by email
        by_email = {r.fields["email"]: r.id for r in sandbox.ctx.store.records("hubspot", "owners")}
        user_ids = {u: by_email[e] for u, e in zip(users["seed_id"], users["email"])}
    else:
        user_ids = _ids(sandbox, crm.name, users_obj)
    return Org(crm, sandbox, found, user_ids)
