"""The whole export for each CRM, through the code location's own job: generated Enginy data
and a seeded sandbox CRM → snapshots → matches → rollups → batches → gates → push; then a new
snapshot shows exactly the intended state, and a second run creates nothing."""

from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pytest
import yaml

from crm_pipelines.config import EXAMPLES_DIR
from crm_pipelines.enginy.database import write_tables
from crm_pipelines.enginy.generator import generate_frames
from crm_pipelines.export.values import same
from crm_pipelines.resources.custom_api import load_api
from crm_pipelines.resources.warehouse import Warehouse, parse_json_columns
from crm_pipelines.sandbox import crms, pipedrive, tribecrm
from crm_pipelines.sandbox.connection import client_environment
from crm_pipelines.sandbox.faults import FaultRule

TODAY = datetime.now(timezone.utc).strftime("%Y-%m-%d")
CONTACT_OBJECT = {"salesforce": "Contact", "hubspot": "contacts", "dynamics": "contacts", "pipedrive": "persons",
                  "northwind": "people", "oldbook": "contacts", "zoho": "Contacts", "tribecrm": tribecrm.PERSON}
ENGINY_KEY = {"salesforce": "Enginy_Id__c", "hubspot": "enginy_id", "dynamics": "crm_enginyid",
              "pipedrive": "Enginy Id", "northwind": "enginy_id", "oldbook": "enginy_id", "zoho": "Enginy_Id",
              "tribecrm": tribecrm.custom_name("Enginy Id")}
# The in-house CRMs of the sandbox are connected as the Custom CRM, through custom.yaml.
CONFIG = {"northwind": "custom", "oldbook": "custom"}


def fields_of(sandbox, crm: str, record) -> dict:
    """A stored record's fields under the names the integration config uses."""
    if crm == "pipedrive":
        return pipedrive.named_fields(sandbox.ctx, "persons", record)
    if crm == "tribecrm":  # the job title is the person's employment's
        work = [e for e in sandbox.ctx.store.records(crm, tribecrm.CONTACT) if e.fields.get("Person.ID") == record.id]
        return {**record.fields, "JobTitle": work[-1].fields.get("JobTitle") if work else None}
    if crm in CONFIG:
        contacts = load_api(EXAMPLES_DIR / "custom_api" / f"{crm}.yaml").contacts
        return {name: record.fields.get(contacts.api_name(name)) for name in contacts.fields}
    return record.fields


@pytest.fixture(params=["salesforce", "hubspot", "dynamics", "pipedrive", "northwind", "oldbook", "zoho",
                        "tribecrm"])
def pipeline(request, sandbox, tmp_path: Path, monkeypatch):
    crm = request.param
    data = generate_frames(120, seed=21)
    enginy_url = f"sqlite:///{tmp_path / 'enginy.sqlite'}"
    write_tables(enginy_url, data.enginy)
    module = next(m for m in crms.MODULES if m.CRM == crm)
    module.seed(sandbox.ctx, data.crm)
    if crm == "hubspot":
        sandbox.ctx.crm_settings("hubspot").update({"burst_limit": None, "search_per_second": None})
    env = {"CRM_PIPELINES_CONFIG": str(EXAMPLES_DIR / f"{CONFIG.get(crm, crm)}.yaml"),
           "ENGINY_DATABASE_URL": enginy_url,
           "CRM_PIPELINES_WAREHOUSE_URL": f"duckdb:///{tmp_path / 'wh.duckdb'}", **client_environment(crm, sandbox)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return crm, sandbox, Warehouse(url=env["CRM_PIPELINES_WAREHOUSE_URL"]), data


def defs_job() -> dg.JobDefinition:
    from crm_pipelines.definitions import MATERIALIZE_ALL, defs

    return defs().resolve_job_def(MATERIALIZE_ALL)


def run_everything(instance: dg.DagsterInstance, run_config: dict | None = None) -> dg.ExecuteInProcessResult:
    job = defs_job()
    return job.execute_in_process(instance=instance, partition_key=TODAY, run_config=run_config or {},
                                  raise_on_error=False)


def created_once(sandbox, crm: str) -> bool:
    records = sandbox.ctx.store.records(crm, CONTACT_OBJECT[crm], include_deleted=True)
    return all([c.op for c in r.history].count("create") == 1 for r in records)


def test_an_export_pushes_exactly_its_batch_and_a_second_run_creates_nothing(pipeline) -> None:
    crm, sandbox, warehouse, data = pipeline
    before = len(sandbox.ctx.store.records(crm, CONTACT_OBJECT[crm]))
    with dg.instance_for_test() as instance:
        first = run_everything(instance)
        assert first.success, [e.message for e in first.all_events if e.is_failure]
        batch = parse_json_columns(warehouse.read_table("contact_export_batch"), ("fields", "diff"))
        results = warehouse.read_table("crm_push_results")
        contacts = results[results["object"] == "contacts"]
        creates = batch[batch["action"] == "create"]
        assert len(creates) > 0 and (batch["action"] == "update").sum() + (batch["action"] == "skip").sum() > 0
        assert set(contacts.loc[contacts["action"] == "create", "status"]) <= {"created", "rejected"}
        created = contacts[contacts["status"] == "created"]
        after = sandbox.ctx.store.records(crm, CONTACT_OBJECT[crm])
        assert len(after) == before + len(created), "exactly the batch's creates, nothing more"
        held = {fields_of(sandbox, crm, r).get(ENGINY_KEY[crm]): fields_of(sandbox, crm, r) for r in after}
        for row in creates.head(20).to_dict("records"):
            record = held[row["enginy_id"]]
            for field, value in row["fields"].items():
                # the CRM's own spelling of the value: HubSpot answers numbers as text, …
                assert same(record.get(field), value) or str(record.get(field)).lower() == str(
                    value).lower(), (field, value, record.get(field))
        # The next snapshot sees what was pushed, and the next export finds it: no second create.
        second = run_everything(instance)
        assert second.success
        again = parse_json_columns(warehouse.read_table("contact_export_batch"), ("fields",))
        assert not set(again.loc[again["action"] == "create", "enginy_id"]) & set(created["enginy_id"])
        assert created_once(sandbox, crm)


def test_a_failing_gate_stops_the_push_and_says_why(pipeline, tmp_path: Path, monkeypatch) -> None:
    crm, sandbox, warehouse, _ = pipeline
    config = yaml.safe_load((EXAMPLES_DIR / f"{CONFIG.get(crm, crm)}.yaml").read_text())
    config["field_mapping"]["contacts"].append({"type": "fixed_value", "value": "x", "crm_field": "no_such_field"})
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("CRM_PIPELINES_CONFIG", str(path))
    with dg.instance_for_test() as instance:
        run = run_everything(instance)
        checks = [e for e in run.all_events if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION]
        gate = next(e.event_specific_data for e in checks
                    if e.event_specific_data.asset_key.path[-1] == "contact_export_batch")
        assert not gate.passed and "no_such_field" in gate.description
        pushed = [e for e in run.get_asset_materialization_events() if e.asset_key.path[-1] == "crm_push_results"]
        assert pushed == [], "the push step never started"
    write_endpoints = ("composite/sobjects", "jobs/ingest", "/batch/upsert", "/batch/update", "$batch",
                       "/api/v2/persons", "/api/v2/organizations", "/northwind/api/", "/oldbook/v1/", "/crm/v7/",
                       "/v1/odata/")
    writes = sum(n for (c, m, e), n in sandbox.ctx.stats.calls.items()
                 if c == crm and m in ("POST", "PATCH", "PUT") and any(w in e for w in write_endpoints))
    assert writes == 0, "nothing reached the CRM"


@pytest.mark.parametrize("pipeline", ["salesforce"], indirect=True)
def test_launch_options_manual_fields_an_owner_and_leads_instead_of_contacts(pipeline) -> None:
    crm, sandbox, warehouse, _ = pipeline
    owner = next(r.id for r in sandbox.ctx.store.records("salesforce", "User") if r.fields.get("IsActive"))
    launch = {"manual_values": {"Description": "Q4 outbound"}, "owner_id": owner}
    leads_before = len(sandbox.ctx.store.records("salesforce", "Lead"))
    contacts_before = len(sandbox.ctx.store.records("salesforce", "Contact"))
    with dg.instance_for_test() as instance:
        run = run_everything(instance, {"ops": {
            "contact_export_batch": {"config": launch}, "lead_export_batch": {"config": launch},
            "crm_push_results": {"config": {"as_leads": True}}}})
        assert run.success
    results = warehouse.read_table("crm_push_results")
    leads = results[(results["object"] == "leads") & (results["status"] == "created")]
    assert len(leads) > 0 and (results["object"] == "contacts").sum() == 0
    assert len(sandbox.ctx.store.records("salesforce", "Contact")) == contacts_before, "no contact was created"
    made = {r.fields.get("Enginy_Id__c"): r for r in sandbox.ctx.store.records("salesforce", "Lead")}
    assert len(made) - 1 >= leads_before  # the None key gathers the seeded leads
    for enginy_id in leads["enginy_id"]:
        record = made[enginy_id]
        assert record.fields["OwnerId"] == owner and record.fields.get("Description") is None
    # Description is a contact-tab manual field: the lead tab does not map it, so leads never get it.
    batch = parse_json_columns(warehouse.read_table("contact_export_batch"), ("fields",))
    creates = batch[batch["action"] == "create"]
    assert (creates["fields"].map(lambda f: f.get("Description")) == "Q4 outbound").all()
    assert (creates["owner_id"] == owner).all()


# The write endpoint of each CRM's contacts, as the sandbox's fault rules name it.
CONTACT_WRITES = {"pipedrive": ("POST", "/api/v2/persons"), "northwind": ("POST", "/northwind/api/people"),
                  "oldbook": ("PUT", "/oldbook/v1/contacts/external/{ref}"),
                  "tribecrm": ("POST", f"{tribecrm.API}/{tribecrm.PERSON}")}


@pytest.mark.parametrize("pipeline", sorted(CONTACT_WRITES), indirect=True)
def test_faults_during_the_push_lose_nothing_and_the_re_run_creates_nothing_twice(pipeline) -> None:
    """Throttling, server errors, an answer lost after the CRM wrote, and one write whose retries
    run out: the first run ends with that write failed, the second sends only it, and every
    Enginy record is in the CRM once, as the re-pulled snapshot shows."""
    crm, sandbox, warehouse, _ = pipeline
    method, endpoint = CONTACT_WRITES[crm]
    # Calls are counted per rule: the first write meets 503 six times and its retries run out;
    # later ones are throttled once, lose their answer after the CRM wrote, and meet a 500.
    for rule in ({"status": 503, "retry_after": 0, "times": 6}, {"status": 429, "retry_after": 0, "nth": 8},
                 {"kind": "drop", "nth": 10}, {"status": 500, "nth": 12}):
        sandbox.ctx.faults.add(FaultRule(crm=crm, endpoint=endpoint, method=method, **rule))
    with dg.instance_for_test() as instance:
        first = run_everything(instance)
        assert first.success, [e.message for e in first.all_events if e.is_failure]
        assert [rule.hits for rule in sandbox.ctx.faults.rules()] == [6, 1, 1, 1], "every fault was met"
        failed = warehouse.read_table("crm_push_results").query("object == 'contacts' and status == 'failed'")
        assert len(failed) == 1, "the write whose retries ran out"
        second = run_everything(instance)
        assert second.success
        # The second run pulled before it pushed the failed write: pull once more to see it.
        repull = defs_job().execute_in_process(instance=instance, partition_key=TODAY, asset_selection=[
            dg.AssetKey("crm_companies"), dg.AssetKey("crm_contacts")])
        assert repull.success
    results = warehouse.read_table("crm_push_results")
    contacts = results[results["object"] == "contacts"]
    assert "failed" not in set(contacts["status"]) and "pending" not in set(contacts["status"])
    assert created_once(sandbox, crm)
    pushed = [key for r in sandbox.ctx.store.records(crm, CONTACT_OBJECT[crm])
              if (key := fields_of(sandbox, crm, r).get(ENGINY_KEY[crm]))]
    assert len(pushed) == len(set(pushed)) > 0, "one CRM record per Enginy contact"
    snapshot = warehouse.read_table("crm_contacts")
    assert len(snapshot) == len(sandbox.ctx.store.records(crm, CONTACT_OBJECT[crm], include_deleted=True))


@pytest.mark.parametrize("pipeline", ["zoho"], indirect=True)
def test_faults_during_a_batched_upsert_lose_nothing_and_the_re_run_creates_nothing_twice(pipeline) -> None:
    """Zoho upserts a hundred contacts a call: the first call's retries run out and all its creates
    fail, to be sent again by the re-run; later calls meet throttling, an answer lost after Zoho
    wrote and a server error — an upsert on the Enginy id may be sent again, so every contact is in
    Zoho once."""
    crm, sandbox, warehouse, _ = pipeline
    for rule in ({"status": 503, "retry_after": 0, "times": 6}, {"status": 429, "retry_after": 0, "nth": 7},
                 {"kind": "drop", "nth": 8}, {"status": 500, "nth": 9}):
        sandbox.ctx.faults.add(FaultRule(crm=crm, endpoint="/crm/v7/Contacts/upsert", method="POST", **rule))
    with dg.instance_for_test() as instance:
        first = run_everything(instance)
        assert first.success, [e.message for e in first.all_events if e.is_failure]
        failed = warehouse.read_table("crm_push_results").query("object == 'contacts' and status == 'failed'")
        assert 1 < len(failed) <= 100 and set(failed["action"]) == {"create"}, "the first upsert call's creates"
        assert run_everything(instance).success
        assert [rule.hits for rule in sandbox.ctx.faults.rules()] == [6, 1, 1, 1], "every fault was met"
        repull = defs_job().execute_in_process(instance=instance, partition_key=TODAY, asset_selection=[
            dg.AssetKey("crm_companies"), dg.AssetKey("crm_contacts")])
        assert repull.success
    contacts = warehouse.read_table("crm_push_results").query("object == 'contacts'")
    assert "failed" not in set(contacts["status"]) and "pending" not in set(contacts["status"])
    assert created_once(sandbox, crm)
    pushed = [key for r in sandbox.ctx.store.records(crm, CONTACT_OBJECT[crm]) if (key := r.fields.get("Enginy_Id"))]
    assert len(pushed) == len(set(pushed)) >= len(failed), "one Zoho contact per Enginy contact"
    snapshot = warehouse.read_table("crm_contacts")
    assert len(snapshot) == len(sandbox.ctx.store.records(crm, CONTACT_OBJECT[crm], include_deleted=True))


LEAD_OBJECT = {"pipedrive": "leads", "zoho": "Leads"}


@pytest.mark.parametrize("pipeline", sorted(LEAD_OBJECT), indirect=True)
def test_contacts_pushed_as_leads_land_once_as_leads(pipeline) -> None:
    crm, sandbox, warehouse, _ = pipeline
    contacts_before = len(sandbox.ctx.store.records(crm, CONTACT_OBJECT[crm]))
    leads_before = len(sandbox.ctx.store.records(crm, LEAD_OBJECT[crm]))
    as_leads = {"ops": {"crm_push_results": {"config": {"as_leads": True}}}}
    with dg.instance_for_test() as instance:
        assert run_everything(instance, as_leads).success
        results = warehouse.read_table("crm_push_results")
        created = results[(results["object"] == "leads") & (results["status"] == "created")]
        assert len(created) > 0 and (results["object"] == "contacts").sum() == 0
        assert len(sandbox.ctx.store.records(crm, CONTACT_OBJECT[crm])) == contacts_before, "no contact was created"
        leads = sandbox.ctx.store.records(crm, LEAD_OBJECT[crm])
        assert len(leads) == leads_before + len(created)
        assert run_everything(instance, as_leads).success
    again = warehouse.read_table("crm_push_results")
    assert not ((again["object"] == "leads") & (again["status"] == "created")).any(), "the re-run creates no lead"
    assert len(sandbox.ctx.store.records(crm, LEAD_OBJECT[crm])) == leads_before + len(created)
