"""The sandbox's TribeCRM over plain HTTP (requests): what a TribeCRM client depends on."""

from datetime import datetime, timedelta, timezone

import requests

from crm_pipelines.crms.tribecrm import emulator as tribecrm
from crm_pipelines.sandbox.faults import FaultRule

KEY = {"Authorization": f"Bearer {tribecrm.API_KEY}"}


def url(sandbox, path: str) -> str:
    return f"{sandbox.base_url}{tribecrm.API}/{path}"


def get(sandbox, path: str, **params) -> requests.Response:
    return requests.get(url(sandbox, path), params=params, headers=KEY, timeout=10)


def person(sandbox, last: str, **fields) -> str:
    return tribecrm.insert(sandbox.ctx, tribecrm.PERSON, {"LastName": last, **fields}).id


def test_the_api_key_is_required_and_errors_have_odatas_shape(sandbox) -> None:
    refused = requests.get(url(sandbox, "Relation_Person"), headers={"Authorization": "Bearer nope"}, timeout=10)
    assert refused.status_code == 401 and refused.json() == {
        "error": {"code": "Unauthorized", "message": "The API key is missing or not valid."}}
    unknown = get(sandbox, "Relation_Person", **{"$filter": "Shoe eq 'x'"})
    assert unknown.status_code == 400 and "Shoe" in unknown.json()["error"]["message"]


def test_a_filter_on_the_modification_date_with_orderby_top_skip_select_and_count(sandbox) -> None:
    old = datetime.now(timezone.utc) - timedelta(days=2)
    tribecrm.insert(sandbox.ctx, tribecrm.PERSON, {"LastName": "Old"}, created_at=old)
    for name in ("Cora", "Abel", "Bram"):
        person(sandbox, name)
    since = (old + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    answer = get(sandbox, "Relation_Person", **{"$filter": f"DateModified ge {since}", "$orderby": "LastName desc",
                                                 "$top": "2", "$skip": "1", "$select": "LastName",
                                                 "$count": "true"}).json()
    assert answer["@odata.count"] == 3
    assert [r["LastName"] for r in answer["value"]] == ["Bram", "Abel"]
    assert set(answer["value"][0]) == {"ID", "LastName"} and "@odata.nextLink" not in answer


def test_long_lists_are_served_in_pages_linked_by_odata_next_link(sandbox) -> None:
    sandbox.ctx.crm_settings("tribecrm")["max_page_size"] = 2
    for i in range(5):
        person(sandbox, f"P{i}")
    seen, link = [], url(sandbox, "Relation_Person") + "?$orderby=LastName&$select=LastName"
    while link:
        page = requests.get(link, headers=KEY, timeout=10).json()
        seen += [r["LastName"] for r in page["value"]]
        link = page.get("@odata.nextLink")
    assert seen == ["P0", "P1", "P2", "P3", "P4"]


def test_an_employment_links_a_person_to_an_organization_and_expands_both(sandbox) -> None:
    org = tribecrm.insert(sandbox.ctx, tribecrm.ORGANIZATION, {"Name": "Acme"}).id
    who = person(sandbox, "Jansen")
    created = requests.post(url(sandbox, tribecrm.CONTACT), headers=KEY, timeout=10, json={
        "Relation": {"ID": org}, "Person": {"ID": who}, "JobTitle": "CFO"})
    assert created.status_code == 201
    listed = get(sandbox, tribecrm.CONTACT, **{"$filter": f"Person/ID eq {who}",
                                                "$expand": "Person($select=LastName),Relation($select=Name)"}).json()
    [link] = listed["value"]
    assert link["JobTitle"] == "CFO" and link["Person"]["LastName"] == "Jansen" and link["Relation"]["Name"] == "Acme"
    dangling = requests.post(url(sandbox, tribecrm.CONTACT), headers=KEY, timeout=10, json={
        "Relation": {"ID": org}, "Person": {"ID": "00000000-0000-0000-0000-000000000000"}})
    assert dangling.status_code == 400 and dangling.json()["error"]["code"] == "ValidationFailed"


def test_creates_check_mandatory_fields_and_updates_change_only_what_they_name(sandbox) -> None:
    missing = requests.post(url(sandbox, tribecrm.PERSON), headers=KEY, timeout=10, json={"FirstName": "Ann"})
    assert missing.status_code == 400 and missing.json()["error"]["message"] == "LastName is mandatory."
    created = requests.post(url(sandbox, tribecrm.PERSON), headers=KEY, timeout=10,
                            json={"FirstName": "Ann", "LastName": "de Vries", tribecrm.custom_name("Enginy Id"): "e1"})
    key = created.json()["ID"]
    patched = requests.patch(url(sandbox, f"{tribecrm.PERSON}({key})"), headers=KEY, timeout=10,
                             json={"EmailAddress": "ann@devries.nl"})
    assert patched.status_code == 204
    record = get(sandbox, f"{tribecrm.PERSON}({key})").json()
    assert (record["FirstName"], record["EmailAddress"]) == ("Ann", "ann@devries.nl")
    found = get(sandbox, tribecrm.PERSON, **{"$filter": f"{tribecrm.custom_name('Enginy Id')} eq 'e1'"}).json()
    assert [r["ID"] for r in found["value"]] == [key]


def test_a_deleted_record_is_gone_for_good(sandbox) -> None:
    kept, gone = person(sandbox, "Kept"), person(sandbox, "Gone")
    assert requests.delete(url(sandbox, f"{tribecrm.PERSON}({gone})"), headers=KEY, timeout=10).status_code == 204
    assert [r["ID"] for r in get(sandbox, tribecrm.PERSON).json()["value"]] == [kept]
    assert get(sandbox, f"{tribecrm.PERSON}({gone})").status_code == 404


def test_metadata_names_custom_fields_by_their_labels(sandbox) -> None:
    xml = get(sandbox, "$metadata").text
    assert f'Name="{tribecrm.custom_name("Enginy Id")}"' in xml and 'String="Enginy Id"' in xml


def test_past_the_rate_limit_calls_are_answered_429_with_retry_after(sandbox) -> None:
    sandbox.ctx.crm_settings("tribecrm").update({"burst_limit": 2, "window_seconds": 30})
    answers = [get(sandbox, tribecrm.PERSON) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert 0 < int(answers[2].headers["Retry-After"]) <= 30 and answers[2].json()["error"]["code"] == "TooManyRequests"
    sandbox.ctx.faults.add(FaultRule(crm="tribecrm", status=503, nth=1))
    sandbox.ctx.crm_settings("tribecrm")["burst_limit"] = None
    assert get(sandbox, tribecrm.PERSON).json()["error"]["code"] == "InternalServerError"
