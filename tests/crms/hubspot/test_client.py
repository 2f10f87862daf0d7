"""The HubSpot connector against the sandbox over HTTPS, through hubspot-api-client."""

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from hubspot.crm.contacts import SimplePublicObjectInput, SimplePublicObjectInputForCreate

from crm_pipelines.canonical import CrmCompany, CrmContact
from crm_pipelines.enginy.generator import generate_frames
from crm_pipelines.export.writes import Activity
from crm_pipelines.crms.hubspot.client import HubSpotClient, HubSpotResource, _RollingLimit
from crm_pipelines.crms.hubspot import emulator as sandbox_hubspot
from crm_pipelines.sandbox.faults import FaultRule
from crm_pipelines.crms.hubspot.emulator.schema import add_custom_property
from crm_pipelines.snapshot import fold_changes

CRM = "hubspot"
CONTACTS = 250
T0 = datetime(2019, 3, 1, tzinfo=timezone.utc)  # before any seeded record


@pytest.fixture
def crm(sandbox):
    sandbox_hubspot.seed(sandbox.ctx, generate_frames(CONTACTS, seed=5).crm)
    # Most tests are not about the limits; those that are set them again.
    sandbox.ctx.crm_settings(CRM).update({"burst_limit": None, "search_per_second": None})
    sandbox.ctx.stats.reset()
    return sandbox


def resource(sandbox, **overrides) -> HubSpotResource:
    settings = dict(access_token=sandbox_hubspot.ACCESS_TOKEN, host=sandbox.base_url,
                    ca_bundle=str(sandbox.tls.ca_bundle), search_calls_per_second=1000.0)
    settings.update(overrides)
    return HubSpotResource(**settings)


def calls(sandbox, method: str, endpoint: str) -> int:
    return sandbox.ctx.stats.calls[(CRM, method, endpoint)]


def live(sandbox, obj: str) -> list:
    return sandbox.ctx.store.records(CRM, obj)


def _people(sandbox, n: int, at, step: timedelta = timedelta(0)) -> list[str]:
    """n contacts last modified at ``at`` (+ i * step), inserted without API calls."""
    return [sandbox_hubspot.insert(sandbox.ctx, "contacts", {"email": f"w{i}@window.example", "lastname": "W"},
                                   created_at=at + i * step).id for i in range(n)]


def test_a_first_pull_lists_every_contact_in_pages_of_100_with_its_primary_company(crm) -> None:
    result = resource(crm).client().pull("contacts", None, None)
    expected = live(crm, "contacts")
    assert sorted(result.records["crm_id"]) == sorted(r.id for r in expected)
    CrmContact.validate(result.records)
    linked = {r.id: r.fields.get("associatedcompanyid") for r in expected}
    assert result.records.set_index("crm_id")["account_id"].to_dict() == linked
    assert result.pages == -(-len(expected) // 100)
    assert calls(crm, "GET", "/crm/v3/objects/{objectType}") == result.pages
    assert result.api_calls == result.pages + 1, "one properties call, then one call per page"
    assert result.cursor == max(r.modified_at for r in expected)


def test_a_window_pull_finds_changes_creations_and_archived_records_and_folds_them_in(crm) -> None:
    client = resource(crm).client()
    first = client.pull("contacts", None, None)
    changed, removed = first.records["crm_id"].iloc[0], first.records["crm_id"].iloc[1]
    since = datetime.now(timezone.utc)
    client.api.crm.contacts.basic_api.update(changed, SimplePublicObjectInput(properties={"jobtitle": "CRO"}))
    client.api.crm.contacts.basic_api.archive(removed)
    created = client.api.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(
        properties={"email": "nadia@okafor.io", "firstname": "Nadia"}))
    window = client.pull("contacts", since, datetime.now(timezone.utc) + timedelta(seconds=1))
    rows = window.records.set_index("crm_id")
    assert sorted(rows.index) == sorted([changed, removed, created.id])
    assert rows.loc[changed, "job_title"] == "CRO" and bool(rows.loc[removed, "is_deleted"])
    snapshot = fold_changes(first.records, window.records).set_index("crm_id")
    assert len(snapshot) == len(first.records) + 1, "nothing doubled, nothing lost"
    assert snapshot.loc[created.id, "email"] == "nadia@okafor.io"


def test_equal_timestamps_across_a_page_boundary_are_neither_missed_nor_doubled(crm) -> None:
    same = _people(crm, 450, T0)  # two and a quarter pages share one millisecond
    after = _people(crm, 30, T0 + timedelta(seconds=1), timedelta(milliseconds=1))
    result = resource(crm).client().pull("contacts", T0 - timedelta(seconds=1), T0 + timedelta(seconds=2))
    ids = list(result.records["crm_id"])
    assert len(ids) == len(set(ids)) and sorted(ids) == sorted(same + after)


def test_a_record_modified_during_the_pull_does_not_make_a_later_one_vanish(crm) -> None:
    """Offset paging shifts every later record down a slot when an earlier one leaves the
    result; the connector restarts each query at the last timestamp it saw instead."""
    ids = _people(crm, 600, T0, timedelta(seconds=1))

    class ChangingWhileReading(HubSpotClient):
        searches = 0

        def _search(self, *args, **kwargs):
            answer = super()._search(*args, **kwargs)
            ChangingWhileReading.searches += 1
            if ChangingWhileReading.searches == 1:  # someone edits a record of the first page
                crm.ctx.store.update(CRM, "contacts", ids[5], {"jobtitle": "edited"})
            return answer

    result = ChangingWhileReading(resource(crm)).pull("contacts", T0, T0 + timedelta(hours=1))
    assert sorted(result.records["crm_id"]) == sorted(ids)


def test_a_window_holding_more_than_the_10000_search_results_is_pulled_whole(crm) -> None:
    ids = _people(crm, 12_000, T0, timedelta(milliseconds=250))
    result = resource(crm).client().pull("contacts", T0, T0 + timedelta(days=1))
    got = list(result.records["crm_id"])
    assert len(got) == len(set(got)) == 12_000 and set(got) == set(ids)
    assert crm.ctx.stats.statuses[(CRM, 400)] == 0, "no query paged past HubSpot's cap"
    assert any("queries" in note for note in result.notes)
    search_calls = calls(crm, "POST", "/crm/v3/objects/{objectType}/search")
    assert search_calls <= 12_000 / 200 * 1.05, "about one call per 200 records"


def test_search_is_paced_under_hubspots_per_second_limit(crm) -> None:
    crm.ctx.crm_settings(CRM).update({"search_per_second": 5})
    ids = _people(crm, 1_000, T0, timedelta(seconds=1))
    result = resource(crm, search_calls_per_second=4.0).client().pull("contacts", T0, T0 + timedelta(hours=1))
    assert sorted(result.records["crm_id"]) == sorted(ids)
    assert crm.ctx.stats.statuses[(CRM, 429)] == 0


def test_the_ten_second_limit_is_waited_out_and_the_pull_completes(crm) -> None:
    crm.ctx.crm_settings(CRM).update({"burst_limit": 2, "burst_window_ms": 500})
    result = resource(crm).client().pull("contacts", None, None)
    assert len(result.records) == len(live(crm, "contacts"))
    assert crm.ctx.stats.statuses[(CRM, 429)] >= 1


def test_a_dropped_connection_on_a_page_is_retried(crm) -> None:
    crm.ctx.faults.add(FaultRule(crm=CRM, endpoint="/crm/v3/objects/{objectType}", method="GET", kind="drop",
                                 nth=2))
    result = resource(crm).client().pull("contacts", None, None)
    assert sorted(result.records["crm_id"]) == sorted(r.id for r in live(crm, "contacts"))


def test_a_portal_with_hundreds_of_custom_properties_is_listed_in_several_requests(crm) -> None:
    settings = crm.ctx.crm_settings(CRM)
    for i in range(400):
        add_custom_property(settings, "contacts", {"name": f"enginy_custom_property_number_{i}", "type": "string"})
    some = live(crm, "contacts")[0]
    crm.ctx.store.update(CRM, "contacts", some.id, {"enginy_custom_property_number_399": "deep"})
    result = resource(crm).client().pull("contacts", None, None)
    assert crm.ctx.stats.statuses[(CRM, 414)] == 0
    pages = -(-len(live(crm, "contacts")) // 100)
    assert result.pages >= 2 * pages, "the property list was split across requests"
    assert result.records.set_index("crm_id").loc[some.id, "raw"]["enginy_custom_property_number_399"] == "deep"
    assert len(result.records) == len(live(crm, "contacts"))


def test_companies_users_and_the_schema_come_back_canonical(crm) -> None:
    client = resource(crm).client()
    companies = client.pull("companies", None, None).records
    CrmCompany.validate(companies)
    assert len(companies) == len(live(crm, "companies")) and companies["domain"].notna().any()
    users = client.users()
    assert set(users["email"]) == {r.fields["email"] for r in live(crm, "owners")}
    fields = {f.name: f for f in client.describe("contacts")}
    assert "lead" in fields["lifecyclestage"].options
    assert not fields["lastmodifieddate"].updateable and fields["firstname"].updateable
    assert fields["email"].unique
    # HubSpot describes no length: its documented limit of a text value, for the export to check.
    assert fields["firstname"].length == 65_536 and fields["associatedcompanyid"].length is None
    assert client.pull("leads", None, None).notes == ["HubSpot has no Lead object"]


def test_a_wrong_token_fails_clearly_without_repeating_it(crm) -> None:
    with pytest.raises(RuntimeError) as exc:
        resource(crm, access_token="pat-na1-not-the-token").client().pull("contacts", None, None)
    assert "401" in str(exc.value) and "pat-na1-not-the-token" not in str(exc.value)


# --- activities: a create whose answer was lost -----------------------------------------------

OBJECTS = "/crm/v3/objects/{objectType}"


def _unique_activity_key(sandbox) -> None:
    """An activity key property with unique values on both engagement types the push writes."""
    for engagement in ("emails", "tasks"):
        add_custom_property(sandbox.ctx.crm_settings(CRM), engagement,
                            {"name": "enginy_activity_key", "type": "string", "hasUniqueValue": True})


def _activities(sandbox, n: int, **extra) -> list[Activity]:
    contact = live(sandbox, "contacts")[0].id
    return [Activity(f"evt-{i:03d}", ("email", "call")[i % 2], "contacts", contact, subject=f"Enginy Call: {i}",
                     description=None, occurred_at=T0 + timedelta(minutes=i), **extra) for i in range(n)]


def test_a_lost_activity_create_is_read_back_by_its_unique_key_without_waiting_for_search(crm) -> None:
    """Search would not show the lost emails for a minute; batch read by the unique key shows them at
    once, so nothing is sent twice and nothing waits."""
    _unique_activity_key(crm)
    crm.ctx.crm_settings(CRM)["search_lag_seconds"] = 60
    crm.ctx.faults.add(FaultRule(crm=CRM, endpoint=f"{OBJECTS}/batch/create", method="POST", kind="drop", nth=1))
    client = resource(crm, activity_id_property="enginy_activity_key", search_lag_seconds=60).client()
    results = client.log_activities(_activities(crm, 10))
    assert [r.status for r in results] == ["created"] * 10
    held = [r.fields["enginy_activity_key"] for obj in ("emails", "tasks") for r in live(crm, obj)]
    assert sorted(held) == [f"evt-{i:03d}" for i in range(10)], "each activity once"
    assert calls(crm, "POST", f"{OBJECTS}/search") == 0 and calls(crm, "POST", f"{OBJECTS}/batch/read") == 1


@pytest.mark.parametrize("unique", [True, False], ids=["batch read by unique key", "search"])
def test_activities_in_doubt_are_looked_up_100_keys_a_call(crm, unique) -> None:
    """HubSpot's batch read takes 100 inputs and an IN filter 100 values: 150 keys are two calls."""
    if unique:
        _unique_activity_key(crm)
    key = "enginy_activity_key" if unique else "enginy_activity_id"
    for activity in _activities(crm, 150):
        sandbox_hubspot.insert(crm.ctx, "tasks", {key: activity.write_id, "hs_timestamp": "2019-03-01T00:00:00Z"},
                               created_at=T0)
    client = resource(crm, activity_id_property=key, search_lag_seconds=0).client()
    found = client._find_engagements("tasks", [f"evt-{i:03d}" for i in range(150)] + ["evt-never-sent"])
    assert sorted(found) == [f"evt-{i:03d}" for i in range(150)]
    assert calls(crm, "POST", f"{OBJECTS}/batch/read" if unique else f"{OBJECTS}/search") == 2
    assert crm.ctx.stats.statuses[(CRM, 400)] == 0


def test_calls_are_paced_under_the_rolling_burst_limit_across_threads() -> None:
    """Each call keeps its place in the window until the window has passed since its answer
    (HubSpot counts it on arrival, somewhere between the send and the answer)."""
    limit = _RollingLimit(calls=5, seconds=0.5)
    calls: list[tuple[float, float]] = []

    def call() -> None:
        with limit.place():
            sent = time.monotonic()
            time.sleep(0.05)  # the call's way to the CRM and back
            calls.append((sent, time.monotonic()))

    threads = [threading.Thread(target=call) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    calls.sort()
    assert calls[-1][0] - calls[0][0] >= 1.0, "twelve calls at five per half second span two windows"
    # When each call was sent, the calls the CRM may still count (sent, and answered less than a
    # window ago) are at most five, itself included.
    assert max(sum(1 for sent, answered in calls if sent <= at < answered + 0.5) for at, _ in calls) == 5, \
        "never six in one window, however late in its call the CRM counted each"
