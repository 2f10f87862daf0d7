"""Snapshot assets end to end, for each CRM: Dagster materializations pulling from the sandbox
over HTTPS into a real warehouse — first full pull, incremental changes and deletions, backfills
of a range of days, inbound sync rules, and the backfill command of the README."""

import json
import os
import subprocess
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Callable

import dagster as dg
import pytest
import yaml
from hubspot.crm.contacts import SimplePublicObjectInput, SimplePublicObjectInputForCreate

from crm_pipelines.crms.registry import example_config
from crm_pipelines.assets.crm import crm_associations, crm_schema, crm_snapshots, crm_users
from crm_pipelines.enginy.generator import generate_frames
from crm_pipelines.crms.base import CrmResource
from crm_pipelines.crms.dynamics.client import DynamicsResource
from crm_pipelines.crms.hubspot.client import HubSpotResource
from crm_pipelines.resources.integration import IntegrationSettings
from crm_pipelines.crms.pipedrive.client import PipedriveResource
from crm_pipelines.crms.salesforce.client import SalesforceResource
from crm_pipelines.crms.tribecrm.client import TribeCrmResource
from crm_pipelines.crms.zoho.client import ZohoResource
from crm_pipelines.resources.warehouse import Warehouse, WarehouseIOManager
from crm_pipelines.crms.dynamics import emulator as sandbox_dynamics
from crm_pipelines.crms.hubspot import emulator as sandbox_hubspot
from crm_pipelines.crms.pipedrive import emulator as sandbox_pipedrive
from crm_pipelines.crms.salesforce import emulator as sandbox_salesforce
from crm_pipelines.crms.tribecrm import emulator as sandbox_tribecrm
from crm_pipelines.crms.zoho import emulator as sandbox_zoho
from crm_pipelines.crms.registry import client_environment
from tests.pipeline import instance_in_memory

ASSETS = [crm_snapshots, crm_users, crm_associations, crm_schema]
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Crm:
    """How a test reaches one CRM of the sandbox through its official client."""

    name: str
    seed: Callable
    resource: Callable[[object], CrmResource]
    contacts: str  # the contacts object in the sandbox store
    leads: str | None
    title_field: str  # the CRM's own job-title field, for sync rules
    update_title: Callable[[CrmResource, str, str], None]
    delete: Callable[[CrmResource, str], None]
    create: Callable[[CrmResource, str], str]
    # The job title of a stored contact, where the CRM keeps it elsewhere than on the record.
    title_of: Callable[[object, object], str | None] | None = None


def _dynamics(resource: DynamicsResource, method: str, path: str, **kwargs):
    client = resource.client()
    return client._send(method, f"{client.api}/{path}", **kwargs)


CRMS = {
    "salesforce": Crm(
        "salesforce", sandbox_salesforce.seed,
        lambda sb: SalesforceResource(login_url=sb.base_url, client_id="sandbox-client",
                                      client_secret="sandbox-secret"),
        "Contact", "Lead", "Title",
        lambda r, id_, title: r.client().sf.Contact.update(id_, {"Title": title}),
        lambda r, id_: r.client().sf.Contact.delete(id_),
        lambda r, email: r.client().sf.Contact.create({"LastName": "Okafor", "Email": email})["id"]),
    "hubspot": Crm(
        "hubspot", sandbox_hubspot.seed,
        lambda sb: HubSpotResource(access_token=sandbox_hubspot.ACCESS_TOKEN, host=sb.base_url,
                                   ca_bundle=str(sb.tls.ca_bundle)),
        "contacts", None, "jobtitle",
        lambda r, id_, title: r.client().api.crm.contacts.basic_api.update(
            id_, SimplePublicObjectInput(properties={"jobtitle": title})),
        lambda r, id_: r.client().api.crm.contacts.basic_api.archive(id_),
        lambda r, email: r.client().api.crm.contacts.basic_api.create(
            SimplePublicObjectInputForCreate(properties={"lastname": "Okafor", "email": email})).id),
    "dynamics": Crm(
        "dynamics", sandbox_dynamics.seed,
        lambda sb: DynamicsResource(environment_url=sb.base_url, tenant_id=sandbox_dynamics.TENANT_NAME,
                                    client_id=sandbox_dynamics.CLIENT_ID, client_secret=sandbox_dynamics.CLIENT_SECRET,
                                    authority_host=sb.base_url, page_size=100),
        "contacts", "leads", "jobtitle",
        lambda r, id_, title: _dynamics(r, "PATCH", f"contacts({id_})", json={"jobtitle": title}),
        lambda r, id_: _dynamics(r, "DELETE", f"contacts({id_})"),
        lambda r, email: _dynamics(r, "POST", "contacts", headers={"Prefer": "return=representation"},
                                   json={"lastname": "Okafor", "emailaddress1": email}).json()["contactid"]),
    "pipedrive": Crm(
        "pipedrive", sandbox_pipedrive.seed,
        lambda sb: PipedriveResource(api_token=sandbox_pipedrive.API_TOKEN, base_url=sb.base_url,
                                     ca_bundle=str(sb.tls.ca_bundle), page_size=100),
        "persons", "leads", "job_title",
        lambda r, id_, title: r.client().rest.request("PATCH", f"/api/v2/persons/{id_}", json={"job_title": title}),
        lambda r, id_: r.client().rest.request("DELETE", f"/api/v2/persons/{id_}"),
        lambda r, email: str(r.client().rest.request("POST", "/api/v2/persons", json={
            "name": "Okafor", "last_name": "Okafor", "emails": [{"value": email, "primary": True}]})["data"]["id"])),
    "zoho": Crm(
        "zoho", sandbox_zoho.seed,
        lambda sb: ZohoResource(client_id=sandbox_zoho.CLIENT_ID, client_secret=sandbox_zoho.CLIENT_SECRET,
                                refresh_token=sandbox_zoho.REFRESH_TOKEN, accounts_url=sb.base_url,
                                api_domain=sb.base_url, ca_bundle=str(sb.tls.ca_bundle), page_size=100),
        "Contacts", "Leads", "Title",
        lambda r, id_, title: r.client().rest.request("PUT", f"{sandbox_zoho.API}/Contacts", json={
            "data": [{"id": id_, "Title": title}]}),
        lambda r, id_: r.client().rest.request("DELETE", f"{sandbox_zoho.API}/Contacts/{id_}"),
        lambda r, email: r.client().rest.request("POST", f"{sandbox_zoho.API}/Contacts", json={
            "data": [{"Last_Name": "Okafor", "Email": email}]})["data"][0]["details"]["id"]),
    "tribecrm": Crm(
        "tribecrm", sandbox_tribecrm.seed,
        lambda sb: TribeCrmResource(api_key=sandbox_tribecrm.API_KEY, base_url=sb.base_url + sandbox_tribecrm.API,
                                    ca_bundle=str(sb.tls.ca_bundle)),
        sandbox_tribecrm.PERSON, None, "JobTitle",
        # A job title is the person's employment's: the change shows on the contact all the same.
        lambda r, id_, title: r.client().rest.request("PATCH", f"{sandbox_tribecrm.CONTACT}({_employment(r, id_)})",
                                                      json={"JobTitle": title}),
        lambda r, id_: r.client().rest.request("DELETE", f"{sandbox_tribecrm.PERSON}({id_})"),
        lambda r, email: r.client().rest.request("POST", sandbox_tribecrm.PERSON, json={
            "LastName": "Okafor", "EmailAddress": email})["ID"],
        lambda sb, person: _tribecrm_title(sb, person)),
}


def _employment(resource: TribeCrmResource, person: str) -> str:
    """The person's employment; one at some organization for a person who has none."""
    rest = resource.client().rest
    found = rest.request("GET", sandbox_tribecrm.CONTACT, params={"$filter": f"Person/ID eq {person}"})["value"]
    if found:
        return found[0]["ID"]
    organization = rest.request("GET", sandbox_tribecrm.ORGANIZATION, params={"$top": 1})["value"][0]["ID"]
    return rest.request("POST", sandbox_tribecrm.CONTACT, json={"Person": {"ID": person},
                                                                "Relation": {"ID": organization}})["ID"]


def _tribecrm_title(sandbox, person) -> str | None:
    """TribeCRM keeps a job title on the person's employment."""
    return next((e.fields.get("JobTitle") for e in sandbox.ctx.store.records("tribecrm", sandbox_tribecrm.CONTACT)
                 if e.fields.get("Person.ID") == person.id), None)


@pytest.fixture(params=sorted(CRMS))
def crm(request, sandbox):
    spec = CRMS[request.param]
    spec.seed(sandbox.ctx, generate_frames(200, seed=11).crm)
    return sandbox, spec


@pytest.fixture
def resources(crm, tmp_path: Path):
    sandbox, spec = crm
    warehouse = Warehouse(url=f"duckdb:///{tmp_path / 'wh.duckdb'}")
    return {
        "crm": spec.resource(sandbox),
        "warehouse": warehouse,
        "warehouse_io_manager": WarehouseIOManager(warehouse=warehouse),
        "integration": IntegrationSettings(config_path=str(example_config(spec.name))),
    }


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    """The asset's metadata in this run."""
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == asset]
    assert events
    return {k: v.value for k, v in events[-1].materialization.metadata.items()}


def stored(sandbox, spec: Crm, obj: str | None = None) -> list:
    return sandbox.ctx.store.records(spec.name, obj or spec.contacts)


def test_the_first_pull_snapshots_every_object_and_the_next_one_only_what_changed(crm, resources) -> None:
    sandbox, spec = crm
    with instance_in_memory() as instance:
        first = dg.materialize(ASSETS, resources=resources, instance=instance)
        assert first.success
        warehouse = resources["warehouse"]
        contacts = warehouse.read_table("crm_contacts")
        assert len(contacts) == len(stored(sandbox, spec))
        assert contacts["company_name"].notna().mean() > 0.9, "names filled from crm_companies"
        assert metadata(first, "crm_contacts")["mode"] == "full"
        leads = len(stored(sandbox, spec, spec.leads)) if spec.leads else 0
        # The Salesforce example keeps only the leads its inbound sync rules describe.
        excluded = metadata(first, "crm_leads").get("records_excluded_by_sync_rules", 0)
        assert len(warehouse.read_table("crm_leads")) + excluded == leads
        assert len(warehouse.read_table("crm_users")) > 0
        assert len(warehouse.read_table("crm_associations")) == contacts["account_id"].notna().sum() > 0
        schema = warehouse.read_table("crm_schema")
        assert set(schema["object"]) == {"contacts", "companies"} | ({"leads"} if spec.leads else set())

        changed, removed = contacts["crm_id"].iloc[0], contacts["crm_id"].iloc[1]
        crm_resource = resources["crm"]
        spec.update_title(crm_resource, changed, "VP Growth")
        spec.delete(crm_resource, removed)
        created = spec.create(crm_resource, "nadia@okafor.io")

        second = dg.materialize([crm_snapshots], resources=resources, instance=instance)
        meta = metadata(second, "crm_contacts")
        assert meta["mode"] == "incremental"
        # The overlap may pull a few records again; they are recognised by their modstamp.
        assert meta["records_pulled"] - meta["records_unchanged"] == 3
        assert (meta["records_new"], meta["records_updated"], meta["records_deleted"]) == (1, 1, 1)
        after = warehouse.read_table("crm_contacts").set_index("crm_id")
        assert len(after) == len(contacts) + 1, "nothing doubled, nothing lost"
        assert after.loc[changed, "job_title"] == "VP Growth"
        assert bool(after.loc[removed, "is_deleted"])
        assert after.loc[created, "email"] == "nadia@okafor.io"
        assert meta["api_calls"] <= 4, "an incremental pull costs a page or so, not the whole CRM"


def test_a_backfill_of_several_days_re_pulls_records_modified_in_those_days(crm, resources) -> None:
    sandbox, spec = crm
    with instance_in_memory() as instance:
        assert dg.materialize([crm_snapshots], resources=resources, instance=instance).success
        rows = stored(sandbox, spec)
        days = sorted({r.modified_at.strftime("%Y-%m-%d") for r in rows})
        start, end = days[len(days) // 2], days[len(days) // 2 + 2]
        result = dg.materialize([crm_snapshots], resources=resources, instance=instance, run_config={
            "ops": {"crm_snapshots": {"config": {"backfill_from": start, "backfill_to": end}}}})
        assert result.success
        meta = metadata(result, "crm_contacts")
        in_range = [r for r in rows if start <= r.modified_at.strftime("%Y-%m-%d") <= end]
        assert meta["mode"] == "backfill"
        assert meta["records_pulled"] == len(in_range) > 0
        assert meta["records_new"] == 0, "records already in the snapshot are refreshed, not added again"
        # Per day of the range, and only those days: the records modified then.
        first, last = date.fromisoformat(start), date.fromisoformat(end)
        covered = [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
        assert list(meta["records_by_day"]) == covered
        assert {day: counts["records"] for day, counts in meta["records_by_day"].items()} == {
            day: sum(r.modified_at.strftime("%Y-%m-%d") == day for r in rows) for day in covered}
        assert {metadata(result, name)["mode"] for name in ("crm_companies", "crm_leads")} == {"backfill"}


def test_inbound_sync_rules_keep_only_the_records_they_describe(crm, resources, tmp_path: Path) -> None:
    sandbox, spec = crm
    config = yaml.safe_load((example_config(spec.name)).read_text())
    config["inbound_sync_rules"] = {"contacts": [
        [{"field": spec.title_field, "operator": "contains", "value": "Sales"}],
        [{"field": spec.title_field, "operator": "equals", "value": "CEO"}]]}
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(config))
    resources = {**resources, "integration": IntegrationSettings(config_path=str(path))}
    with instance_in_memory() as instance:
        result = dg.materialize([crm_snapshots], resources=resources, instance=instance)
    contacts = resources["warehouse"].read_table("crm_contacts")
    title = spec.title_of or (lambda sb, r: r.fields.get(spec.title_field))
    everyone = [title(sandbox, r) or "" for r in stored(sandbox, spec)]
    expected = [t for t in everyone if "sales" in t.lower() or t == "CEO"]
    assert 0 < len(contacts) == len(expected) < len(everyone)
    assert metadata(result, "crm_contacts")["records_excluded_by_sync_rules"] == len(everyone) - len(expected)


@pytest.mark.slow
@pytest.mark.parametrize("crm", ["hubspot"], indirect=True)
def test_the_readme_backfill_command_re_pulls_a_range_of_days(crm, tmp_path: Path) -> None:
    """`dagster asset materialize` with backfill_from and backfill_to as the README shows it, in a subprocess."""
    sandbox, spec = crm
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_PIPELINES_", "DAGSTER_"))}
    env.update(client_environment(spec.name, sandbox))
    env.update({"CRM_PIPELINES_CONFIG": str(example_config(spec.name)),
                "CRM_PIPELINES_WAREHOUSE_URL": f"duckdb:///{tmp_path / 'wh.duckdb'}", "DAGSTER_HOME": str(tmp_path)})
    days = sorted({r.modified_at.strftime("%Y-%m-%d") for r in stored(sandbox, spec)})
    start, end = days[len(days) // 2], days[len(days) // 2 + 29] if len(days) > 30 else days[-1]
    config = {"ops": {"crm_snapshots": {"config": {"backfill_from": start, "backfill_to": end}}}}
    done = subprocess.run(
        [str(REPO / ".venv" / "bin" / "dagster"), "asset", "materialize", "-m", "crm_pipelines.definitions",
         "--select", "crm_companies,crm_contacts,crm_leads", "--config-json", json.dumps(config)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    contacts = Warehouse(url=f"duckdb:///{tmp_path / 'wh.duckdb'}").read_table("crm_contacts")
    in_range = {r.id for r in stored(sandbox, spec) if start <= r.modified_at.strftime("%Y-%m-%d") <= end}
    assert set(contacts["crm_id"]) == in_range
