"""The sandbox's two in-house CRMs over plain HTTP: the shapes their YAML descriptions promise."""

import requests

from crm_pipelines.crms.custom.emulator import northwind, oldbook

NW = {"X-Api-Key": northwind.API_KEY}
OB = {"Authorization": f"Token {oldbook.API_KEY}"}


def test_each_api_takes_only_its_own_key_header(sandbox) -> None:
    nw, ob = sandbox.base_url + northwind.PREFIX, sandbox.base_url + oldbook.PREFIX
    assert requests.get(f"{nw}/people", headers=NW, timeout=10).status_code == 200
    assert requests.get(f"{nw}/people", headers={"X-Api-Key": "wrong"}, timeout=10).status_code == 401
    assert requests.get(f"{ob}/contacts", headers=OB, timeout=10).status_code == 200
    assert requests.get(f"{ob}/contacts", headers={"Authorization": f"Bearer {oldbook.API_KEY}"},
                        timeout=10).status_code == 403


def test_northwind_pages_by_cursor_and_reports_its_rate_limit(sandbox) -> None:
    url = sandbox.base_url + northwind.PREFIX + "/people"
    for i in range(3):
        requests.post(url, json={"lastName": f"L{i}"}, headers=NW, timeout=10)
    first = requests.get(url, params={"limit": 2}, headers=NW, timeout=10)
    assert int(first.headers["X-RateLimit-Remaining"]) < int(first.headers["X-RateLimit-Limit"])
    rest = requests.get(url, params={"limit": 2, "cursor": first.json()["meta"]["next_cursor"]}, headers=NW,
                        timeout=10).json()
    assert [p["lastName"] for p in first.json()["data"] + rest["data"]] == ["L0", "L1", "L2"]
    assert rest["meta"]["next_cursor"] is None


def test_northwind_refuses_a_second_person_with_the_same_enginy_id(sandbox) -> None:
    url = sandbox.base_url + northwind.PREFIX + "/people"
    assert requests.post(url, json={"lastName": "A", "enginyId": "en-1"}, headers=NW, timeout=10).status_code == 201
    again = requests.post(url, json={"lastName": "A", "enginyId": "en-1"}, headers=NW, timeout=10)
    assert again.status_code == 409 and "exists already" in again.json()["message"]


def test_oldbook_upserts_on_the_external_ref_and_pages_by_number(sandbox) -> None:
    base = sandbox.base_url + oldbook.PREFIX + "/contacts"
    made = requests.put(f"{base}/external/en-1", json={"family_name": "A"}, headers=OB, timeout=10)
    same = requests.put(f"{base}/external/en-1", json={"position": "CTO"}, headers=OB, timeout=10)
    assert (made.status_code, same.status_code) == (201, 200)
    assert made.json()["record"]["contact_id"] == same.json()["record"]["contact_id"]
    for i in range(4):
        requests.put(f"{base}/external/en-{i + 2}", json={"family_name": f"B{i}"}, headers=OB, timeout=10)
    page = requests.get(base, params={"page": 2, "per_page": 2}, headers=OB, timeout=10).json()
    assert (page["page"], page["total_pages"], len(page["items"])) == (2, 3, 2)


def test_oldbook_keeps_deleted_contacts_in_its_lists_with_their_status(sandbox) -> None:
    base = sandbox.base_url + oldbook.PREFIX + "/contacts"
    made = requests.put(f"{base}/external/en-1", json={"family_name": "A"}, headers=OB, timeout=10).json()["record"]
    requests.delete(f"{base}/{made['contact_id']}", headers=OB, timeout=10)
    [listed] = requests.get(base, headers=OB, timeout=10).json()["items"]
    assert listed["status"] == "deleted" and isinstance(listed["last_changed"], int)
