"""The Custom CRM (beta) adapter against two differently shaped in-house APIs of the sandbox,
each known to it only through its YAML description: Northwind (cursor paging, archived flags,
POST creates found again by Enginy id) and Oldbook (page numbers, epoch seconds, a deleted
status, PUT upserts on the Enginy id)."""

import time
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from crm_pipelines.crms.custom.api import EXAMPLE_APIS
from crm_pipelines.config import ConfigError
from crm_pipelines.crms.registry import crm_resource
from crm_pipelines.crms.base import Write
from crm_pipelines.crms.custom.api import load_api
from crm_pipelines.crms.custom.client import CustomCrmClient
from crm_pipelines.crms.custom.emulator import northwind, oldbook
from crm_pipelines.sandbox.faults import FaultRule

START = datetime(2025, 3, 1, tzinfo=timezone.utc)
MODULES = {"northwind": northwind, "oldbook": oldbook}
CONTACTS = {"northwind": "people", "oldbook": "contacts"}
LIST = {"northwind": "/northwind/api/people", "oldbook": "/oldbook/v1/contacts"}


def client(sandbox, crm: str, page_size: int | None = None) -> CustomCrmClient:
    api = load_api(EXAMPLE_APIS / f"{crm}.yaml")
    if page_size is not None:
        api = api.model_copy(update={"paging": api.paging.model_copy(update={"limit": page_size})})
    module = MODULES[crm]
    return CustomCrmClient(api, module.API_KEY, str(sandbox.tls.ca_bundle), sandbox.base_url + module.PREFIX)


def people(sandbox, crm: str, n: int) -> list[str]:
    """``n`` contacts modified a minute apart from START, in the API's own field names."""
    last = "lastName" if crm == "northwind" else "family_name"
    ids = []
    for i in range(n):
        record = sandbox.ctx.store.create(crm, CONTACTS[crm], (f"p_{i + 1}" if crm == "northwind" else str(i + 1)),
                                          {last: f"L{i:03d}"}, at=START + timedelta(minutes=i))
        ids.append(record.id)
    return ids


@pytest.fixture(params=sorted(MODULES))
def crm(request, sandbox):
    sandbox.ctx.crm_settings("northwind")["rate_limit"] = None
    return request.param


def test_a_full_pull_pages_through_either_api_in_its_own_style(sandbox, crm) -> None:
    people(sandbox, crm, 30)
    result = client(sandbox, crm, page_size=7).pull("contacts", None, None)
    assert sorted(result.records["last_name"]) == [f"L{i:03d}" for i in range(30)]
    assert result.pages == 5 == sandbox.ctx.stats.calls[(crm, "GET", LIST[crm])]
    assert result.cursor == START + timedelta(minutes=29)


def test_an_incremental_pull_brings_changes_and_deletions_since_the_cursor(sandbox, crm) -> None:
    ids = people(sandbox, crm, 12)
    since = datetime.now(timezone.utc) - timedelta(seconds=2)
    sandbox.ctx.store.update(crm, CONTACTS[crm], ids[2], {"lastName" if crm == "northwind" else "family_name": "New"})
    sandbox.ctx.store.delete(crm, CONTACTS[crm], ids[5])
    result = client(sandbox, crm, page_size=5).pull("contacts", since, None)
    by_id = result.records.set_index("crm_id")
    assert sorted(by_id.index) == sorted([ids[2], ids[5]])
    assert by_id.loc[ids[2], "last_name"] == "New" and bool(by_id.loc[ids[5], "is_deleted"])
    assert result.pages == 1, "the API filtered by the modified-since parameter"


def test_a_backfill_window_keeps_only_records_modified_inside_it(sandbox, crm) -> None:
    people(sandbox, crm, 40)
    result = client(sandbox, crm).pull("contacts", START + timedelta(minutes=5), START + timedelta(minutes=9))
    assert sorted(result.records["last_name"]) == ["L005", "L006", "L007", "L008"]


def test_latest_change_reports_the_newest_modification_after_the_cursor(sandbox, crm) -> None:
    people(sandbox, crm, 8)
    crm_client = client(sandbox, crm)
    newest = crm_client.latest_change("contacts", None)
    assert newest == START + timedelta(minutes=7)
    assert crm_client.latest_change("contacts", newest) is None


def test_northwind_sorts_for_latest_change_so_it_costs_one_row(sandbox) -> None:
    sandbox.ctx.crm_settings("northwind")["rate_limit"] = None
    people(sandbox, "northwind", 50)
    crm_client = client(sandbox, "northwind")
    assert crm_client.latest_change("contacts", None) == START + timedelta(minutes=49)
    assert crm_client.rest.api_calls == 1


def test_a_429_is_retried_after_the_wait_retry_after_names(sandbox, crm) -> None:
    people(sandbox, crm, 3)
    sandbox.ctx.faults.add(FaultRule(crm=crm, endpoint=LIST[crm], status=429, retry_after=1, nth=1))
    started = time.monotonic()
    assert len(client(sandbox, crm).pull("contacts", None, None).records) == 3
    assert time.monotonic() - started >= 1


def test_northwinds_rate_limit_headers_are_waited_out_instead_of_met_with_429s(sandbox) -> None:
    people(sandbox, "northwind", 20)
    sandbox.ctx.crm_settings("northwind").update({"rate_limit": 3, "rate_window_seconds": 1})
    crm_client = client(sandbox, "northwind", page_size=4)
    result = crm_client.pull("contacts", None, None)
    assert len(result.records) == 20 and result.pages == 5
    assert sandbox.ctx.stats.statuses.get(("northwind", 429), 0) == 0
    assert crm_client.rest.waited_for_rate_limit > 0


def creates(n: int) -> list[Write]:
    return [Write(f"w{i}", "create", f"en-{i}", {"first_name": "Ada", "last_name": f"L{i}", "email": f"a{i}@x.io",
                                                 "sequence_status": "Ongoing"}) for i in range(n)]


def history(sandbox, crm: str) -> dict[str, list[str]]:
    key = "enginyId" if crm == "northwind" else "external_ref"
    return {r.fields.get(key): [c.op for c in r.history]
            for r in sandbox.ctx.store.records(crm, CONTACTS[crm], include_deleted=True)}


def test_creates_land_once_and_sending_them_again_updates_the_same_records(sandbox, crm) -> None:
    crm_client = client(sandbox, crm)
    first = crm_client.push("contacts", creates(4))
    again = crm_client.push("contacts", creates(4))
    assert [r.status for r in first] == ["created"] * 4 and [r.status for r in again] == ["updated"] * 4
    assert [r.crm_id for r in first] == [r.crm_id for r in again]
    assert all(ops == ["create", "update"] for ops in history(sandbox, crm).values())
    record = sandbox.ctx.store.get(crm, CONTACTS[crm], first[0].crm_id)
    assert record.fields["lastName" if crm == "northwind" else "family_name"] == "L0"


def test_a_create_whose_answer_is_lost_is_not_made_twice(sandbox, crm) -> None:
    method, endpoint = (("POST", LIST[crm]) if crm == "northwind" else ("PUT", "/oldbook/v1/contacts/external/{ref}"))
    sandbox.ctx.faults.add(FaultRule(crm=crm, endpoint=endpoint, method=method, kind="drop", nth=2))
    results = client(sandbox, crm).push("contacts", creates(3))
    assert {r.status for r in results} <= {"created", "updated"}
    held = history(sandbox, crm)
    assert sorted(held) == ["en-0", "en-1", "en-2"] and all(ops.count("create") == 1 for ops in held.values())


def test_refusals_are_rejected_with_the_apis_message_and_unknown_fields_never_sent(sandbox) -> None:
    sandbox.ctx.crm_settings("northwind")["rate_limit"] = None
    results = client(sandbox, "northwind").push("contacts", [
        Write("a", "create", "en-a", {"last_name": "A", "sequence_status": "Lost"}),
        Write("b", "create", "en-b", {"last_name": "B", "shoe_size": "44"}),
        Write("c", "create", "en-c", {"last_name": "C"})])
    status = {r.write_id: r for r in results}
    assert status["a"].status == "rejected" and "sequenceStatus must be one of" in status["a"].error
    assert status["b"].status == "rejected" and "shoe_size" in status["b"].error
    assert status["c"].status == "created"
    assert sorted(history(sandbox, "northwind")) == ["en-c"]


def test_fields_are_described_under_the_descriptions_names(sandbox) -> None:
    described = {f.name: f for f in client(sandbox, "northwind").describe("contacts")}
    assert described["sequence_status"].options == ("Not Started", "Ongoing", "Replied", "Finished")
    assert described["enginy_id"].external_id and described["email"].type == "email"


@pytest.mark.parametrize("change, problem", [
    (lambda d: d["contacts"]["fields"].pop("enginy_id"),
     "contacts: fields has no enginy_id — fix: add enginy_id: <the API field holding Enginy's id>"),
    (lambda d: d["paging"].pop("next_cursor"),
     "paging: cursor paging needs next_cursor — fix: add next_cursor:"),
    (lambda d: d["auth"].update(query="api_key"),
     "auth: give the key's header or its query parameter, not both or neither"),
    (lambda d: d["contacts"].pop("find_by_enginy_id"),
     "contacts: creates could be made twice: the create path has no {enginy_id} and there is no find_by_enginy_id"),
    (lambda d: d["contacts"]["create"].update(verb="POST"), "contacts.create.verb: unknown key"),
    (lambda d: d["paging"].update(style="pages"), "paging.style: 'pages' is not allowed — fix: use one of"),
])
def test_a_mistake_in_an_api_description_names_the_file_the_path_and_the_fix(tmp_path, change, problem) -> None:
    data = yaml.safe_load((EXAMPLE_APIS / "northwind.yaml").read_text())
    change(data)
    path = tmp_path / "acme.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as error:
        load_api(path)
    assert str(error.value).startswith(f"{path}: {problem}"), str(error.value)


def test_the_resource_binds_the_key_to_the_variable_the_description_names(monkeypatch) -> None:
    """The key never sits in a file: the description names its variable, and Dagster resolves it
    at run time (so it stays out of the UI and the logs)."""
    monkeypatch.setenv("CUSTOM_CRM_API_FILE", str(EXAMPLE_APIS / "oldbook.yaml"))
    resource = crm_resource("custom")
    assert resource.api_key.env_var_name == "OLDBOOK_API_TOKEN"
    monkeypatch.delenv("CUSTOM_CRM_API_FILE")
    with pytest.raises(ConfigError, match="no such file — fix: point CUSTOM_CRM_API_FILE at the YAML"):
        crm_resource("custom")
