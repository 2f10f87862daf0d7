"""The Pipedrive adapter against the sandbox over HTTPS: both paging styles, incremental pulls
with deletions, backfill windows, custom fields by name, 429s and the rate-limit window, and a
push that never creates a record twice."""

import time
from datetime import datetime, timedelta, timezone

import pytest

from crm_pipelines.enginy.generator import generate_frames
from crm_pipelines.crms.base import Write
from crm_pipelines.crms.pipedrive.client import PipedriveClient, PipedriveResource
from crm_pipelines.crms.pipedrive import emulator as pipedrive
from crm_pipelines.sandbox.faults import FaultRule
from crm_pipelines.crms.pipedrive.emulator.fields import hashed_key

START = datetime(2025, 3, 1, tzinfo=timezone.utc)
PERSONS = "/api/v2/persons"


def client(sandbox, **settings) -> PipedriveClient:
    return PipedriveResource(api_token=pipedrive.API_TOKEN, base_url=sandbox.base_url,
                             ca_bundle=str(sandbox.tls.ca_bundle), **settings).client()


def people(sandbox, n: int, step: timedelta = timedelta(minutes=1)) -> list[str]:
    """``n`` persons modified a minute apart from START."""
    return [pipedrive.insert(sandbox.ctx, "persons", {"name": f"P {i}", "first_name": "P", "last_name": str(i)},
                             created_at=START + i * step).id for i in range(n)]


def calls(sandbox, method: str, endpoint: str) -> int:
    return sandbox.ctx.stats.calls[("pipedrive", method, endpoint)]


def test_a_full_pull_follows_the_v2_cursor_through_every_page(sandbox) -> None:
    people(sandbox, 120)
    result = client(sandbox, page_size=50).pull("contacts", None, None)
    assert sorted(result.records["last_name"].astype(int)) == list(range(120))
    assert result.pages == 3 == calls(sandbox, "GET", PERSONS)
    assert result.cursor == START + timedelta(minutes=119)


def test_an_incremental_pull_reads_recents_and_reports_deleted_persons(sandbox) -> None:
    ids = people(sandbox, 30)
    crm = client(sandbox, page_size=10)
    crm.rest.request("PATCH", f"{PERSONS}/{ids[3]}", json={"job_title": "CFO"})
    crm.rest.request("DELETE", f"{PERSONS}/{ids[4]}")
    since = datetime.now(timezone.utc) - timedelta(minutes=1)
    result = crm.pull("contacts", since, None)
    by_id = result.records.set_index("crm_id")
    assert sorted(by_id.index) == sorted([ids[3], ids[4]]), "only what changed since the cursor"
    assert by_id.loc[ids[3], "job_title"] == "CFO" and not by_id.loc[ids[3], "is_deleted"]
    assert bool(by_id.loc[ids[4], "is_deleted"])
    assert calls(sandbox, "GET", "/v1/recents") == 1


def test_a_backfill_window_lists_only_records_modified_inside_it(sandbox) -> None:
    people(sandbox, 60)
    since, until = START + timedelta(minutes=10), START + timedelta(minutes=25)
    result = client(sandbox, page_size=4).pull("contacts", since, until)
    assert sorted(result.records["last_name"].astype(int)) == list(range(10, 25))
    assert result.pages == 4


def test_custom_fields_are_read_and_described_by_name_never_by_hashed_key(sandbox) -> None:
    pipedrive.seed(sandbox.ctx, generate_frames(40, seed=3).crm)
    crm = client(sandbox)
    contacts = crm.pull("contacts", None, None).records
    assert contacts["linkedin_url"].notna().mean() > 0.5
    assert "LinkedIn" in contacts["raw"].iloc[0] and hashed_key("persons", "LinkedIn") not in contacts["raw"].iloc[0]
    described = {f.name: f for f in crm.describe("contacts")}
    assert described["Enginy Id"].external_id and described["Sequence status"].type == "enumeration"
    assert described["Sequence status"].option_labels == ("Not Started", "Ongoing", "Replied", "Finished")
    assert not described["update_time"].updateable
    companies = crm.pull("companies", None, None).records
    assert companies["domain"].notna().all(), "the Website custom field"


def test_leads_carry_the_names_of_their_person(sandbox) -> None:
    pipedrive.seed(sandbox.ctx, generate_frames(60, seed=5).crm)
    leads = client(sandbox).pull("leads", None, None).records
    stored = sandbox.ctx.store.records("pipedrive", "leads")
    assert len(leads) == len(stored) > 0
    person = sandbox.ctx.store.get("pipedrive", "persons", stored[0].fields["person_id"])
    row = leads.set_index("crm_id").loc[stored[0].id]
    assert (row["first_name"], row["last_name"]) == (person.fields.get("first_name"), person.fields.get("last_name"))


def test_a_429_is_waited_out_for_as_long_as_retry_after_says(sandbox) -> None:
    people(sandbox, 5)
    sandbox.ctx.faults.add(FaultRule(crm="pipedrive", endpoint=PERSONS, status=429, retry_after=1, nth=1))
    started = time.monotonic()
    result = client(sandbox).pull("contacts", None, None)
    assert len(result.records) == 5 and calls(sandbox, "GET", PERSONS) == 2, "the throttled page, then again"
    assert time.monotonic() - started >= 1


def test_a_spent_rate_limit_window_is_waited_for_instead_of_meeting_429s(sandbox) -> None:
    people(sandbox, 40)
    sandbox.ctx.crm_settings("pipedrive").update({"burst_limit": 4, "window_seconds": 1})
    crm = client(sandbox, page_size=5)
    result = crm.pull("contacts", None, None)
    assert len(result.records) == 40 and result.pages == 8
    assert sandbox.ctx.stats.statuses[("pipedrive", 429)] == 0
    assert crm.rest.waited_for_rate_limit > 0
    assert crm.rest.last_rate_limit.limit == 4


def test_latest_change_is_one_row_and_never_the_cursor_itself(sandbox) -> None:
    people(sandbox, 10)
    crm = client(sandbox)
    newest = crm.latest_change("contacts", None)
    assert newest == START + timedelta(minutes=9)
    assert crm.latest_change("contacts", newest) is None
    assert crm.latest_change("contacts", newest - timedelta(seconds=1)) == newest
    assert crm.rest.api_calls == 3


def creates(n: int) -> list[Write]:
    return [Write(f"w{i}", "create", f"en-{i}", {"first_name": "Ada", "last_name": f"L{i}",
                                                 "email": f"ada{i}@push.example", "LinkedIn": f"in/ada-{i}"})
            for i in range(n)]


def enginy_ids(sandbox) -> dict[str, list[str]]:
    key = hashed_key("persons", "Enginy Id")
    return {r.fields.get(key): [c.op for c in r.history]
            for r in sandbox.ctx.store.records("pipedrive", "persons", include_deleted=True)}


def test_creates_send_custom_fields_by_key_and_sending_them_again_updates(sandbox) -> None:
    crm = client(sandbox)
    first = crm.push("contacts", creates(5))
    assert [r.status for r in first] == ["created"] * 5
    record = sandbox.ctx.store.get("pipedrive", "persons", first[0].crm_id)
    assert record.fields[hashed_key("persons", "LinkedIn")] == "in/ada-0" and record.fields["name"] == "Ada L0"
    again = crm.push("contacts", creates(5))
    assert [r.status for r in again] == ["updated"] * 5
    assert [r.crm_id for r in again] == [r.crm_id for r in first]
    assert all(ops.count("create") == 1 for ops in enginy_ids(sandbox).values())


def test_a_create_whose_answer_is_lost_is_found_by_its_enginy_id_not_made_twice(sandbox) -> None:
    sandbox.ctx.faults.add(FaultRule(crm="pipedrive", endpoint=PERSONS, method="POST", kind="drop", nth=2))
    sandbox.ctx.faults.add(FaultRule(crm="pipedrive", endpoint=PERSONS, method="POST", status=500, nth=4))
    results = client(sandbox).push("contacts", creates(4))
    assert [r.status for r in results] == ["created"] * 4
    held = enginy_ids(sandbox)
    assert sorted(held) == [f"en-{i}" for i in range(4)]
    # Calls go several at once, so which record meets which fault varies: the second POST's answer
    # is lost after the write (completed by the look-up), the fourth gets a 500 before any write.
    assert sorted(held.values()) == [["create"]] * 3 + [["create", "update"]], held


def test_refused_writes_are_rejected_with_pipedrives_reason(sandbox) -> None:
    crm = client(sandbox)
    [made] = crm.push("contacts", creates(1))
    results = crm.push("contacts", [
        Write("bad-option", "update", "en-0", {"Sequence status": "99"}, crm_id=made.crm_id),
        Write("no-field", "create", "en-x", {"last_name": "X", "Shoe size": "44"}),
        Write("gone", "update", "en-y", {"job_title": "CTO"}, crm_id="999999"),
        Write("fine", "update", "en-0", {"job_title": "CTO"}, crm_id=made.crm_id)])
    status = {r.write_id: r for r in results}
    assert status["bad-option"].status == "rejected" and "option" in status["bad-option"].error
    assert status["no-field"].status == "rejected" and "Shoe size" in status["no-field"].error
    assert status["gone"].status == "rejected" and status["gone"].error_code == "NOT_FOUND"
    assert status["fine"].status == "updated"
    assert sandbox.ctx.store.get("pipedrive", "persons", made.crm_id).fields["job_title"] == "CTO"


@pytest.mark.parametrize("obj", ["companies", "leads"])
def test_organizations_and_leads_are_upserted_on_their_enginy_id_too(sandbox, obj) -> None:
    crm = client(sandbox)
    [org] = crm.push("companies", [Write("o", "create", "en-org", {"name": "Acme", "Website": "acme.com"})])
    writes = ([Write("c", "create", "en-org", {"name": "Acme", "Employees": 12})] if obj == "companies" else
              [Write("l", "create", "en-lead", {"Lead source": "Enginy"}, company_id=org.crm_id)])
    first, again = crm.push(obj, writes), crm.push(obj, writes)
    assert first[0].status == ("updated" if obj == "companies" else "created") and again[0].status == "updated"
    assert first[0].crm_id == again[0].crm_id
    stored = "organizations" if obj == "companies" else "leads"
    assert len(sandbox.ctx.store.records("pipedrive", stored)) == 1
