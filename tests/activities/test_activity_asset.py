"""crm_activity_push materialized with Dagster against each sandbox CRM: the warehouse holds what the
upstream assets would have written (Enginy's campaign tables, the contact matches, the CRM users,
the record push's ledger); the config file says whether activities sync and with message bodies."""

from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pandas as pd
import yaml

from crm_pipelines.crms.registry import example_config
from crm_pipelines.assets.activities import crm_activity_push
from crm_pipelines.export.activities import WAITING_NEW
from crm_pipelines.resources.integration import IntegrationSettings
from crm_pipelines.crms.pipedrive.client import PipedriveResource
from crm_pipelines.resources.warehouse import Warehouse, WarehouseIOManager
from crm_pipelines.crms.pipedrive.emulator import API_TOKEN

AT = datetime(2024, 5, 2, 9, 30, tzinfo=timezone.utc)
BODY = "Hi Grace, a thought about your outbound team."


def enginy_tables(people: list[str]) -> dict[str, pd.DataFrame]:
    """Two campaigns: Ada's identity (mapped to her CRM user) reaches c1 and c2, Bob's (unmapped:
    his Enginy user's email finds his CRM user) reaches c3. Each person gets an email, a call, a LinkedIn message and an
    invitation; an open and a profile visit are not activities."""
    users = pd.DataFrame({"id": ["u-ada", "u-bob"], "first_name": ["Ada", "Bob"], "last_name": ["L", "B"],
                          "email": ["ada@enginy.example", "bob@seller.example"], "created_at": AT})
    identities = pd.DataFrame({"id": ["id-ada", "id-bob"], "name": ["Ada", "Bob"], "email": None,
                               "linkedin_url": None, "user_id": ["u-ada", "u-bob"], "created_at": AT})
    campaigns = pd.DataFrame({"id": ["cmp-a", "cmp-b"], "name": ["Q4 Outbound", "Founders"],
                              "identity_id": ["id-ada", "id-bob"], "created_at": AT})
    kinds = ["email", "call", "linkedin_message", "linkedin_connection_request", "linkedin_profile_visit"]
    steps = pd.DataFrame([{"id": f"{c}-{k}", "campaign_id": c, "position": i + 1, "step_type": k,
                           "channel": {"email": "email", "call": "call"}.get(k, "linkedin")}
                          for c in ("cmp-a", "cmp-b") for i, k in enumerate(kinds)])
    events = []
    for person in people:
        campaign = "cmp-b" if person == "c3" else "cmp-a"
        identity = "id-ada" if campaign == "cmp-a" else "id-bob"
        for i, kind in enumerate(kinds):
            events.append({"id": f"evt-{person}-{kind}", "campaign_id": campaign, "step_id": f"{campaign}-{kind}",
                           "contact_id": person, "identity_id": identity,
                           "channel": {"email": "email", "call": "call"}.get(kind, "linkedin"), "event_type": "sent",
                           "occurred_at": AT + timedelta(days=i), "subject": "Your pipeline" if kind == "email" else None,
                           "body": BODY if kind in ("email", "linkedin_message") else None})
        events.append({**events[-5], "id": f"evt-{person}-open", "event_type": "opened", "body": None})
    return {"enginy_users": users, "enginy_identities": identities, "enginy_campaigns": campaigns,
            "enginy_campaign_steps": steps, "enginy_campaign_events": pd.DataFrame(events)}


def prepare(org, tmp_path: Path, enabled: bool = True, body: bool = False, matched=("c1", "c3")) -> dict:
    """The warehouse and the config for one run: c1 and c3 matched, c2 not in the CRM yet."""
    warehouse = Warehouse(url=f"duckdb:///{tmp_path / 'wh.duckdb'}")
    for name, frame in enginy_tables(["c1", "c2", "c3"]).items():
        warehouse.write_table(name, frame)
    warehouse.write_table("contact_matches", pd.DataFrame([
        {"enginy_id": p, "outcome": "matched" if p in matched else "new",
         "crm_id": org.people[p][1] if p in matched else None, "crm_object": org.people[p][0] if p in matched else None}
        for p in ("c1", "c2", "c3")]))
    client = org.crm.resource(org.sandbox).client()
    warehouse.write_table("crm_users", client.users()[["crm_id", "email", "is_active"]])
    config = yaml.safe_load((example_config(org.crm.name)).read_text())
    config["user_mapping"] = {"identities": {"id-ada": org.users["ada"]}}
    config["activity_sync"] = {"enabled": enabled, "include_message_body": body}
    path = tmp_path / "integration.yaml"
    path.write_text(yaml.safe_dump(config))
    return {"crm": org.crm.resource(org.sandbox), "warehouse": warehouse,
            "warehouse_io_manager": WarehouseIOManager(warehouse=warehouse),
            "integration": IntegrationSettings(config_path=str(path))}


def run(resources: dict) -> tuple[pd.DataFrame, dict]:
    result = dg.materialize([crm_activity_push], resources=resources)
    assert result.success
    by_asset = {m.asset_key.path[-1]: m for m in result.asset_materializations_for_node("crm_activity_push")}
    materialization = by_asset["crm_activity_push"]
    if "skipped" not in materialization.metadata:
        # The ledger is an asset Dagster shows, materialized with every activity the push intended.
        assert by_asset["activity_ledger"].metadata["dagster/row_count"].value == len(
            resources["warehouse"].read_table("activity_ledger"))
    metadata = {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
    return resources["warehouse"].read_table("crm_activity_push"), metadata


def test_activities_land_on_the_matched_records_credited_through_the_identity_mapping(org, tmp_path) -> None:
    results, metadata = run(prepare(org, tmp_path))
    logged = {a["key"]: a for a in org.crm.logged(org.sandbox)}
    kinds = ("email", "call", "linkedin_message", "linkedin_connection_request")
    assert sorted(logged) == sorted(f"evt-{p}-{k}" for p in ("c1", "c3") for k in kinds)
    for key, activity in logged.items():
        person = key.split("-")[1]
        assert activity["record"] == org.people[person][1] and activity["completed"]
        # c1 is in Ada's campaign (identity mapping); c3 in Bob's (his Enginy user's email).
        assert activity["owner"] == org.users["ada" if person == "c1" else "bob"]
        assert BODY not in (activity["description"] or ""), "no message without include_message_body"
    assert logged["evt-c1-email"]["subject"] == "Enginy: Sent Email Your pipeline"
    assert logged["evt-c1-call"]["subject"] == "Enginy Call: Q4 Outbound"
    waiting = results[results["status"] == "waiting"]
    assert sorted(waiting["event_id"]) == sorted(f"evt-c2-{k}" for k in kinds) and set(waiting["reason"]) == {WAITING_NEW}
    assert metadata["events_logged"] == 8 and metadata["events_waiting"] == 4 and metadata["logged_this_run"] == 8
    assert metadata["credited_by"] == {"identity": 8, "same_email": 4}


def test_the_message_is_logged_only_when_include_message_body_is_on(org, tmp_path) -> None:
    run(prepare(org, tmp_path, body=True))
    logged = {a["key"]: a for a in org.crm.logged(org.sandbox)}
    assert logged["evt-c1-email"]["description"].startswith(BODY)
    assert logged["evt-c1-linkedin_message"]["description"].startswith(BODY)
    assert BODY not in logged["evt-c1-call"]["description"], "a call has no message"


def test_a_second_run_logs_nothing_new_and_a_newly_matched_contact_gets_its_waiting_events(org, tmp_path) -> None:
    resources = prepare(org, tmp_path)
    run(resources)
    creates = org.crm.create_calls(org.sandbox)
    _, again = run(resources)
    assert again["logged_this_run"] == 0 and again["logged_before"] == 8
    assert org.crm.create_calls(org.sandbox) == creates, "nothing was sent"
    # c2 is exported: the record push's ledger now holds its CRM record, and its events follow.
    warehouse = resources["warehouse"]
    warehouse.write_table("export_ledger", pd.DataFrame({
        "write_id": ["w-c2"], "object": [org.people["c2"][0]], "enginy_id": ["c2"], "action": ["create"],
        "crm_id": [org.people["c2"][1]], "status": ["created"], "error": None, "error_code": None, "attempts": 1,
        "updated_at": AT}))
    results, third = run(resources)
    assert third["logged_this_run"] == 4 and set(results["status"]) == {"logged"}
    logged = org.crm.logged(org.sandbox)
    assert len(logged) == 12 and all(a["creates"] == 1 for a in logged)
    assert {a["record"] for a in logged if "-c2-" in a["key"]} == {org.people["c2"][1]}


def test_with_activity_sync_off_nothing_is_sent_and_the_run_says_why(org, tmp_path) -> None:
    results, metadata = run(prepare(org, tmp_path, enabled=False))
    assert len(results) == 0 and "activity_sync.enabled is false" in metadata["skipped"]
    assert org.crm.logged(org.sandbox) == [] and org.crm.create_calls(org.sandbox) == 0


def test_a_crm_that_cannot_log_activities_is_reported_not_supported(sandbox, tmp_path) -> None:
    config = yaml.safe_load((example_config("pipedrive")).read_text())
    config["activity_sync"] = {"enabled": True}
    path = tmp_path / "integration.yaml"
    path.write_text(yaml.safe_dump(config))
    warehouse = Warehouse(url=f"duckdb:///{tmp_path / 'wh.duckdb'}")
    results, metadata = run({"crm": PipedriveResource(api_token=API_TOKEN, base_url=sandbox.base_url,
                                                      ca_bundle=str(sandbox.tls.ca_bundle)),
                             "warehouse": warehouse, "warehouse_io_manager": WarehouseIOManager(warehouse=warehouse),
                             "integration": IntegrationSettings(config_path=str(path))})
    assert len(results) == 0 and "not supported for pipedrive" in metadata["skipped"]
