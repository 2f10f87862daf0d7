"""The sandbox's Pipedrive over plain HTTP (requests): what a Pipedrive client depends on."""

import requests

from crm_pipelines.sandbox.faults import FaultRule
from crm_pipelines.crms.pipedrive.emulator import API_TOKEN, insert

TOKEN = {"x-api-token": API_TOKEN}


def get(sandbox, path: str, **params) -> requests.Response:
    return requests.get(f"{sandbox.base_url}{path}", params=params, headers=TOKEN, timeout=10)


def test_the_api_token_is_taken_as_a_query_parameter_or_a_header_and_nothing_else(sandbox) -> None:
    url = f"{sandbox.base_url}/api/v2/persons"
    assert requests.get(url, params={"api_token": API_TOKEN}, timeout=10).status_code == 200
    assert requests.get(url, headers=TOKEN, timeout=10).status_code == 200
    refused = requests.get(url, headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=10)
    assert refused.status_code == 401 and refused.json() == {
        "success": False, "error": "unauthorized access", "errorCode": 401,
        "error_info": "Please check developers.pipedrive.com for more information about Pipedrive API."}


def test_every_answer_reports_the_rate_limit_window_and_429_past_it(sandbox) -> None:
    sandbox.ctx.crm_settings("pipedrive").update({"burst_limit": 3, "window_seconds": 60})
    answers = [get(sandbox, "/v1/users") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert answers[0].headers["x-ratelimit-limit"] == "3" and 0 < int(answers[3].headers["x-ratelimit-reset"]) <= 60
    assert answers[3].json()["error"] == "Request over limit"


def test_v1_lists_page_by_start_and_say_whether_more_items_follow(sandbox) -> None:
    for i in range(5):
        insert(sandbox.ctx, "leads", {"title": f"L{i}", "person_id": None}, record_id=f"lead-{i}")
    first = get(sandbox, "/v1/leads", limit=2).json()
    assert first["additional_data"]["pagination"] == {"start": 0, "limit": 2, "more_items_in_collection": True,
                                                      "next_start": 2}
    last = get(sandbox, "/v1/leads", limit=2, start=4).json()
    assert len(last["data"]) == 1 and last["additional_data"]["pagination"]["more_items_in_collection"] is False


def test_the_v2_cursor_is_stable_while_records_are_created_between_pages(sandbox) -> None:
    for i in range(4):
        insert(sandbox.ctx, "persons", {"name": f"P{i}"})
    first = get(sandbox, "/api/v2/persons", limit=2).json()
    requests.post(f"{sandbox.base_url}/api/v2/persons", json={"name": "Newcomer"}, headers=TOKEN, timeout=10)
    second = get(sandbox, "/api/v2/persons", limit=2, cursor=first["additional_data"]["next_cursor"]).json()
    third = get(sandbox, "/api/v2/persons", limit=2, cursor=second["additional_data"]["next_cursor"]).json()
    names = [p["name"] for page in (first, second, third) for p in page["data"]]
    assert names == ["P0", "P1", "P2", "P3", "Newcomer"] and third["additional_data"]["next_cursor"] is None


def test_a_new_custom_field_gets_a_hashed_key_that_writes_and_search_then_use(sandbox) -> None:
    made = requests.post(f"{sandbox.base_url}/v1/personFields", json={"name": "Badge", "field_type": "varchar"},
                         headers=TOKEN, timeout=10).json()["data"]
    key = made["key"]
    assert len(key) == 40 and made["name"] == "Badge"
    person = requests.post(f"{sandbox.base_url}/api/v2/persons", json={"name": "Ada", "custom_fields": {key: "B-7"}},
                           headers=TOKEN, timeout=10).json()["data"]
    assert person["custom_fields"][key] == "B-7"
    found = get(sandbox, "/api/v2/persons/search", term="B-7", fields="custom_fields", exact_match="true").json()
    assert [i["item"]["id"] for i in found["data"]["items"]] == [person["id"]]
    assert get(sandbox, "/api/v2/persons/search", term="B-", fields="custom_fields",
               exact_match="true").json()["data"]["items"] == []


def test_deleted_persons_leave_the_list_and_show_in_recents_as_inactive(sandbox) -> None:
    person = insert(sandbox.ctx, "persons", {"name": "Gone"})
    requests.delete(f"{sandbox.base_url}/api/v2/persons/{person.id}", headers=TOKEN, timeout=10)
    assert get(sandbox, "/api/v2/persons").json()["data"] == []
    recents = get(sandbox, "/v1/recents", since_timestamp="2000-01-01 00:00:00", items="person").json()
    assert [(r["id"], r["data"]["active_flag"]) for r in recents["data"]] == [(int(person.id), False)]


def test_injected_faults_answer_in_pipedrives_error_shape(sandbox) -> None:
    sandbox.ctx.faults.add(FaultRule(crm="pipedrive", endpoint="/v1/users", status=503, nth=1))
    answer = get(sandbox, "/v1/users")
    assert answer.status_code == 503 and answer.json()["success"] is False
    assert get(sandbox, "/v1/users").status_code == 200
