"""The push side of each connector against the sandbox: batches at the API ceiling, creates
that can be sent twice without creating twice, rejections with the CRM's reason, and faults."""

from dataclasses import dataclass
from typing import Callable

import pytest

from crm_pipelines.crms.base import CrmResource, Write
from crm_pipelines.crms.dynamics.client import DynamicsResource
from crm_pipelines.crms.hubspot.client import HubSpotResource
from crm_pipelines.crms.salesforce.client import SalesforceResource
from crm_pipelines.crms.dynamics import emulator as sandbox_dynamics
from crm_pipelines.crms.hubspot import emulator as sandbox_hubspot
from crm_pipelines.export.ledger import empty_ledger
from crm_pipelines.export.push import run_push
from crm_pipelines.sandbox.faults import FaultRule


@dataclass
class Crm:
    name: str
    resource: Callable[[object], CrmResource]
    contacts: str  # object name in the sandbox store
    ceiling: int  # records per write call
    endpoint: str  # the write endpoint template, as the sandbox counts it
    person: Callable[[int], dict]  # CRM fields of a valid contact
    invalid: dict  # fields the CRM refuses
    enginy_key: str  # where the Enginy id lands on the record


CRMS = {
    "salesforce": Crm(
        "salesforce", lambda sb: SalesforceResource(login_url=sb.base_url, client_id="sandbox-client",
                                                    client_secret="sandbox-secret"),
        "Contact", 200, "/services/data/{version}/composite/sobjects/{sobject}/{field}",
        lambda i: {"LastName": f"Person{i}", "Email": f"p{i}@push.example"}, {"Email": "not an email"},
        "Enginy_Id__c"),
    "hubspot": Crm(
        "hubspot", lambda sb: HubSpotResource(access_token=sandbox_hubspot.ACCESS_TOKEN, host=sb.base_url,
                                              ca_bundle=str(sb.tls.ca_bundle)),
        "contacts", 100, "/crm/v3/objects/{objectType}/batch/upsert",
        lambda i: {"lastname": f"Person{i}", "email": f"p{i}@push.example.com"}, {"lifecyclestage": "bogus"},
        "enginy_id"),
    "dynamics": Crm(
        "dynamics", lambda sb: DynamicsResource(environment_url=sb.base_url, tenant_id=sandbox_dynamics.TENANT_NAME,
                                                client_id=sandbox_dynamics.CLIENT_ID,
                                                client_secret=sandbox_dynamics.CLIENT_SECRET,
                                                authority_host=sb.base_url),
        "contacts", 100, "/api/data/v9.2/$batch",
        lambda i: {"lastname": f"Person{i}", "emailaddress1": f"p{i}@push.example"}, {"lastname": "x" * 51},
        sandbox_dynamics.ENGINY_KEY),
}


@pytest.fixture(params=sorted(CRMS))
def crm(request, sandbox):
    return sandbox, CRMS[request.param]


def creates(spec: Crm, n: int, start: int = 0) -> list[Write]:
    return [Write(f"w{i}", "create", f"en-{i}", spec.person(i)) for i in range(start, start + n)]


def history(sandbox, spec: Crm) -> dict[str, list[str]]:
    """Enginy id → the ops in the record's history, for every record the CRM holds."""
    return {r.fields.get(spec.enginy_key): [c.op for c in r.history]
            for r in sandbox.ctx.store.records(spec.name, spec.contacts, include_deleted=True)}


def write_calls(sandbox, spec: Crm) -> int:
    return sum(n for (c, _, endpoint), n in sandbox.ctx.stats.calls.items() if c == spec.name and
               endpoint == spec.endpoint)


def test_creates_go_in_batches_at_the_ceiling_and_sending_them_again_creates_nothing(crm) -> None:
    sandbox, spec = crm
    client = spec.resource(sandbox).client()
    writes = creates(spec, spec.ceiling + 50)
    first = client.push("contacts", writes)
    assert sorted(r.status for r in first) == ["created"] * len(writes)
    assert write_calls(sandbox, spec) == 2
    again = client.push("contacts", writes)
    assert {r.status for r in again} == {"updated"}
    assert {r.write_id: r.crm_id for r in first} == {r.write_id: r.crm_id for r in again}
    assert all(ops[0] == "create" and "create" not in ops[1:] for ops in history(sandbox, spec).values())
    assert len(history(sandbox, spec)) == len(writes)


def test_updates_address_records_by_id_and_never_create(crm) -> None:
    sandbox, spec = crm
    client = spec.resource(sandbox).client()
    [made] = client.push("contacts", creates(spec, 1))
    title = {"salesforce": "Title", "hubspot": "jobtitle", "dynamics": "jobtitle"}[spec.name]
    [updated] = client.push("contacts", [Write("u1", "update", "en-0", {title: "CTO"}, crm_id=made.crm_id)])
    assert updated.status == "updated" and updated.crm_id == made.crm_id
    record = sandbox.ctx.store.get(spec.name, spec.contacts, made.crm_id)
    assert record.fields[title] == "CTO"
    assert len(sandbox.ctx.store.records(spec.name, spec.contacts)) == 1


def test_a_refused_record_is_rejected_with_the_crms_reason_and_its_batch_goes_on(crm) -> None:
    sandbox, spec = crm
    client = spec.resource(sandbox).client()
    writes = creates(spec, 10)
    writes[4] = Write("bad", "create", "en-bad", {**spec.person(99), **spec.invalid})
    results = {r.write_id: r for r in client.push("contacts", writes)}
    assert results["bad"].status == "rejected" and results["bad"].error
    assert sorted(r.status for k, r in results.items() if k != "bad") == ["created"] * 9
    assert "en-bad" not in history(sandbox, spec)


def test_an_answer_lost_after_the_write_is_retried_without_a_second_record(crm) -> None:
    sandbox, spec = crm
    sandbox.ctx.faults.add(FaultRule(crm=spec.name, endpoint=spec.endpoint, kind="drop", nth=1))
    results = spec.resource(sandbox).client().push("contacts", creates(spec, 5))
    assert {r.status for r in results} == {"updated"}, "the retry found what the lost call had created"
    assert all(ops == ["create", "update"] for ops in history(sandbox, spec).values())


def test_throttling_and_server_errors_are_retried_until_the_batch_lands(crm) -> None:
    sandbox, spec = crm
    sandbox.ctx.faults.add(FaultRule(crm=spec.name, endpoint=spec.endpoint, status=429, retry_after=0, nth=1))
    sandbox.ctx.faults.add(FaultRule(crm=spec.name, endpoint=spec.endpoint, status=503, nth=2))
    results = spec.resource(sandbox).client().push("contacts", creates(spec, 3))
    assert [r.status for r in results] == ["created"] * 3
    assert write_calls(sandbox, spec) == 3
    assert all(ops == ["create"] for ops in history(sandbox, spec).values())


@pytest.mark.parametrize("crm", ["salesforce"], indirect=True)
def test_salesforce_duplicate_rules_reject_a_create_unless_it_is_allowed_to_save(crm) -> None:
    sandbox, spec = crm
    client = spec.resource(sandbox).client()
    client.push("contacts", [Write("a", "create", "en-a", {"LastName": "Lovelace", "Email": "ada@acme.com"})])
    twin = {"LastName": "Byron", "Email": "ADA@acme.com"}
    [refused] = client.push("contacts", [Write("b", "create", "en-b", twin)])
    assert refused.status == "rejected" and refused.error_code == "DUPLICATES_DETECTED"
    [saved] = client.push("contacts", [Write("b", "create", "en-b", twin, allow_duplicates=True)])
    assert saved.status == "created"


@pytest.mark.parametrize("crm", ["salesforce"], indirect=True)
def test_a_large_salesforce_push_goes_through_bulk_api_2_and_is_still_an_upsert(crm) -> None:
    sandbox, spec = crm
    client = SalesforceResource(login_url=sandbox.base_url, client_id="sandbox-client",
                                client_secret="sandbox-secret", bulk_push_threshold=100).client()
    writes = creates(spec, 300)
    writes[7] = Write("bad", "create", "en-bad", {**spec.person(999), **spec.invalid})
    first = {r.write_id: r for r in client.push("contacts", writes)}
    assert sorted(r.status for k, r in first.items() if k != "bad") == ["created"] * 299
    assert sum(n for (c, _, e), n in sandbox.ctx.stats.calls.items() if "jobs/ingest" in e) > 0
    assert write_calls(sandbox, spec) == 0, "no sObject Collections call"
    # The refusal reads as sObject Collections tell it, without Bulk API 2.0's trailing field list.
    [alone] = SalesforceResource(login_url=sandbox.base_url, client_id="sandbox-client",
                                 client_secret="sandbox-secret").client().push("contacts", [writes[7]])
    assert first["bad"].status == alone.status == "rejected"
    assert (first["bad"].error, first["bad"].error_code) == (alone.error, alone.error_code)
    again = client.push("contacts", [w for w in writes if w.write_id != "bad"])
    assert {r.status for r in again} == {"updated"}
    assert all(ops.count("create") == 1 for ops in history(sandbox, spec).values())
    updates = [Write(f"u{i}", "update", w.enginy_id, {"Title": "VP"}, crm_id=first[w.write_id].crm_id)
               for i, w in enumerate(writes) if w.write_id != "bad"]
    assert {r.status for r in client.push("contacts", updates)} == {"updated"}


@pytest.mark.parametrize("crm", ["salesforce"], indirect=True)
def test_the_pipelines_push_hands_a_big_batch_to_bulk_api_2_and_a_small_one_to_collections(crm) -> None:
    """run_push as crm_push_results calls it for a CRM with a bulk API: chunk sizes come from the client."""
    import pandas as pd

    sandbox, spec = crm
    client = SalesforceResource(login_url=sandbox.base_url, client_id="sandbox-client",
                                client_secret="sandbox-secret", bulk_push_threshold=100).client()

    def batch(start: int, n: int) -> pd.DataFrame:
        return pd.DataFrame({"enginy_id": [f"en-{i}" for i in range(start, start + n)], "action": "create",
                             "fields": [spec.person(i) for i in range(start, start + n)]})

    big = run_push(lambda w: client.push("contacts", w), "contacts", batch(0, 300), empty_ledger(), lambda l: None,
                   chunk=client.writes_per_push)
    assert big.counts == {"created": 300} and write_calls(sandbox, spec) == 0, "one Bulk API 2.0 job, no collections"
    small = run_push(lambda w: client.push("contacts", w), "contacts", batch(300, 50), empty_ledger(), lambda l: None,
                     chunk=client.writes_per_push)
    assert small.counts == {"created": 50} and write_calls(sandbox, spec) == 1, "one sObject Collections call"


@pytest.mark.parametrize("crm", ["salesforce"], indirect=True)
def test_a_bulk_update_leaves_alone_the_fields_another_row_changes_and_clears_what_is_emptied(crm) -> None:
    sandbox, spec = crm
    client = SalesforceResource(login_url=sandbox.base_url, client_id="sandbox-client",
                                client_secret="sandbox-secret", bulk_push_threshold=10).client()
    made = client.push("contacts", [Write(f"w{i}", "create", f"en-{i}", {**spec.person(i), "Title": "CEO",
                                                                         "Phone": "+34 600 000 000"})
                                    for i in range(20)])
    ids = [r.crm_id for r in sorted(made, key=lambda r: int(r.write_id[1:]))]
    updates = [Write("t", "update", "en-0", {"Title": "CTO"}, crm_id=ids[0]),
               Write("p", "update", "en-1", {"Phone": "+34 611 111 111"}, crm_id=ids[1]),
               Write("c", "update", "en-2", {"Title": None}, crm_id=ids[2])]
    updates += [Write(f"x{i}", "update", f"en-{i}", {"Department": "Sales"}, crm_id=ids[i]) for i in range(3, 20)]
    assert {r.status for r in client.push("contacts", updates)} == {"updated"}
    held = {r.id: r.fields for r in sandbox.ctx.store.records("salesforce", "Contact")}
    assert (held[ids[0]]["Title"], held[ids[0]]["Phone"]) == ("CTO", "+34 600 000 000")
    assert (held[ids[1]]["Title"], held[ids[1]]["Phone"]) == ("CEO", "+34 611 111 111")
    assert held[ids[2]].get("Title") is None and held[ids[2]]["Phone"] == "+34 600 000 000"


@pytest.mark.parametrize("crm", ["salesforce"], indirect=True)
def test_values_with_commas_quotes_and_line_breaks_arrive_through_bulk_api_2_as_they_were_sent(crm) -> None:
    sandbox, spec = crm
    client = SalesforceResource(login_url=sandbox.base_url, client_id="sandbox-client",
                                client_secret="sandbox-secret", bulk_push_threshold=5).client()
    title = 'Head of "Growth", EMEA\nand LatAm'
    made = client.push("contacts", [Write(f"w{i}", "create", f"en-{i}", {**spec.person(i), "Title": title})
                                    for i in range(10)])
    assert {r.status for r in made} == {"created"} and write_calls(sandbox, spec) == 0
    held = {r.id: r.fields for r in sandbox.ctx.store.records("salesforce", "Contact")}
    assert [held[r.crm_id]["Title"] for r in made] == [title] * 10
