"""The whole export for each CRM, through the code location's own job: generated Enginy data
and a seeded sandbox CRM → snapshots → matches → rollups → batches → gates → push → activities;
then a new snapshot shows exactly the intended state, and a second run creates nothing.

Each CRM is pushed once per test process (the ``pushed`` fixture: a first run, a second run and
an export_push whose gate fails), and the tests below read what those runs left; scenarios that
need a CRM of their own (faults, launch options, leads) start from the same template warehouse."""

from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from crm_pipelines.cli import app
from crm_pipelines.crms.registry import example_config
from crm_pipelines.crms.custom.api import EXAMPLE_APIS
from crm_pipelines.export.values import same
from crm_pipelines.jobs import EXPORT_PUSH
from crm_pipelines.crms.custom.api import load_api
from crm_pipelines.crms.base import Write
from crm_pipelines.crms.salesforce.client import SalesforceResource
from crm_pipelines.resources.warehouse import Warehouse, parse_json_columns
from crm_pipelines.crms.pipedrive import emulator as pipedrive
from crm_pipelines.crms.tribecrm import emulator as tribecrm
from crm_pipelines.crms.registry import client_environment, emulator
from crm_pipelines.sandbox.faults import FaultRule
from tests.activities.crms import CRMS as ACTIVITY_CRMS
from tests.conftest import emptied
from tests.pipeline import AFTER_ROLLUPS, Template, instance_in_memory, run, run_after_rollups

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
        contacts = load_api(EXAMPLE_APIS / f"{crm}.yaml").contacts
        return {name: record.fields.get(contacts.api_name(name)) for name in contacts.fields}
    return record.fields


CRM_NAMES = ["salesforce", "hubspot", "dynamics", "pipedrive", "northwind", "oldbook", "zoho", "tribecrm"]
WRITE_ENDPOINTS = ("composite/sobjects", "jobs/ingest", "/batch/upsert", "/batch/update", "$batch",
                   "/api/v2/persons", "/api/v2/organizations", "/northwind/api/", "/oldbook/v1/", "/crm/v7/",
                   "/v1/odata/")


def seeded(sandbox, crm: str, template: Template, directory: Path, config: Path | None = None) -> dict[str, str]:
    """The CRM seeded with the template's CRM side (HubSpot's rate limits lifted), and the
    environment that points the code location at it and at a copy of the template."""
    emulator(crm).seed(sandbox.ctx, template.data.crm)
    if crm == "hubspot":
        sandbox.ctx.crm_settings("hubspot").update({"burst_limit": None, "search_per_second": None})
    enginy_url, warehouse_url = template.copy_to(directory)
    return {"CRM_PIPELINES_CONFIG": str(config or example_config(CONFIG.get(crm, crm))),
            "ENGINY_DATABASE_URL": enginy_url, "CRM_PIPELINES_WAREHOUSE_URL": warehouse_url,
            **client_environment(crm, sandbox)}


@dataclass
class Pushed:
    """What one CRM's export runs left: read right after each run, so later tests that reset the
    sandbox cannot change it."""

    crm: str
    before: int  # the CRM's contacts before the first run
    first: dg.ExecuteInProcessResult
    batch: pd.DataFrame  # contact_export_batch of the first run
    results: pd.DataFrame  # crm_push_results of the first run
    after: int  # the CRM's contacts after the first run
    held: dict  # Enginy id → the CRM contact's fields, after the first run
    activities: pd.DataFrame | None  # crm_activity_push of the first run, where the CRM logs activities
    logged: list[dict] | None  # the activities the CRM holds after the first run
    second: dg.ExecuteInProcessResult
    again: pd.DataFrame  # contact_export_batch of the second run
    created_once: bool
    activities_again: pd.DataFrame | None
    logged_again: list[dict] | None
    gate_run: dg.ExecuteInProcessResult  # export_push with a field the CRM does not have
    gate_writes: int  # write calls the CRM received during it


@pytest.fixture(scope="module", params=CRM_NAMES)
def pushed(request, sandbox_server, template: Template, tmp_path_factory) -> Pushed:
    crm = request.param
    sandbox = emptied(sandbox_server)
    directory = tmp_path_factory.mktemp(f"pushed-{crm}")
    config = yaml.safe_load((example_config(CONFIG.get(crm, crm))).read_text())
    if crm in ACTIVITY_CRMS:
        config["activity_sync"] = {"enabled": True, "include_message_body": True}
    (directory / "integration.yaml").write_text(yaml.safe_dump(config))
    env = seeded(sandbox, crm, template, directory, directory / "integration.yaml")
    warehouse = Warehouse(url=env["CRM_PIPELINES_WAREHOUSE_URL"])
    logs = ACTIVITY_CRMS.get(crm)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        before = len(sandbox.ctx.store.records(crm, CONTACT_OBJECT[crm]))
        with instance_in_memory() as instance:
            first = run_after_rollups(instance)
            after = sandbox.ctx.store.records(crm, CONTACT_OBJECT[crm])
            held = {fields.get(ENGINY_KEY[crm]): fields
                    for fields in (fields_of(sandbox, crm, r) for r in after)}
            state = dict(crm=crm, before=before, first=first, after=len(after), held=held,
                         batch=parse_json_columns(warehouse.read_table("contact_export_batch"), ("fields", "diff")),
                         results=warehouse.read_table("crm_push_results"),
                         activities=warehouse.read_table("crm_activity_push") if logs else None,
                         logged=logs.logged(sandbox) if logs else None)
            second = run_after_rollups(instance)
        state.update(second=second, created_once=created_once(sandbox, crm),
                     again=parse_json_columns(warehouse.read_table("contact_export_batch"), ("fields",)),
                     activities_again=warehouse.read_table("crm_activity_push") if logs else None,
                     logged_again=logs.logged(sandbox) if logs else None)
        # A person adds a field the CRM does not have and launches export_push: the gate stops it.
        config["field_mapping"]["contacts"].append({"type": "fixed_value", "value": "x", "crm_field": "no_such_field"})
        (directory / "broken.yaml").write_text(yaml.safe_dump(config))
        patch.setenv("CRM_PIPELINES_CONFIG", str(directory / "broken.yaml"))
        sandbox.ctx.stats.reset()
        from crm_pipelines.definitions import defs

        with instance_in_memory() as instance:
            gate_run = defs().resolve_job_def(EXPORT_PUSH).execute_in_process(instance=instance, raise_on_error=False)
        writes = sum(n for (c, m, e), n in sandbox.ctx.stats.calls.items()
                     if c == crm and m in ("POST", "PATCH", "PUT") and any(w in e for w in WRITE_ENDPOINTS))
    return Pushed(**state, gate_run=gate_run, gate_writes=writes)


@pytest.fixture
def pipeline(request, sandbox, template: Template, tmp_path: Path, monkeypatch):
    """A CRM of the test's own, seeded, and a copy of the template warehouse."""
    crm = request.param
    env = seeded(sandbox, crm, template, tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return crm, sandbox, Warehouse(url=env["CRM_PIPELINES_WAREHOUSE_URL"]), template.data


def created_once(sandbox, crm: str) -> bool:
    records = sandbox.ctx.store.records(crm, CONTACT_OBJECT[crm], include_deleted=True)
    return all([c.op for c in r.history].count("create") == 1 for r in records)


def test_an_export_pushes_exactly_its_batch(pushed: Pushed) -> None:
    assert pushed.first.success, [e.message for e in pushed.first.all_events if e.is_failure]
    batch, results = pushed.batch, pushed.results
    contacts = results[results["object"] == "contacts"]
    creates = batch[batch["action"] == "create"]
    assert len(creates) > 0 and (batch["action"] == "update").sum() + (batch["action"] == "skip").sum() > 0
    assert set(contacts.loc[contacts["action"] == "create", "status"]) <= {"created", "rejected"}
    created = contacts[contacts["status"] == "created"]
    assert pushed.after == pushed.before + len(created), "exactly the batch's creates, nothing more"
    ledger = {e.asset_key.path[-1]: e.materialization.metadata for e in pushed.first.get_asset_materialization_events()
              }["export_ledger"]
    assert ledger["writes_created"].value >= len(created), "Dagster shows the ledger the push wrote"
    for row in creates.head(20).to_dict("records"):
        record = pushed.held[row["enginy_id"]]
        for field, value in row["fields"].items():
            # the CRM's own spelling of the value: HubSpot answers numbers as text, …
            assert same(record.get(field), value) or str(record.get(field)).lower() == str(
                value).lower(), (field, value, record.get(field))


# The field a contact names its one company in, where the CRM holds it on the contact.
COMPANY_FIELD = {"salesforce": "AccountId", "dynamics": "_parentcustomerid_value"}


def test_a_contact_created_with_a_company_the_same_push_created_is_linked_to_it(pushed: Pushed) -> None:
    if pushed.crm not in COMPANY_FIELD:
        pytest.skip("the CRM keeps company links apart from the contact (see tests/connectors/test_associations.py)")
    companies = pushed.results[(pushed.results["object"] == "companies") & (pushed.results["status"] == "created")]
    made = dict(zip(companies["enginy_id"], companies["crm_id"]))
    batch = pushed.batch
    linked = batch[(batch["action"] == "create") & batch["company_enginy_id"].isin(list(made))]
    assert len(linked), "the demo data has contacts of companies the CRM does not hold yet"
    for enginy_id, company in zip(linked["enginy_id"], linked["company_enginy_id"]):
        if enginy_id in pushed.held:
            assert pushed.held[enginy_id].get(COMPANY_FIELD[pushed.crm]) == made[company]


def test_the_next_snapshot_sees_what_was_pushed_and_a_second_run_creates_nothing(pushed: Pushed) -> None:
    assert pushed.second.success
    contacts = pushed.results[pushed.results["object"] == "contacts"]
    created = contacts[contacts["status"] == "created"]
    again = pushed.again
    assert not set(again.loc[again["action"] == "create", "enginy_id"]) & set(created["enginy_id"])
    assert pushed.created_once


def test_the_batch_preview_shows_updates_before_creates_with_clean_values(pushed: Pushed) -> None:
    """What a person reads before a push: rejections, then the updates that overwrite CRM data
    (old → new), then creates (their values); no "nan" CRM id, no "None →" on a create."""
    batch = next(e for e in pushed.first.get_asset_materialization_events()
                 if e.asset_key.path[-1] == "contact_export_batch")
    preview = batch.materialization.metadata["diff_preview"].value
    rows = [line.strip("| ").split(" | ") for line in preview.splitlines()[2:]]
    order = {"reject": 0, "update": 1, "create": 2}
    actions = [row[1] for row in rows]
    assert actions == sorted(actions, key=order.__getitem__) and "create" in actions, preview
    if "update" in set(pushed.batch["action"]):
        assert actions[0] in ("reject", "update"), "an update is shown ahead of the creates"
    for _, action, crm_id, what in rows:
        assert crm_id != "nan" and (crm_id == "") == (action == "create"), preview
        assert action != "create" or ("→" not in what and "None" not in what), preview


def test_a_failing_gate_stops_the_push_and_says_why(pushed: Pushed) -> None:
    checks = [e for e in pushed.gate_run.all_events if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION]
    gate = next(e.event_specific_data for e in checks
                if e.event_specific_data.asset_key.path[-1] == "contact_export_batch")
    assert not gate.passed and "no_such_field" in gate.description
    # The stop names its rows: the check's metadata lists the rejected rows, each with the reason.
    assert gate.metadata["rejected"].value > 0
    table = gate.metadata["rejected_rows"].value
    first = table.splitlines()[2].split(" | ")
    assert first[0].removeprefix("| ") in set(pushed.batch["enginy_id"].astype(str))
    assert first[1].startswith("no_such_field: the CRM has no such field"), table
    sent = [e for e in pushed.gate_run.get_asset_materialization_events() if e.asset_key.path[-1] == "crm_push_results"]
    assert sent == [], "the push step never started"
    assert pushed.gate_writes == 0, "nothing reached the CRM"


@pytest.mark.parametrize("pushed", sorted(ACTIVITY_CRMS), indirect=True)
def test_after_the_push_each_sent_event_of_a_crm_contact_is_logged_once_on_it(pushed: Pushed) -> None:
    results = pushed.activities
    logged = results[results["status"] == "logged"]
    assert len(logged) > 0 and set(results["status"]) <= {"logged", "waiting"}
    held = {a["key"]: a for a in pushed.logged}
    assert sorted(held) == sorted(logged["event_id"]), "exactly the logged events are in the CRM"
    for row in logged.to_dict("records"):
        assert held[row["event_id"]]["record"] == row["crm_record_id"]
        assert held[row["event_id"]]["completed"]
    credited = logged[logged["owner_rule"] != "crm_default"]
    assert len(credited) > 0 and all(held[e]["owner"] == o for e, o in zip(credited["event_id"],
                                                                           credited["owner_id"]))
    # The second run deals only with the events not logged before: the waiting ones, none logged now.
    again = pushed.activities_again
    assert set(again["event_id"]) == set(results.loc[results["status"] == "waiting", "event_id"])
    assert set(again["status"]) <= {"waiting"}
    assert all(a["creates"] == 1 for a in pushed.logged_again), "nothing was logged twice"
    assert len(pushed.logged_again) == len(logged)


@pytest.mark.parametrize("pipeline", ["salesforce"], indirect=True)
def test_launch_options_manual_fields_an_owner_and_leads_instead_of_contacts(pipeline) -> None:
    crm, sandbox, warehouse, _ = pipeline
    owner = next(r.id for r in sandbox.ctx.store.records("salesforce", "User") if r.fields.get("IsActive"))
    launch = {"manual_values": {"Description": "Q4 outbound"}, "owner_id": owner}
    leads_before = len(sandbox.ctx.store.records("salesforce", "Lead"))
    contacts_before = len(sandbox.ctx.store.records("salesforce", "Contact"))
    with instance_in_memory() as instance:
        run = run_after_rollups(instance, {"ops": {
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


@pytest.mark.parametrize("pipeline", ["salesforce"], indirect=True)
def test_a_create_the_crm_refused_as_a_duplicate_is_not_sent_again_each_run(pipeline) -> None:
    """Salesforce's duplicate rule finds a twin our matching rule does not (another name, the same
    email): its refusal is recorded once; the next run's batch rejects the create naming it and
    sends nothing; a launch with resend_refused_duplicates sends it again."""
    crm, sandbox, warehouse, _ = pipeline
    with instance_in_memory() as instance:
        assert run(instance, dg.AssetSelection.assets("contact_export_batch").upstream() & AFTER_ROLLUPS).success
        planned = parse_json_columns(warehouse.read_table("contact_export_batch"), ("fields",))
        create = planned[planned["action"].eq("create") & planned["fields"].map(lambda f: bool(f.get("Email")))].iloc[0]
        # Someone adds the twin in Salesforce, under another name (its Enginy id is no Enginy record's).
        client = SalesforceResource(login_url=sandbox.base_url, client_id="sandbox-client",
                                    client_secret="sandbox-secret").client()
        twin = client.push("contacts", [
            Write("twin", "create", "not-from-enginy", {"LastName": "Twin", "Email": create["fields"]["Email"]})])
        assert [r.status for r in twin] == ["created"]

        def writes() -> int:
            return sum(n for (c, m, e), n in sandbox.ctx.stats.calls.items()
                       if c == crm and m in ("POST", "PATCH") and ("composite/sobjects" in e or "jobs/ingest" in e))

        def ledger() -> pd.DataFrame:
            entries = warehouse.read_table("export_ledger")
            return entries[entries["enginy_id"].eq(create["enginy_id"])]

        assert run_after_rollups(instance).success
        assert ledger()[["action", "status", "error_code"]].values.tolist() == [
            ["create", "rejected", "DUPLICATES_DETECTED"]]
        sandbox.ctx.stats.reset()
        assert run_after_rollups(instance).success
        again = warehouse.read_table("contact_export_batch").set_index("enginy_id").loc[create["enginy_id"]]
        assert again["action"] == "reject" and "refused its create as a duplicate" in again["reason"]
        assert writes() == 0 and len(ledger()) == 1
        resend = {"ops": {"contact_export_batch": {"config": {"resend_refused_duplicates": True}}}}
        assert run_after_rollups(instance, resend).success
        assert writes() == 1 and ledger()["status"].tolist() == ["rejected", "rejected"]


# The CRMs that write one record a call, one per write style, with their contacts' write endpoint
# as the sandbox's fault rules name it: Pipedrive creates (and finds a create whose answer was
# lost by its Enginy id, rest.create_once, as Northwind and TribeCRM do); Oldbook upserts on the
# Enginy id. Each connector's own lost-answer lookup is tested in tests/connectors/.
CONTACT_WRITES = {"pipedrive": ("POST", "/api/v2/persons"), "oldbook": ("PUT", "/oldbook/v1/contacts/external/{ref}")}


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
    with instance_in_memory() as instance:
        first = run_after_rollups(instance)
        assert first.success, [e.message for e in first.all_events if e.is_failure]
        assert [rule.hits for rule in sandbox.ctx.faults.rules()] == [6, 1, 1, 1], "every fault was met"
        failed = warehouse.read_table("crm_push_results").query("object == 'contacts' and status == 'failed'")
        assert len(failed) == 1, "the write whose retries ran out"
        second = run_after_rollups(instance)
        assert second.success
        # The second run pulled before it pushed the failed write: pull once more to see it.
        repull = run(instance, dg.AssetSelection.assets("crm_companies", "crm_contacts", "crm_leads"))
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
    with instance_in_memory() as instance:
        first = run_after_rollups(instance)
        assert first.success, [e.message for e in first.all_events if e.is_failure]
        failed = warehouse.read_table("crm_push_results").query("object == 'contacts' and status == 'failed'")
        assert 1 < len(failed) <= 100 and set(failed["action"]) == {"create"}, "the first upsert call's creates"
        assert run_after_rollups(instance).success
        assert [rule.hits for rule in sandbox.ctx.faults.rules()] == [6, 1, 1, 1], "every fault was met"
        repull = run(instance, dg.AssetSelection.assets("crm_companies", "crm_contacts", "crm_leads"))
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
    with instance_in_memory() as instance:
        assert run_after_rollups(instance, as_leads).success
        results = warehouse.read_table("crm_push_results")
        created = results[(results["object"] == "leads") & (results["status"] == "created")]
        assert len(created) > 0 and (results["object"] == "contacts").sum() == 0
        assert len(sandbox.ctx.store.records(crm, CONTACT_OBJECT[crm])) == contacts_before, "no contact was created"
        leads = sandbox.ctx.store.records(crm, LEAD_OBJECT[crm])
        assert len(leads) == leads_before + len(created)
        # The batches are the ones just pushed: the dry run says so, and that a push sends the lead batch.
        shown = CliRunner().invoke(app, ["dry-run", "--as-leads"]).output.splitlines()
        assert shown[1].startswith("WARNING: the CRM changed after these batches were built: a push recorded")
        assert [line for line in shown if line.startswith("contact_export_batch:")][0].endswith(
            "NOT PUSHED: launched with as_leads: true, a push sends the lead batch instead")
        assert "lead_export_batch, as a push sends it:" in shown
        assert run_after_rollups(instance, as_leads).success
    again = warehouse.read_table("crm_push_results")
    assert not ((again["object"] == "leads") & (again["status"] == "created")).any(), "the re-run creates no lead"
    assert len(sandbox.ctx.store.records(crm, LEAD_OBJECT[crm])) == leads_before + len(created)
