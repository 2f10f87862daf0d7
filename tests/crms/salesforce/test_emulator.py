"""The sandbox's Salesforce, driven through simple-salesforce over HTTPS exactly as a connector
drives a real org: fetch a token with requests, then Salesforce(instance_url=, session_id=)."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import datetime, timedelta, timezone
from typing import Iterator

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession, SalesforceGeneralError, SalesforceMalformedRequest, SalesforceOperationError,
    SalesforceRefusedRequest,
)

from crm_pipelines.sandbox.app import SandboxContext, build_app
from crm_pipelines.sandbox.faults import FaultRule
from crm_pipelines.crms.salesforce.emulator import CRM, add_custom_field, insert, seed
from crm_pipelines.crms.salesforce.emulator.schema import id_suffix

QUERY = "/services/data/{version}/query/"
QUERY_MORE = "/services/data/{version}/query/{locator}"
COLLECTIONS = "/services/data/{version}/composite/sobjects"
BY_EXTERNAL_ID = "/services/data/{version}/sobjects/{sobject}/{field}/{value}"


def token(base_url: str, **form: str) -> requests.Response:
    data = {"grant_type": "client_credentials", "client_id": "sandbox-client", "client_secret": "sandbox-secret"}
    return requests.post(f"{base_url}/services/oauth2/token", data={**data, **form}, timeout=10)


@pytest.fixture
def sf(sandbox) -> Iterator[Salesforce]:
    answer = token(sandbox.base_url).json()
    client = Salesforce(instance_url=answer["instance_url"], session_id=answer["access_token"])
    yield client
    client.session.close()


def calls(sandbox, method: str, endpoint: str) -> int:
    return sandbox.ctx.stats.calls[(CRM, method, endpoint)]


def contacts(sandbox, n: int, **fields) -> list[str]:
    """Seed n Contacts straight into the store: thousands of HTTP creates would only slow tests."""
    return [insert(sandbox.ctx, "Contact", {"LastName": f"Person{i:05d}", **fields}).id for i in range(n)]


def history_ops(sandbox, obj: str) -> list[str]:
    return [c.op for r in sandbox.ctx.store.records(CRM, obj, include_deleted=True) for c in r.history]


# --- Authentication and limits -----------------------------------------------------------------

def test_a_client_credentials_token_builds_a_working_client_and_reports_api_usage(sandbox, sf):
    """The connector cannot use simple-salesforce's own login (it builds *.salesforce.com URLs), so
    the token endpoint must answer what a real org answers, and instance_url must be the sandbox."""
    answer = token(sandbox.base_url).json()
    assert answer["instance_url"] == sandbox.base_url
    assert answer["token_type"] == "Bearer" and answer["signature"] and answer["issued_at"].isdigit()
    assert sf.query("SELECT Id FROM Contact")["totalSize"] == 0
    assert sf.api_usage["api-usage"].total == 100_000
    assert sf.api_usage["api-usage"].used == 1  # OAuth calls do not count against the quota


def test_the_password_grant_checks_the_sandbox_user_and_wrong_secrets_are_refused(sandbox):
    """Both grants the pipeline may be configured with must work, and bad credentials must fail
    the way Salesforce fails them (an OAuth error body, not a REST one)."""
    ok = token(sandbox.base_url, grant_type="password", username="integration@enginy-customer.com",
               password="sandbox-password")
    assert ok.status_code == 200
    bad = token(sandbox.base_url, client_secret="nope")
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_client"
    wrong_user = token(sandbox.base_url, grant_type="password", username="x", password="y")
    assert wrong_user.json()["error"] == "invalid_grant"


def test_a_request_without_a_valid_session_answers_invalid_session_id(sandbox):
    """simple-salesforce refreshes its session only on a 401 whose body says INVALID_SESSION_ID."""
    sf = Salesforce(instance_url=sandbox.base_url, session_id="00Dnot-a-token")
    with pytest.raises(SalesforceExpiredSession) as exc, sf.session:
        sf.query("SELECT Id FROM Contact")
    assert exc.value.content == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def test_an_expired_session_answers_invalid_session_id(sandbox, sf):
    """Long backfills outlive a session; the connector must notice and fetch a new token."""
    sandbox.ctx.crm_settings(CRM)["session_seconds"] = 0
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT Id FROM Contact")


def test_a_spent_daily_quota_answers_request_limit_exceeded(sandbox, sf):
    """Backfills must stop cleanly when the org's API allowance runs out."""
    sandbox.ctx.crm_settings(CRM)["daily_api_requests"] = 2
    sf.query("SELECT Id FROM Contact")
    sf.query("SELECT Id FROM Contact")
    with pytest.raises(SalesforceRefusedRequest) as exc:
        sf.query("SELECT Id FROM Contact")
    assert exc.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


# --- Query ---------------------------------------------------------------------------------------

def test_query_all_pages_4500_records_in_three_calls_of_at_most_2000(sandbox, sf):
    """Pull cost is counted in calls: 4,500 records must take exactly one query and two
    queryMore calls through nextRecordsUrl, as in a real org."""
    contacts(sandbox, 4500)
    first = sf.query("SELECT Id, LastName FROM Contact")
    assert len(first["records"]) == 2000 and not first["done"] and first["totalSize"] == 4500
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
    records = sf.query_all("SELECT Id, LastName FROM Contact")["records"]
    assert len({r["Id"] for r in records}) == 4500
    assert calls(sandbox, "GET", QUERY) == 2
    assert calls(sandbox, "GET", QUERY_MORE) == 2  # query_all's two follow-up pages
    assert sandbox.ctx.stats.records[(CRM, "GET", QUERY)] == 2000 + 2000
    assert sandbox.ctx.stats.records[(CRM, "GET", QUERY_MORE)] == 2500


def test_the_batch_size_header_lowers_the_page_size_but_never_below_200(sandbox, sf):
    """Sforce-Query-Options: batchSize is a hint with Salesforce's bounds (200..2,000)."""
    contacts(sandbox, 450)
    page = sf.query("SELECT Id FROM Contact", headers={"Sforce-Query-Options": "batchSize=300"})
    assert len(page["records"]) == 300
    page = sf.query("SELECT Id FROM Contact", headers={"Sforce-Query-Options": "batchSize=10"})
    assert len(page["records"]) == 200


def test_query_all_includes_deleted_records_and_query_does_not(sandbox, sf):
    """Deletes reach the warehouse only through queryAll's IsDeleted = true rows."""
    kept, gone = contacts(sandbox, 2)
    sf.Contact.delete(gone)
    assert [r["Id"] for r in sf.query("SELECT Id FROM Contact")["records"]] == [kept]
    rows = sf.query_all("SELECT Id, IsDeleted FROM Contact WHERE IsDeleted = true", include_deleted=True)
    assert [(r["Id"], r["IsDeleted"]) for r in rows["records"]] == [(gone, True)]


def test_soql_comparisons_in_like_and_null_filter_like_salesforce(sandbox, sf):
    """String comparisons are case-insensitive in SOQL; LIKE uses % and _ wildcards."""
    insert(sandbox.ctx, "Contact", {"LastName": "Ada", "Email": "ada@acme.com", "Enginy_Opens__c": 3})
    insert(sandbox.ctx, "Contact", {"LastName": "Bob", "Email": "bob@other.org", "Enginy_Opens__c": 7})
    insert(sandbox.ctx, "Contact", {"LastName": "Cy"})

    def names(where: str) -> list[str]:
        soql = f"SELECT LastName FROM Contact WHERE {where} ORDER BY LastName"
        return [r["LastName"] for r in sf.query(soql)["records"]]

    assert names("LastName = 'ADA'") == ["Ada"]
    assert names("LastName != 'Ada'") == ["Bob", "Cy"]
    assert names("Enginy_Opens__c >= 3 AND Enginy_Opens__c < 7") == ["Ada"]
    assert names("LastName IN ('ada', 'cy')") == ["Ada", "Cy"]
    assert names("LastName NOT IN ('ada', 'cy')") == ["Bob"]
    assert names("Email LIKE '%@acme.%'") == ["Ada"]
    assert names("Email = null") == ["Cy"]
    assert names("NOT (Email = null)") == ["Ada", "Bob"]
    assert names("(LastName = 'Ada' OR LastName = 'Bob') AND Email LIKE '%.org'") == ["Bob"]


def test_soql_datetime_and_date_literals_select_incremental_windows(sandbox, sf):
    """Incremental pulls filter SystemModstamp with both 2024-01-01T00:00:00Z and +00:00 forms."""
    old = insert(sandbox.ctx, "Contact", {"LastName": "Old", "Birthdate": "1990-05-01"},
                 created_at=datetime(2023, 6, 1, tzinfo=timezone.utc)).id
    new = insert(sandbox.ctx, "Contact", {"LastName": "New"},
                 created_at=datetime(2024, 3, 1, tzinfo=timezone.utc)).id

    def ids(where: str) -> list[str]:
        return [r["Id"] for r in sf.query(f"SELECT Id FROM Contact WHERE {where}")["records"]]

    assert ids("SystemModstamp > 2024-01-01T00:00:00Z") == [new]
    assert ids("SystemModstamp <= 2024-01-01T00:00:00+00:00") == [old]
    assert ids("CreatedDate < 2024-01-01T01:00:00+01:00") == [old]
    assert ids("Birthdate = 1990-05-01") == [old]
    assert ids("CreatedDate = LAST_N_DAYS:30") == []


def test_soql_order_by_several_fields_with_limit_offset_and_count(sandbox, sf):
    """Stable ordering is what lets a pull resume; COUNT() sizes a backfill before it starts."""
    for last, first in [("B", "x"), ("A", "z"), ("B", "a"), ("C", None)]:
        insert(sandbox.ctx, "Contact", {"LastName": last, "FirstName": first})
    rows = sf.query("SELECT FirstName, LastName FROM Contact ORDER BY LastName DESC, FirstName ASC "
                    "LIMIT 3 OFFSET 1")["records"]
    assert [(r["LastName"], r["FirstName"]) for r in rows] == [("B", "a"), ("B", "x"), ("A", "z")]
    count = sf.query("SELECT COUNT() FROM Contact WHERE LastName = 'B'")
    assert count["totalSize"] == 2 and count["records"] == []


def test_relationship_fields_come_back_nested_with_their_attributes(sandbox, sf):
    """Account.Name and Owner.Email are how the pull joins companies and owners in one query."""
    account = insert(sandbox.ctx, "Account", {"Name": "Acme"}).id
    user = insert(sandbox.ctx, "User", {"LastName": "Rep", "Email": "rep@acme.com", "Username": "rep@acme.com",
                                        "Alias": "rep"}).id
    insert(sandbox.ctx, "Contact", {"LastName": "A", "AccountId": account, "OwnerId": user})
    insert(sandbox.ctx, "Contact", {"LastName": "B"})
    rows = sf.query("SELECT LastName, Account.Name, Owner.Email FROM Contact ORDER BY LastName")["records"]
    assert rows[0]["Account"]["Name"] == "Acme" and rows[0]["Account"]["attributes"]["type"] == "Account"
    assert rows[0]["Owner"]["Email"] == "rep@acme.com"
    assert rows[1]["Account"] is None
    assert rows[1]["Owner"]["Email"] == "integration@enginy-customer.com"


def test_malformed_soql_and_unknown_fields_answer_salesforce_error_codes(sandbox, sf):
    """The pull surfaces these codes to users; mixing AND and OR without parentheses is an error."""
    cases = {
        "SELECT Id FROM Contact WHERE LastName = 'a' AND Email = 'b' OR Phone = 'c'": "MALFORMED_QUERY",
        "SELECT Id FROM": "MALFORMED_QUERY",
        "SELECT Id, Nope__c FROM Contact": "INVALID_FIELD",
        "SELECT Id FROM Contact WHERE CreatedDate > '2024-01-01'": "INVALID_FIELD",
        "SELECT Id FROM Widget__c": "INVALID_TYPE",
    }
    for soql, code in cases.items():
        with pytest.raises(SalesforceMalformedRequest) as exc:
            sf.query(soql)
        assert exc.value.content[0]["errorCode"] == code, soql


# --- Describe and custom fields --------------------------------------------------------------------

def test_describe_shows_types_access_picklists_and_the_integration_fields(sandbox, sf):
    """Field mapping is validated against describe: types, createable/updateable, external ids."""
    fields = {f["name"]: f for f in sf.Contact.describe()["fields"]}
    assert fields["Id"]["type"] == "id"
    assert not fields["Name"]["createable"] and not fields["Name"]["updateable"]
    assert not fields["CreatedDate"]["createable"] and fields["CreatedDate"]["type"] == "datetime"
    assert fields["AccountId"]["referenceTo"] == ["Account"] and fields["AccountId"]["relationshipName"] == "Account"
    assert fields["Enginy_Id__c"]["externalId"] and fields["Enginy_Id__c"]["unique"] and fields["Enginy_Id__c"]["custom"]
    assert fields["LinkedIn_Profile__c"]["type"] == "url"
    assert {"value": "Enginy", "label": "Enginy"}.items() <= fields["LeadSource"]["picklistValues"][-1].items()
    assert not fields["LastName"]["nillable"]
    account = {f["name"]: f for f in sf.Account.describe()["fields"]}
    assert account["LinkedIn_Company_Page__c"]["type"] == "url" and account["Enginy_Id__c"]["externalId"]
    names = [o["name"] for o in sf.describe()["sobjects"]]
    assert names == ["Contact", "Lead", "Account", "User", "Task"]


def test_an_org_with_300_custom_fields_needs_its_field_list_split_under_the_uri_limit(sandbox, sf):
    """A 16,384-byte request URI is Salesforce's limit, so a pull selecting hundreds of long custom
    field names must split its field list; each half still works."""
    names = [f"Enginy_Custom_Property_Number_{i:03d}_With_A_Long_Name__c" for i in range(300)]
    requests.post(f"{sandbox.base_url}/_sandbox/salesforce/fields/Contact", timeout=10,
                  json=[{"name": n, "type": "string", "length": 80} for n in names]).raise_for_status()
    described = {f["name"] for f in sf.Contact.describe()["fields"]}
    assert set(names) <= described
    insert(sandbox.ctx, "Contact", {"LastName": "Wide", names[299]: "last one"})

    def uri_bytes(soql: str) -> int:
        prepared = requests.Request("GET", f"{sf.base_url}query/", params={"q": soql}).prepare()
        return len(prepared.path_url.encode())

    everything = f"SELECT Id, {', '.join(names)} FROM Contact"
    assert uri_bytes(everything) > 16_384
    with pytest.raises(SalesforceGeneralError) as exc:
        sf.query(everything)
    assert exc.value.status == 414
    halves = [names[:150], names[150:]]
    assert all(uri_bytes(f"SELECT Id, {', '.join(h)} FROM Contact") < 16_384 for h in halves)
    rows = [sf.query(f"SELECT Id, {', '.join(h)} FROM Contact")["records"][0] for h in halves]
    assert rows[1][names[299]] == "last one" and rows[0]["Id"] == rows[1]["Id"]


def test_the_uri_limit_itself_answers_414_past_16384_bytes():
    """The limit is exact: 16,384 bytes of path and query pass, one more byte is refused. Checked on
    the application itself so the boundary does not depend on the client's extra headers."""
    app = build_app(SandboxContext())
    base = "/services/data/v59.0/query/"
    assert _asgi_get(app, base, b"q=" + b"x" * (16_384 - len(base) - 3)) == 401  # within: on to the session check
    assert _asgi_get(app, base, b"q=" + b"x" * (16_384 - len(base) - 2)) == 414


def _asgi_get(app, path: str, query: bytes) -> int:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "https", "path": path, "raw_path": path.encode(), "query_string": query,
             "root_path": "", "headers": [(b"host", b"sandbox")], "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 443)}
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"]


def test_a_custom_restricted_picklist_added_at_run_time_is_described_and_enforced(sandbox, sf):
    """Customer orgs differ; mapping checks and pushes must see the org's own picklists."""
    add_custom_field(sandbox.ctx, "Contact", "Tier__c", "picklist", picklistValues=["Gold", "Silver"],
                     restricted=True)
    described = {f["name"]: f for f in sf.Contact.describe()["fields"]}["Tier__c"]
    assert [p["value"] for p in described["picklistValues"]] == ["Gold", "Silver"] and described["custom"]
    assert sf.Contact.create({"LastName": "A", "Tier__c": "Gold"})["success"]
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Contact.create({"LastName": "B", "Tier__c": "Bronze"})
    assert exc.value.content[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert sf.query("SELECT LastName FROM Contact WHERE Tier__c = 'gold'")["totalSize"] == 1


def test_soql_over_100000_characters_is_refused_even_in_a_bulk_query_job(sandbox, sf):
    """POSTed queries escape the URI limit but not Salesforce's SOQL length limit."""
    long_in = ", ".join(f"'{i:08d}'" for i in range(10_000))
    with pytest.raises(SalesforceMalformedRequest) as exc:
        list(sf.bulk2.Contact.query(f"SELECT Id FROM Contact WHERE LastName IN ({long_in})", wait=0))
    assert exc.value.content[0]["errorCode"] == "MALFORMED_QUERY"


# --- Writes ---------------------------------------------------------------------------------------

def test_single_record_create_read_update_delete(sandbox, sf):
    """The REST row resource is the fallback path for single pushes and repairs."""
    created = sf.Contact.create({"LastName": "Lovelace", "FirstName": "Ada", "Email": "ada@acme.com"})
    record_id = created["id"]
    assert record_id.startswith("003") and len(record_id) == 18 and record_id[15:] == id_suffix(record_id[:15])
    got = sf.Contact.get(record_id)
    assert got["Name"] == "Ada Lovelace" and got["IsDeleted"] is False and got["OwnerId"].startswith("005")
    assert sf.Contact.update(record_id, {"Title": "Countess"}) == 204
    assert sf.Contact.get(record_id)["Title"] == "Countess"
    assert sf.Contact.delete(record_id) == 204
    assert history_ops(sandbox, "Contact") == ["create", "update", "delete"]


def test_records_are_read_by_id_with_a_field_subset_and_by_external_id(sandbox, sf):
    """Repairs read one record back by Salesforce id or by the Enginy id the push wrote."""
    record = insert(sandbox.ctx, "Contact", {"LastName": "Ada", "Email": "ada@acme.com", "Enginy_Id__c": "ct-9"})
    subset = sf.Contact.get(record.id[:15], params={"fields": "Email,LastName"})
    assert set(subset) == {"attributes", "Email", "LastName"}
    assert sf.Contact.get_by_custom_id("Enginy_Id__c", "ct-9")["Id"] == record.id
    with pytest.raises(Exception) as exc:
        sf.Contact.get_by_custom_id("Enginy_Id__c", "missing")
    assert exc.value.status == 404


def test_a_lead_gets_the_default_status_and_lead_duplicates_match_on_company(sandbox, sf):
    """Leads are deduplicated by name and Company, not by Account, in the standard rule."""
    lead = sf.Lead.create({"LastName": "Ng", "FirstName": "Kim", "Company": "Acme"})
    assert sf.Lead.get(lead["id"])["Status"] == "Open - Not Contacted"
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Lead.create({"LastName": "ng", "FirstName": "KIM", "Company": "acme"})
    assert exc.value.content[0]["errorCode"] == "DUPLICATES_DETECTED"
    assert sf.Lead.create({"LastName": "Ng", "FirstName": "Kim", "Company": "Other Co"})["success"]


def test_writes_are_checked_for_access_required_fields_picklists_and_references(sandbox, sf):
    """Each check answers Salesforce's own code, which the push keeps as the rejection reason."""
    cases = [
        ({"LastName": "A", "Name": "Full"}, "INVALID_FIELD_FOR_INSERT_UPDATE"),
        ({"FirstName": "NoLast"}, "REQUIRED_FIELD_MISSING"),
        ({"LastName": "A", "LeadSource": "Carrier pigeon"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"),
        ({"LastName": "A", "AccountId": "001000000000000AAA"}, "INVALID_CROSS_REFERENCE_KEY"),
        ({"LastName": "A", "Enginy_Opens__c": "many"}, "INVALID_TYPE_ON_FIELD_IN_RECORD"),
        ({"LastName": "A", "Email": "not-an-email"}, "INVALID_EMAIL_ADDRESS"),
        ({"LastName": "A", "Nope__c": 1}, "INVALID_FIELD"),
    ]
    for payload, code in cases:
        with pytest.raises(SalesforceMalformedRequest) as exc:
            sf.Contact.create(payload)
        assert exc.value.content[0]["errorCode"] == code, payload
    assert sandbox.ctx.store.records(CRM, "Contact") == []


def test_upsert_by_external_id_creates_once_then_updates(sandbox, sf):
    """Enginy_Id__c makes pushes idempotent: the second upsert of the same id is an update."""
    assert sf.Contact.upsert("Enginy_Id__c/ct-1", {"LastName": "First"}) == 201
    assert sf.Contact.upsert("Enginy_Id__c/ct-1", {"LastName": "Second"}) == 200
    [record] = sandbox.ctx.store.records(CRM, "Contact")
    assert record.fields["LastName"] == "Second" and record.fields["Enginy_Id__c"] == "ct-1"
    assert history_ops(sandbox, "Contact") == ["create", "update"]
    insert(sandbox.ctx, "Contact", {"LastName": "Twin", "Enginy_Id__c": "ct-2"})
    insert(sandbox.ctx, "Contact", {"LastName": "Twin", "Enginy_Id__c": "ct-2"})
    with pytest.raises(Exception) as exc:
        sf.Contact.upsert("Enginy_Id__c/ct-2", {"LastName": "Which"})
    assert exc.value.status == 300 and len(exc.value.content) == 2


def test_a_collection_of_200_records_is_accepted_and_201_is_refused(sandbox, sf):
    """sObject Collections take at most 200 records; the push batches by that number."""
    records = [{"attributes": {"type": "Contact"}, "LastName": f"L{i}"} for i in range(201)]
    results = sf.restful("composite/sobjects", method="POST", json={"allOrNone": False, "records": records[:200]})
    assert len(results) == 200 and all(r["success"] for r in results)
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.restful("composite/sobjects", method="POST", json={"allOrNone": False, "records": records})
    assert exc.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    assert sandbox.ctx.stats.records[(CRM, "POST", COLLECTIONS)] == 200  # the refused call wrote nothing


def test_all_or_none_writes_nothing_when_one_record_fails(sandbox, sf):
    """With allOrNone every record fails together, and the history shows no write at all."""
    records = [{"attributes": {"type": "Contact"}, "LastName": "Ok"}, {"attributes": {"type": "Contact"}}]
    results = sf.restful("composite/sobjects", method="POST", json={"allOrNone": True, "records": records})
    assert [r["success"] for r in results] == [False, False]
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert results[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert history_ops(sandbox, "Contact") == []
    results = sf.restful("composite/sobjects", method="POST", json={"allOrNone": False, "records": records})
    assert [r["success"] for r in results] == [True, False]


def test_collection_update_delete_and_upsert_answer_per_record_results(sandbox, sf):
    """Update, delete by ids and upsert by external id are the push's batch operations."""
    a, b = contacts(sandbox, 2)
    updated = sf.restful("composite/sobjects", method="PATCH", json={"records": [
        {"attributes": {"type": "Contact"}, "Id": a, "Title": "CEO"},
        {"attributes": {"type": "Contact"}, "Title": "no id"}]})
    assert updated[0] == {"id": a, "success": True, "errors": []}
    assert updated[1]["errors"][0]["statusCode"] == "MISSING_ARGUMENT"
    upserted = sf.restful("composite/sobjects/Contact/Enginy_Id__c", method="PATCH", json={"records": [
        {"attributes": {"type": "Contact"}, "Enginy_Id__c": "e-1", "LastName": "New"}]})
    assert upserted[0]["created"] is True
    again = sf.restful("composite/sobjects/Contact/Enginy_Id__c", method="PATCH", json={"records": [
        {"attributes": {"type": "Contact"}, "Enginy_Id__c": "E-1", "LastName": "Newer"}]})
    assert again[0] == {"id": upserted[0]["id"], "success": True, "errors": [], "created": False}
    twice = sf.restful("composite/sobjects/Contact/Enginy_Id__c", method="PATCH", json={"records": [
        {"attributes": {"type": "Contact"}, "Enginy_Id__c": "e-2", "LastName": "One"},
        {"attributes": {"type": "Contact"}, "Enginy_Id__c": "e-2", "LastName": "Two"}]})
    assert twice[0]["created"] and twice[1]["errors"][0]["statusCode"] == "DUPLICATE_EXTERNAL_ID"
    deleted = sf.restful("composite/sobjects", method="DELETE", params={"ids": f"{a},{b}"})
    assert [d["success"] for d in deleted] == [True, True]


def test_a_duplicate_contact_is_refused_unless_the_allow_save_header_is_sent(sandbox, sf):
    """create_on_duplicate_warning maps to this header; without it the duplicate rule blocks."""
    sf.Contact.create({"LastName": "Lovelace", "Email": "ada@acme.com"})
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Contact.create({"LastName": "Other", "Email": "ADA@acme.com"})
    error = exc.value.content[0]
    assert error["errorCode"] == "DUPLICATES_DETECTED"
    match = error["duplicateResult"]["matchResults"][0]
    assert match["entityType"] == "Contact" and match["matchRecords"][0]["record"]["Id"].startswith("003")
    results = sf.restful("composite/sobjects", method="POST", json={"records": [
        {"attributes": {"type": "Contact"}, "LastName": "Lovelace", "Email": "ada@acme.com"}]})
    assert results[0]["errors"][0]["statusCode"] == "DUPLICATES_DETECTED"
    created = sf.Contact.create({"LastName": "Other", "Email": "ada@acme.com"},
                                headers={"Sforce-Duplicate-Rule-Header": "allowSave=true"})
    assert created["success"]
    sandbox.ctx.crm_settings(CRM)["duplicate_rules"] = {"Contact": False}
    assert sf.Contact.create({"LastName": "Third", "Email": "ada@acme.com"})["success"]


def test_an_org_validation_rule_answers_field_custom_validation_exception(sandbox, sf):
    """Customer orgs carry validation rules the push cannot know; their message must reach the
    rejected-rows report."""
    sandbox.ctx.crm_settings(CRM)["validation_rules"] = [
        {"object": "Contact", "field": "Phone", "condition": "regex", "value": r"\+\d[\d ]+",
         "message": "Phone must be in international format"}]
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Contact.create({"LastName": "A", "Phone": "555-1234"})
    assert exc.value.content[0] == {"message": "Phone must be in international format",
                                    "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "fields": ["Phone"]}
    assert sf.Contact.create({"LastName": "A", "Phone": "+1 415 555 1234"})["success"]


def test_a_task_links_a_contact_and_an_account_for_activity_sync(sandbox, sf):
    """Campaign activities are pushed as Tasks attributed to a contact (WhoId) and company (WhatId)."""
    account = sf.Account.create({"Name": "Acme"})["id"]
    contact = sf.Contact.create({"LastName": "Ada", "AccountId": account})["id"]
    task = sf.Task.create({"WhoId": contact, "WhatId": account, "Subject": "Replied to campaign",
                           "Status": "Completed", "ActivityDate": "2024-05-01", "TaskSubtype": "Email",
                           "Type": "Email", "Description": "Positive reply"})
    assert task["id"].startswith("00T")
    row = sf.query("SELECT Who.Name, What.Name, IsClosed, ActivityDate FROM Task")["records"][0]
    assert row["Who"]["Name"] == "Ada" and row["What"]["Name"] == "Acme" and row["IsClosed"] is True


# --- Bulk API 2.0 ---------------------------------------------------------------------------------

def test_bulk2_insert_then_query_round_trips_records_with_failures_reported(sandbox, sf):
    """Bulk is the pipeline's path for large pushes and pulls; failures come back as CSV rows."""
    rows = [{"LastName": f"Bulk{i}", "Email": f"b{i}@x.com"} for i in range(5)] + [{"LastName": "", "Email": ""}]
    [result] = sf.bulk2.Contact.insert(records=rows, wait=0)
    assert result["numberRecordsProcessed"] == 6 and result["numberRecordsFailed"] == 1
    failed = list(csv.DictReader(io.StringIO(sf.bulk2.Contact.get_failed_records(result["job_id"]))))
    assert failed[0]["sf__Error"].startswith("REQUIRED_FIELD_MISSING")
    ok = list(csv.DictReader(io.StringIO(sf.bulk2.Contact.get_successful_records(result["job_id"]))))
    assert len(ok) == 5 and ok[0]["sf__Created"] == "true"
    pages = list(sf.bulk2.Contact.query("SELECT Id, LastName FROM Contact ORDER BY LastName", max_records=2,
                                        wait=0))
    assert len(pages) == 3
    names = [r["LastName"] for page in pages for r in csv.DictReader(io.StringIO(page))]
    assert names == [f"Bulk{i}" for i in range(5)]


def test_a_bulk_job_can_be_made_to_report_in_progress_before_it_completes(sandbox, sf):
    """Connectors poll bulk jobs; the sandbox can hold a job InProgress for a few polls."""
    sandbox.ctx.crm_settings(CRM)["bulk_polls_in_progress"] = 2
    [result] = sf.bulk2.Contact.insert(records=[{"LastName": "Slow"}], wait=0)
    assert result["numberRecordsProcessed"] == 1
    assert calls(sandbox, "GET", "/services/data/{version}/jobs/ingest/{job_id}") == 4  # 2 InProgress, done, info


def test_bulk2_upsert_by_external_id_creates_then_updates(sandbox, sf):
    """The bulk push is idempotent by Enginy_Id__c like the REST one."""
    rows = [{"Enginy_Id__c": "b-1", "LastName": "One"}, {"Enginy_Id__c": "b-2", "LastName": "Two"}]
    sf.bulk2.Contact.upsert(records=rows, external_id_field="Enginy_Id__c", wait=0)
    [result] = sf.bulk2.Contact.upsert(records=[{"Enginy_Id__c": "b-1", "LastName": "Uno"}],
                                       external_id_field="Enginy_Id__c", wait=0)
    ok = list(csv.DictReader(io.StringIO(sf.bulk2.Contact.get_successful_records(result["job_id"]))))
    assert ok[0]["sf__Created"] == "false"
    names = sorted(r.fields["LastName"] for r in sandbox.ctx.store.records(CRM, "Contact"))
    assert names == ["Two", "Uno"]


def test_a_bulk2_query_all_job_includes_deleted_records(sandbox, sf):
    """Bulk pulls of deletes use the queryAll operation, as the REST pull uses queryAll."""
    kept, gone = contacts(sandbox, 2)
    sf.Contact.delete(gone)
    pages = list(sf.bulk2.Contact.query_all("SELECT Id, IsDeleted FROM Contact", wait=0))
    rows = {r["Id"]: r["IsDeleted"] for page in pages for r in csv.DictReader(io.StringIO(page))}
    assert rows == {kept: "false", gone: "true"}


def test_a_bulk2_query_job_is_pk_chunked_and_answers_its_id_ranges_in_no_sorted_order(sandbox, sf):
    """A real org splits a bulk query by Id ranges and runs the chunks in parallel, so its results
    are not in Id or SystemModstamp order (Understanding Bulk API 2.0 Query, "Chunking Query
    Jobs"); the sandbox answers the last range first, so code that trusts the order fails here."""
    sandbox.ctx.crm_settings(CRM)["bulk_pk_chunk_size"] = 2
    ids = contacts(sandbox, 5)
    pages = list(sf.bulk2.Contact.query("SELECT Id FROM Contact", wait=0))
    got = [r["Id"] for page in pages for r in csv.DictReader(io.StringIO(page))]
    assert got == ids[4:] + ids[2:4] + ids[:2]
    created = sf.restful("jobs/query", method="POST", json={"operation": "query", "query": "SELECT Id FROM Contact"})
    assert sf.restful(f"jobs/query/{created['id']}")["isPkChunkingSupported"] is True


def test_an_ordered_bulk2_query_over_more_rows_than_the_org_reads_unchunked_fails_with_a_query_timeout(sandbox, sf):
    """ORDER BY (and LIMIT) turn PK chunking off, and an unchunked query over a big object times
    out (Bulk API 2.0, "Troubleshooting Query Timeouts"): the job is accepted, then fails."""
    sandbox.ctx.crm_settings(CRM)["bulk_unchunked_row_limit"] = 3
    contacts(sandbox, 4)
    with pytest.raises(SalesforceOperationError, match="QUERY_TIMEOUT"):
        list(sf.bulk2.Contact.query("SELECT Id FROM Contact ORDER BY SystemModstamp", wait=0))
    with pytest.raises(SalesforceOperationError, match="QUERY_TIMEOUT"):
        list(sf.bulk2.Contact.query("SELECT Id FROM Contact LIMIT 4", wait=0))
    assert len(list(sf.bulk2.Contact.query("SELECT Id FROM Contact ORDER BY Id LIMIT 3", wait=0))) == 1
    assert len(list(sf.bulk2.Contact.query("SELECT Id FROM Contact", wait=0))) == 1


# --- Faults ---------------------------------------------------------------------------------------

def test_an_injected_503_fails_one_call_and_the_retry_succeeds(sandbox, sf):
    """Retries are the connector's job; the sandbox must fail exactly the call it was told to."""
    sandbox.ctx.faults.add(FaultRule(crm=CRM, endpoint=QUERY, status=503, nth=1))
    with pytest.raises(SalesforceGeneralError) as exc:
        sf.query("SELECT Id FROM Contact")
    assert exc.value.status == 503 and exc.value.content[0]["errorCode"] == "SERVER_UNAVAILABLE"
    assert sf.query("SELECT Id FROM Contact")["done"]


def test_an_injected_429_carries_retry_after_to_the_client(sandbox, sf):
    """Backoff must honour Retry-After; read it from the client's own session response."""
    sandbox.ctx.faults.add(FaultRule(crm=CRM, endpoint=QUERY, status=429, retry_after=7, nth=1))
    response = sf.session.get(f"{sf.base_url}query/", params={"q": "SELECT Id FROM Contact"}, headers=sf.headers)
    assert response.status_code == 429 and response.headers["Retry-After"] == "7"
    assert response.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


def test_a_connection_dropped_after_an_upsert_leaves_one_record_after_the_retry(sandbox, sf):
    """The write happened but the reply was lost: retrying by external id must not duplicate."""
    sandbox.ctx.faults.add(FaultRule(crm=CRM, endpoint=BY_EXTERNAL_ID, method="PATCH", kind="drop", nth=1))
    with pytest.raises(requests.exceptions.RequestException):  # a broken, half-read reply
        sf.Contact.upsert("Enginy_Id__c/drop-1", {"LastName": "Once"})
    assert sf.Contact.upsert("Enginy_Id__c/drop-1", {"LastName": "Once"}) == 200
    assert history_ops(sandbox, "Contact") == ["create", "update"]


# --- Replication and seeding -------------------------------------------------------------------------

def test_updated_and_deleted_endpoints_list_changes_in_a_window(sandbox, sf):
    """The sync's cheap change feed: ids changed and deleted between two instants."""
    now = datetime.now(timezone.utc)
    a, b = contacts(sandbox, 2)
    sf.Contact.delete(b)
    start, end = now - timedelta(minutes=5), now + timedelta(minutes=5)
    assert sf.Contact.updated(start, end)["ids"] == [a]
    deleted = sf.Contact.deleted(start, end)["deletedRecords"]
    assert [d["id"] for d in deleted] == [b]
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Contact.updated(now - timedelta(days=40), end)
    assert exc.value.content[0]["errorCode"] == "INVALID_REPLICATION_DATE"


def test_seed_maps_generated_data_onto_salesforce_objects_with_seed_ids_hidden(sandbox, sf):
    """Tests join sandbox records back to ground-truth labels by seed_id, which the API never shows."""
    from crm_pipelines.enginy.generator import generate_frames

    data = generate_frames(200).crm
    seed(sandbox.ctx, data)
    leads = int(data.contacts["is_lead"].sum())
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == leads
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == len(data.contacts) - leads
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == len(data.companies)
    contact = next(r for r in sandbox.ctx.store.records(CRM, "Contact") if r.fields.get("Email"))
    truth = data.contacts.set_index("seed_id").loc[contact.fields["_seed_id"]]
    row = sf.query(f"SELECT Email, Account.Name, Owner.Email, CreatedDate FROM Contact WHERE Id = '{contact.id}'")
    record = row["records"][0]
    assert record["Email"] == truth["email"] and "_seed_id" not in record
    assert record["CreatedDate"].startswith(truth["created_at"].strftime("%Y-%m-%dT%H:%M:%S"))
    assert record["Owner"]["Email"] in set(data.users["email"])
    with pytest.raises(SalesforceMalformedRequest):
        sf.query("SELECT _seed_id FROM Contact")
