"""The sandbox's Zoho CRM over plain HTTP (requests): what a Zoho client depends on."""

from datetime import datetime, timedelta, timezone

import pytest
import requests

from crm_pipelines.crms.zoho import emulator as zoho
from crm_pipelines.sandbox.faults import FaultRule

API = zoho.API


def new_token(sandbox) -> str:
    answer = requests.post(f"{sandbox.base_url}/oauth/v2/token", data={
        "grant_type": "refresh_token", "client_id": zoho.CLIENT_ID, "client_secret": zoho.CLIENT_SECRET,
        "refresh_token": zoho.REFRESH_TOKEN}, timeout=10)
    assert answer.status_code == 200
    return answer.json()["access_token"]


@pytest.fixture
def call(sandbox):
    token = new_token(sandbox)

    def send(method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Zoho-oauthtoken {token}", **kwargs.pop("headers", {})}
        return requests.request(method, f"{sandbox.base_url}{API}{path}", headers=headers, timeout=10, **kwargs)

    return send


def contact(sandbox, last: str, **fields) -> str:
    return zoho.insert(sandbox.ctx, "Contacts", {"Last_Name": last, **fields}).id


def test_a_refresh_token_buys_an_access_token_and_a_wrong_one_is_refused_with_200(sandbox) -> None:
    url = f"{sandbox.base_url}/oauth/v2/token"
    wrong = requests.post(url, data={"grant_type": "refresh_token", "client_id": zoho.CLIENT_ID,
                                     "client_secret": zoho.CLIENT_SECRET, "refresh_token": "1000.stolen"}, timeout=10)
    assert wrong.status_code == 200 and wrong.json() == {"error": "invalid_code"}
    token = new_token(sandbox)
    answer = requests.get(f"{sandbox.base_url}{API}/users", headers={"Authorization": f"Zoho-oauthtoken {token}"},
                          timeout=10)
    assert answer.status_code == 204  # no users yet
    bearer = requests.get(f"{sandbox.base_url}{API}/users", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert bearer.status_code == 401 and bearer.json()["code"] == "INVALID_TOKEN"


def test_an_expired_access_token_answers_401_invalid_token(sandbox, call) -> None:
    assert call("GET", "/settings/fields", params={"module": "Contacts"}).status_code == 200
    zoho.expire_tokens(sandbox.ctx)
    refused = call("GET", "/settings/fields", params={"module": "Contacts"})
    assert refused.status_code == 401 and refused.json() == {
        "code": "INVALID_TOKEN", "details": {}, "message": "invalid oauth token", "status": "error"}


def test_the_accounts_server_refuses_an_eleventh_token_within_ten_minutes(sandbox) -> None:
    for _ in range(10):
        new_token(sandbox)
    answer = requests.post(f"{sandbox.base_url}/oauth/v2/token", data={
        "grant_type": "refresh_token", "client_id": zoho.CLIENT_ID, "client_secret": zoho.CLIENT_SECRET,
        "refresh_token": zoho.REFRESH_TOKEN}, timeout=10)
    assert answer.status_code == 400 and answer.json()["error"] == "Access Denied"


def test_listing_needs_fields_and_pages_with_a_page_token_past_two_thousand_records(sandbox, call) -> None:
    for i in range(7):
        contact(sandbox, f"L{i}")
    assert call("GET", "/Contacts").json()["code"] == "REQUIRED_PARAM_MISSING"
    first = call("GET", "/Contacts", params={"fields": "Last_Name", "per_page": 3, "sort_by": "id",
                                             "sort_order": "asc"}).json()
    assert [r["Last_Name"] for r in first["data"]] == ["L0", "L1", "L2"] and first["info"]["more_records"]
    second = call("GET", "/Contacts", params={"fields": "Last_Name", "per_page": 3, "sort_by": "id",
                                              "sort_order": "asc", "page_token": first["info"]["next_page_token"]})
    assert [r["Last_Name"] for r in second.json()["data"]] == ["L3", "L4", "L5"]
    too_far = call("GET", "/Contacts", params={"fields": "Last_Name", "per_page": 200, "page": 11})
    assert too_far.status_code == 400 and too_far.json()["code"] == "DISCRETE_PAGINATION_LIMIT_EXCEEDED"


def test_if_modified_since_lists_only_later_changes_and_an_empty_list_is_204(sandbox, call) -> None:
    an_hour_ago = datetime.now(timezone.utc) - timedelta(hours=1)
    old = zoho.insert(sandbox.ctx, "Contacts", {"Last_Name": "Old"}, created_at=an_hour_ago).id
    stamp = an_hour_ago.replace(microsecond=0).isoformat()
    assert call("GET", "/Contacts", params={"fields": "Last_Name"}, headers={"If-Modified-Since": stamp}
                ).status_code == 204
    updated = call("PUT", "/Contacts", json={"data": [{"id": old, "Title": "CTO"}]})
    assert updated.status_code == 200 and updated.json()["data"][0]["code"] == "SUCCESS"
    listed = call("GET", "/Contacts", params={"fields": "Title,Modified_Time"}, headers={"If-Modified-Since": stamp})
    assert [r["Title"] for r in listed.json()["data"]] == ["CTO"]


def test_coql_filters_sorts_and_enforces_its_row_and_offset_limits(sandbox, call) -> None:
    for i in range(5):
        contact(sandbox, f"L{i}", Email=f"l{i}@coql.example")
    query = ("select Last_Name, Email from Contacts where Last_Name like 'L%' and Email != 'l0@coql.example' "
             "order by Last_Name desc limit 1, 2")
    answer = call("POST", "/coql", json={"select_query": query}).json()
    assert [r["Last_Name"] for r in answer["data"]] == ["L3", "L2"] and answer["info"] == {
        "count": 2, "more_records": True}
    assert call("POST", "/coql", json={"select_query": "select Last_Name from Contacts"}).json()[
        "code"] == "SYNTAX_ERROR"
    big = call("POST", "/coql", json={"select_query": "select id from Contacts where id is not null limit 2001"})
    assert big.status_code == 400 and big.json()["code"] == "LIMIT_EXCEEDED"
    far = call("POST", "/coql", json={"select_query": "select id from Contacts where id is not null limit 9000, 2000"})
    assert far.status_code == 400 and far.json()["details"]["by"] == "offset"
    nothing = call("POST", "/coql", json={"select_query": "select id from Contacts where Last_Name = 'Nobody'"})
    assert nothing.status_code == 204


def test_coql_compares_modified_time_as_a_time_whatever_its_offset(sandbox, call) -> None:
    record = sandbox.ctx.store.get("zoho", "Contacts", contact(sandbox, "Timed"))
    later = record.modified_at.replace(microsecond=0).astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()
    hit = call("POST", "/coql", json={"select_query": f"select Modified_Time from Contacts where Modified_Time >= "
                                                      f"'{later}'"})
    assert hit.status_code == 200 and len(hit.json()["data"]) == 1
    miss = call("POST", "/coql", json={"select_query": f"select Modified_Time from Contacts where Modified_Time > "
                                                       f"'{later}'"})
    assert miss.status_code == 204


def test_upsert_checks_duplicates_on_a_unique_field_and_answers_per_record(sandbox, call) -> None:
    account = zoho.insert(sandbox.ctx, "Accounts", {"Account_Name": "Acme"}).id
    body = {"duplicate_check_fields": ["Enginy_Id"], "data": [
        {"Last_Name": "Okafor", "Enginy_Id": "e-1", "Account_Name": {"id": account}},
        {"First_Name": "No last name", "Enginy_Id": "e-2"},
        {"Last_Name": "Bad", "Email": "not-an-email", "Enginy_Id": "e-3"}]}
    first = call("POST", "/Contacts/upsert", json=body)
    assert first.status_code == 207
    inserted, missing, invalid = first.json()["data"]
    assert inserted["action"] == "insert" and inserted["status"] == "success"
    assert missing["code"] == "MANDATORY_NOT_FOUND" and missing["details"]["api_name"] == "Last_Name"
    assert invalid["code"] == "INVALID_DATA" and invalid["details"]["expected_data_type"] == "email"
    again = call("POST", "/Contacts/upsert", json={"duplicate_check_fields": ["Enginy_Id"],
                                                   "data": [{"Last_Name": "Okafor-Smith", "Enginy_Id": "E-1"}]})
    entry = again.json()["data"][0]
    assert entry["action"] == "update" and entry["duplicate_field"] == "Enginy_Id"
    assert entry["details"]["id"] == inserted["details"]["id"]
    assert len(sandbox.ctx.store.records("zoho", "Contacts")) == 1
    not_unique = call("POST", "/Contacts/upsert", json={"duplicate_check_fields": ["Title"],
                                                        "data": [{"Last_Name": "X"}]})
    assert not_unique.status_code == 400 and not_unique.json()["details"]["param_name"] == "duplicate_check_fields"
    too_many = call("POST", "/Contacts/upsert", json={"data": [{"Last_Name": str(i)} for i in range(101)]})
    assert too_many.status_code == 400 and too_many.json()["code"] == "LIMIT_EXCEEDED"


def test_deleted_records_leave_the_list_and_show_under_deleted(sandbox, call) -> None:
    kept, gone = contact(sandbox, "Kept"), contact(sandbox, "Gone")
    assert call("DELETE", f"/Contacts/{gone}").json()["data"][0]["message"] == "record deleted"
    listed = call("GET", "/Contacts", params={"fields": "Last_Name"}).json()["data"]
    assert [r["id"] for r in listed] == [kept]
    deleted = call("GET", "/Contacts/deleted", params={"type": "all"}).json()
    assert [r["id"] for r in deleted["data"]] == [gone] and deleted["data"][0]["type"] == "recycle"


def test_fields_describe_types_uniqueness_and_picklist_values(sandbox, call) -> None:
    fields = {f["api_name"]: f for f in call("GET", "/settings/fields", params={"module": "Accounts"}).json()["fields"]}
    assert fields["Enginy_Id"]["unique"] and fields["Enginy_Id"]["custom_field"]
    assert fields["Account_Name"]["system_mandatory"] and fields["Modified_Time"]["read_only"]
    assert "Energy" in [v["actual_value"] for v in fields["Industry"]["pick_list_values"]]
    assert call("GET", "/settings/fields", params={"module": "Deals"}).json()["code"] == "INVALID_MODULE"


def test_injected_faults_answer_in_zohos_error_shape(sandbox, call) -> None:
    sandbox.ctx.faults.add(FaultRule(crm="zoho", endpoint=f"{API}/coql", status=429, nth=1))
    throttled = call("POST", "/coql", json={"select_query": "select id from Contacts where id is not null"})
    assert throttled.status_code == 429 and throttled.json()["code"] == "TOO_MANY_REQUESTS"
