"""Each CRM client logs activities through its official library against the sandbox: completed,
on the right contact or lead, credited to the right user, and never twice — not after a lost
answer, not after a run killed between the CRM's write and the ledger's record of it."""

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from crm_pipelines.export.activities import outcomes, run_activity_push
from crm_pipelines.export.writes import Activity
from crm_pipelines.export.ledger import ACTIVITY_LEDGER, empty_ledger
from crm_pipelines.resources.warehouse import LedgerTable, Warehouse
from crm_pipelines.sandbox.faults import FaultRule

AT = datetime(2024, 5, 2, 9, 30, tzinfo=timezone.utc)
STEPS = ("email", "call", "linkedin_message", "linkedin_connection_request")


class Killed(Exception):
    """Stands for the push process dying at that point."""


def planned(org, n: int, person: str = "c1") -> pd.DataFrame:
    """n ready activities on one person, in the shape plan_activities gives them."""
    crm_object, record = org.people[person]
    return pd.DataFrame({"event_id": [f"evt-{i:04d}" for i in range(n)], "contact_id": person,
                         "step_type": [STEPS[i % 4] for i in range(n)], "subject": [f"Enginy Call: {i}" for i in range(n)],
                         "description": None, "occurred_at": [AT + timedelta(minutes=i) for i in range(n)],
                         "owner_id": org.users["ada"], "owner_rule": "identity", "crm_object": crm_object,
                         "crm_record_id": record, "status": "ready", "reason": None, "body": None, "kind": None})


def assert_each_once(org, n: int) -> None:
    logged = org.crm.logged(org.sandbox)
    assert sorted(a["key"] for a in logged) == [f"evt-{i:04d}" for i in range(n)], "every event is in the CRM"
    assert all(a["creates"] == 1 for a in logged), "and none was logged twice"


def test_activities_land_completed_on_their_contact_or_lead_credited_to_their_owner(org) -> None:
    client = org.crm.resource(org.sandbox).client()
    people = ["c1", "c2", "c3"]
    activities = [Activity(f"e{i}", step, *org.people[person], subject=f"Subject {i}", description=f"Said {i}",
                           occurred_at=AT, owner_id=org.users[owner])
                  for i, (step, person, owner) in enumerate(zip(STEPS, people + ["c1"], ["ada", "bob", "ada", "bob"]))]
    activities.append(Activity("e-default", "call", *org.people["c2"], subject="No owner", description=None,
                               occurred_at=AT))
    results = client.log_activities(activities)
    assert [r.status for r in results] == ["created"] * 5 and all(r.crm_id for r in results)
    logged = {a["key"]: a for a in org.crm.logged(org.sandbox)}
    for activity in activities[:4]:
        held = logged[activity.write_id]
        assert held["record"] == activity.record_id and held["owner"] == org.users[
            "ada" if activity.write_id in ("e0", "e2") else "bob"]
        assert held["subject"] == activity.subject and held["description"] == activity.description
        assert held["completed"]
    # No owner given: the CRM's default — the integration user (Salesforce, Dataverse), nobody (HubSpot).
    assert logged["e-default"]["owner"] not in (org.users["ada"], org.users["bob"])
    if org.crm.has_leads:
        assert logged["e2"]["record"] == org.people["c3"][1] and org.people["c3"][0] == "leads"


def test_an_answer_lost_after_the_crm_wrote_is_looked_up_rather_than_sent_again(org) -> None:
    method, endpoint = org.crm.create
    org.sandbox.ctx.faults.add(FaultRule(crm=org.crm.name, endpoint=endpoint, method=method, kind="drop", nth=1))
    client = org.crm.resource(org.sandbox).client()
    outcome = run_activity_push(client.log_activities, planned(org, 30), empty_ledger(), lambda ledger: None, 200)
    assert outcome.counts == {"created": 30}
    assert_each_once(org, 30)


def test_throttling_and_server_errors_lose_nothing_and_log_nothing_twice(org) -> None:
    method, endpoint = org.crm.create
    for rule in ({"status": 429, "retry_after": 0, "nth": 1}, {"status": 503, "retry_after": 0, "nth": 2}):
        org.sandbox.ctx.faults.add(FaultRule(crm=org.crm.name, endpoint=endpoint, method=method, **rule))
    client = org.crm.resource(org.sandbox).client()
    outcome = run_activity_push(client.log_activities, planned(org, 30), empty_ledger(), lambda ledger: None, 200)
    assert outcome.counts == {"created": 30}
    assert_each_once(org, 30)


@pytest.mark.parametrize("when", ["before a chunk is sent", "after the CRM wrote, before the answer was recorded"])
def test_a_run_killed_mid_push_resumes_and_logs_each_event_exactly_once(org, when, tmp_path) -> None:
    client = org.crm.resource(org.sandbox).client()
    n = org.crm.ceiling * 2 + 10
    table = LedgerTable(Warehouse(url=f"duckdb:///{tmp_path / 'wh.duckdb'}"), ACTIVITY_LEDGER)
    save = table.save

    calls = {"n": 0}

    def dying(activities):
        calls["n"] += 1
        if calls["n"] == 2:
            if when.startswith("after"):
                client.log_activities(activities)
            raise Killed()
        return client.log_activities(activities)

    with pytest.raises(Killed):
        run_activity_push(dying, planned(org, n), table.read(), save, org.crm.ceiling)
    assert (table.read()["status"] == "sent").sum() == org.crm.ceiling, "the ledger knew what was in flight"
    again = run_activity_push(client.log_activities, planned(org, n), table.read(), save, org.crm.ceiling)
    assert again.already_done == org.crm.ceiling, "the finished chunk was not sent again"
    assert_each_once(org, n)
    assert set(outcomes(planned(org, n), again.ledger)["status"]) == {"logged"}

    creates = org.crm.create_calls(org.sandbox)
    third = run_activity_push(client.log_activities, planned(org, n), again.ledger, save, org.crm.ceiling)
    assert third.sent == 0 and org.crm.create_calls(org.sandbox) == creates, "a finished push sends nothing"


def test_activities_whose_retries_ran_out_are_logged_by_the_next_run_once(org) -> None:
    """Every create answered 503 (the CRM may or may not have written) until each batch's
    retries ran out — HubSpot sends its two engagement types' batches at once, six tries each: the
    run ends with every activity failed, and the next run looks them up before it sends them."""
    method, endpoint = org.crm.create
    org.sandbox.ctx.faults.add(FaultRule(crm=org.crm.name, endpoint=endpoint, method=method, status=503,
                                         retry_after=0, times=6 * len(org.crm.objects)))
    client = org.crm.resource(org.sandbox).client()
    first = run_activity_push(client.log_activities, planned(org, 20), empty_ledger(), lambda ledger: None, 200)
    assert first.counts == {"failed": 20}
    second = run_activity_push(client.log_activities, planned(org, 20), first.ledger, lambda ledger: None, 200)
    assert second.counts == {"created": 20} and second.already_done == 0
    assert_each_once(org, 20)


@pytest.mark.parametrize("org", ["salesforce"], indirect=True)
def test_a_large_salesforce_activity_push_is_one_bulk_job_and_a_run_killed_after_it_logs_nothing_twice(
        org, tmp_path) -> None:
    """Above bulk_push_threshold the Tasks go in one Bulk API 2.0 insert job, with one ledger save
    before it and one after; a run killed after the job ran but before its answers were recorded
    leaves every Task in doubt, and the next run finds them all by their key instead of inserting
    them again."""
    from crm_pipelines.crms.salesforce.client import SalesforceResource

    client = SalesforceResource(login_url=org.sandbox.base_url, client_id="sandbox-client",
                                client_secret="sandbox-secret", bulk_push_threshold=20).client()
    table = LedgerTable(Warehouse(url=f"duckdb:///{tmp_path / 'wh.duckdb'}"), ACTIVITY_LEDGER)
    saves = []

    def save(rows):
        saves.append(len(rows))
        table.save(rows)

    def ingest_jobs() -> int:
        return sum(n for (c, m, e), n in org.sandbox.ctx.stats.calls.items()
                   if c == "salesforce" and m == "POST" and e.endswith("jobs/ingest"))

    def killed_after_the_job(activities):
        client.log_activities(activities)
        raise Killed()

    n = 50
    with pytest.raises(Killed):
        run_activity_push(killed_after_the_job, planned(org, n), table.read(), save, client.activities_per_push)
    assert saves == [n], "the whole job was recorded as sent before it went"
    assert ingest_jobs() == 1 and org.crm.create_calls(org.sandbox) == 0, "one bulk job, no sObject Collections"
    again = run_activity_push(client.log_activities, planned(org, n), table.read(), save, client.activities_per_push)
    assert again.counts == {"created": n} and ingest_jobs() == 1, "found by key, not inserted again"
    assert_each_once(org, n)
    assert set(outcomes(planned(org, n), again.ledger)["status"]) == {"logged"}
    assert {a["kind"] for a in org.crm.logged(org.sandbox)} >= {"Email", "Call"}


@pytest.mark.parametrize("org", ["salesforce"], indirect=True)
def test_a_bulk_activity_push_logs_each_task_once_with_its_fields(org) -> None:
    from crm_pipelines.crms.salesforce.client import SalesforceResource

    client = SalesforceResource(login_url=org.sandbox.base_url, client_id="sandbox-client",
                                client_secret="sandbox-secret", bulk_push_threshold=5).client()
    plan = planned(org, 12).assign(description=[f"Line one\nline \"two\", {i}" for i in range(12)])
    outcome = run_activity_push(client.log_activities, plan, empty_ledger(), lambda rows: None,
                                client.activities_per_push)
    assert outcome.counts == {"created": 12}
    assert_each_once(org, 12)
    logged = {a["key"]: a for a in org.crm.logged(org.sandbox)}
    crm_object, record = org.people["c1"]
    assert all(a["record"] == record and a["owner"] == org.users["ada"] and a["completed"] for a in logged.values())
    assert logged["evt-0003"]["description"] == 'Line one\nline "two", 3'
    assert logged["evt-0003"]["subject"] == "Enginy Call: 3"
