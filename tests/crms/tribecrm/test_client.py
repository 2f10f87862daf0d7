"""The TribeCRM adapter against the sandbox over HTTPS: next links, incremental pulls through
persons and their employments, deletions found by the id listing, 429s with Retry-After, and a
push that never creates a person or an employment twice."""

from datetime import datetime, timedelta, timezone

import pandas as pd

from crm_pipelines.crms.base import Write
from crm_pipelines.crms.tribecrm.client import TribeCrmClient, TribeCrmResource
from crm_pipelines.crms.tribecrm import emulator as tribecrm
from crm_pipelines.sandbox.faults import FaultRule
from crm_pipelines.snapshot import refresh_snapshot

START = datetime(2025, 3, 1, tzinfo=timezone.utc)
PERSONS = f"{tribecrm.API}/{tribecrm.PERSON}"
ORGANIZATIONS = f"{tribecrm.API}/{tribecrm.ORGANIZATION}"
ENGINY_ID = tribecrm.custom_name("Enginy Id")


def client(sandbox) -> TribeCrmClient:
    return TribeCrmResource(api_key=tribecrm.API_KEY, base_url=sandbox.base_url + tribecrm.API,
                            ca_bundle=str(sandbox.tls.ca_bundle)).client()


def people(sandbox, n: int, org: str | None = None) -> list[str]:
    """``n`` persons modified a minute apart from START, each working at ``org`` when given."""
    ids = []
    for i in range(n):
        when = START + timedelta(minutes=i)
        person = tribecrm.insert(sandbox.ctx, tribecrm.PERSON, {"FirstName": "P", "LastName": str(i)}, created_at=when)
        if org:
            tribecrm.insert(sandbox.ctx, tribecrm.CONTACT, {"Person.ID": person.id, "Relation.ID": org,
                                                            "JobTitle": f"Job {i}"}, created_at=when)
        ids.append(person.id)
    return ids


def organization(sandbox, name: str = "Acme") -> str:
    return tribecrm.insert(sandbox.ctx, tribecrm.ORGANIZATION, {"Name": name}, created_at=START).id


def test_a_full_pull_follows_next_links_and_takes_the_employment_for_company_and_job(sandbox) -> None:
    sandbox.ctx.crm_settings("tribecrm")["max_page_size"] = 50
    org = organization(sandbox)
    people(sandbox, 120, org)
    result = client(sandbox).pull("contacts", None, None)
    records = result.records.set_index("last_name")
    assert len(records) == 120 and (records["account_id"] == org).all()
    assert records.loc["7", "job_title"] == "Job 7" and result.pages == 6, "3 pages of persons, 3 of employments"
    assert result.cursor == START + timedelta(minutes=119)


def test_an_incremental_pull_brings_a_person_whose_only_change_is_their_employment(sandbox) -> None:
    org = organization(sandbox)
    ids = people(sandbox, 10, org)
    crm = client(sandbox)
    [work] = crm.rest.request("GET", tribecrm.CONTACT, params={"$filter": f"Person/ID eq {ids[2]}"})["value"]
    since = datetime.now(timezone.utc) - timedelta(seconds=5)
    crm.rest.request("PATCH", f"{tribecrm.CONTACT}({work['ID']})", json={"JobTitle": "CFO"})
    crm.rest.request("DELETE", f"{tribecrm.PERSON}({ids[5]})")
    result = crm.pull("contacts", since, None)
    assert list(result.records["crm_id"]) == [ids[2]] and result.records["job_title"].iloc[0] == "CFO"
    assert result.records["last_modified"].iloc[0] > pd.Timestamp(START), "the employment's change dates it"
    assert ids[5] not in result.live_ids and ids[2] in result.live_ids and len(result.live_ids) == 9
    assert result.api_calls <= 5


def test_the_snapshot_marks_deleted_what_the_id_listing_no_longer_holds(sandbox) -> None:
    ids = people(sandbox, 5)
    crm = client(sandbox)
    first = refresh_snapshot(lambda s, u, st: crm.pull("contacts", s, u, st), None, None, None,
                             now=datetime.now(timezone.utc))
    crm.rest.request("DELETE", f"{tribecrm.PERSON}({ids[1]})")
    second = refresh_snapshot(lambda s, u, st: crm.pull("contacts", s, u, st), first.snapshot, first.cursor_after,
                              {}, now=datetime.now(timezone.utc))
    snapshot = second.snapshot.set_index("crm_id")
    assert second.deleted == 1 and bool(snapshot.loc[ids[1], "is_deleted"]) and len(snapshot) == 5
    assert second.cursor_after == first.cursor_after, "a deletion seen does not move the cursor"


def test_a_backfill_window_filters_on_the_modification_date(sandbox) -> None:
    people(sandbox, 30)
    result = client(sandbox).pull("contacts", START + timedelta(minutes=10), START + timedelta(minutes=20))
    assert sorted(result.records["last_name"].astype(int)) == list(range(10, 20)) and result.live_ids is None


def test_a_429_is_waited_out_for_as_long_as_retry_after_says(sandbox) -> None:
    people(sandbox, 3)
    sandbox.ctx.faults.add(FaultRule(crm="tribecrm", endpoint=PERSONS, method="GET", status=429, retry_after=1, nth=1))
    crm = client(sandbox)
    started = datetime.now(timezone.utc)
    assert len(crm.pull("companies", None, None).records) == 0
    assert len(crm.pull("contacts", None, None).records) == 3
    assert datetime.now(timezone.utc) - started >= timedelta(seconds=1)


def test_describe_finds_the_enginy_id_by_its_label_and_adds_the_employment_fields(sandbox) -> None:
    crm = client(sandbox)
    described = {f.name: f for f in crm.describe("contacts")}
    assert crm.enginy_id_field == ENGINY_ID and described[ENGINY_ID].external_id
    assert described[ENGINY_ID].label == "Enginy Id" and described["LastName"].required
    assert "JobTitle" in described and not described["DateModified"].updateable
    assert crm.latest_change("contacts", None) is None


def test_a_create_makes_the_person_and_the_employment_once_even_sent_twice(sandbox) -> None:
    org = organization(sandbox)
    crm = client(sandbox)
    write = Write("w1", "create", "enginy-1", {"LastName": "Okafor", "JobTitle": "CTO"}, company_id=org)
    [first] = crm.push("contacts", [write])
    [again] = crm.push("contacts", [write])
    assert (first.status, again.status, again.crm_id) == ("created", "updated", first.crm_id)
    assert len(sandbox.ctx.store.records("tribecrm", tribecrm.PERSON)) == 1
    [work] = sandbox.ctx.store.records("tribecrm", tribecrm.CONTACT)
    assert work.fields["Relation.ID"] == org and work.fields["JobTitle"] == "CTO"


def test_a_create_whose_answer_is_lost_is_found_by_its_enginy_id_not_made_twice(sandbox) -> None:
    sandbox.ctx.faults.add(FaultRule(crm="tribecrm", endpoint=ORGANIZATIONS, method="POST", kind="drop", nth=1))
    [result] = client(sandbox).push("companies", [Write("w1", "create", "enginy-9", {"Name": "Acme"})])
    assert result.status == "created"
    [made] = sandbox.ctx.store.records("tribecrm", tribecrm.ORGANIZATION, include_deleted=True)
    assert made.fields[ENGINY_ID] == "enginy-9"
    assert [c.op for c in made.history] == ["create", "update"], "found after the lost answer, and updated"


def test_refused_writes_are_rejected_with_tribecrms_message(sandbox) -> None:
    crm = client(sandbox)
    gone = people(sandbox, 1)[0]
    sandbox.ctx.store.delete("tribecrm", tribecrm.PERSON, gone)
    results = crm.push("contacts", [Write("w1", "create", "e1", {"FirstName": "No last name"}),
                                    Write("w2", "update", "e2", {"FirstName": "X"}, crm_id=gone)])
    assert (results[0].status, results[0].error_code, results[0].error) == (
        "rejected", "ValidationFailed", "LastName is mandatory.")
    assert (results[1].status, results[1].error_code) == ("rejected", "NOT_FOUND")
