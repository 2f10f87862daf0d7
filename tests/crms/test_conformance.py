"""Every CRM the registry lists, through the same contract, against its emulator in the sandbox
and its client as the pipeline builds it (crms/registry.py: facts, resource, environment): a new
CRM is tested here by registering it.

The contract: the resource connects from its environment variables; a full pull gives canonical
records; describe() knows the field the push upserts on; a create lands once even when sent
twice, and an update addresses the record it created; latest_change() sees the write; and a
throttled call (429) is waited out, not failed."""

from datetime import datetime, timedelta, timezone

import pytest

from crm_pipelines.canonical import CrmContact
from crm_pipelines.config import load_config
from crm_pipelines.crms import registry
from crm_pipelines.crms.base import ActivityLogging, BulkApi, CrmClient
from crm_pipelines.crms.facts import Capability
from crm_pipelines.enginy.generator import generate_frames
from crm_pipelines.export.writes import Write
from crm_pipelines.sandbox.faults import FaultRule

CANONICAL_CONTACT = set(CrmContact.to_schema().columns)


@pytest.fixture(scope="module")
def crm_side():
    return generate_frames(40, seed=5).crm


@pytest.fixture(params=registry.emulated_names())
def connected(request, sandbox, crm_side, monkeypatch) -> tuple[str, object, CrmClient]:
    name = request.param
    registry.emulator(name).seed(sandbox.ctx, crm_side)
    for variable, value in registry.client_environment(name, sandbox).items():
        monkeypatch.setenv(variable, value)
    resource = registry.crm_resource(registry.crm_of(name)).process_config_and_initialize()
    return name, sandbox, resource.client()


def _mapped(crm: str, enginy_field: str) -> str:
    """The CRM field the CRM's example config maps an Enginy contact field to."""
    config = load_config(registry.example_config(crm))
    return next(m.crm_field for m in config.field_mapping.contacts
                if m.type == "enginy_field" and m.enginy_field == enginy_field)


def test_the_client_is_the_crm_client_protocol(connected) -> None:
    _, _, client = connected
    assert isinstance(client, CrmClient)


def test_a_full_pull_gives_canonical_contacts_once_each(connected) -> None:
    _, _, client = connected
    pulled = client.pull("contacts", None, None)
    records = pulled.records
    assert len(records) > 0 and set(records.columns) >= CANONICAL_CONTACT
    assert records["crm_id"].is_unique and records["crm_id"].notna().all()
    assert pulled.cursor is not None


def test_describe_knows_the_field_the_push_upserts_on(connected) -> None:
    name, _, client = connected
    fields = {f.name: f for f in client.describe("contacts")}
    assert client.enginy_id_field in fields
    assert _mapped(registry.crm_of(name), "last_name") in fields


def test_a_create_lands_once_even_sent_twice_and_an_update_finds_it(connected) -> None:
    name, _, client = connected
    crm = registry.crm_of(name)
    since = datetime.now(timezone.utc) - timedelta(seconds=2)
    last_name, first_name = _mapped(crm, "last_name"), _mapped(crm, "first_name")
    create = Write("conformance-1", "create", "enginy-conformance-1", {first_name: "Ada", last_name: "Lovelace"})
    [first] = client.push("contacts", [create])
    assert first.status == "created" and first.crm_id, first
    [again] = client.push("contacts", [create])
    assert again.status in ("created", "updated") and again.crm_id == first.crm_id, again
    update = Write("conformance-2", "update", "enginy-conformance-1", {last_name: "King"}, crm_id=first.crm_id)
    [updated] = client.push("contacts", [update])
    assert updated.status == "updated" and updated.crm_id == first.crm_id, updated
    held = client.pull("contacts", None, None).records.set_index("crm_id")
    assert held.loc[str(first.crm_id), "last_name"] == "King"
    assert (held["last_name"] == "King").sum() == 1, "one record, not two"
    assert client.latest_change("contacts", since) is not None, "the change sensor sees the write"


def test_a_throttled_call_is_waited_out(connected) -> None:
    name, sandbox, client = connected
    sandbox.ctx.faults.add(FaultRule(crm=name, status=429, retry_after=0, times=1))
    assert len(client.pull("contacts", None, None).records) > 0
    assert [rule.hits for rule in sandbox.ctx.faults.rules()] == [1]


def test_the_client_offers_exactly_the_capabilities_its_facts_declare(connected) -> None:
    name, _, client = connected
    facts = registry.facts(registry.crm_of(name))
    assert isinstance(client, ActivityLogging) == facts.can(Capability.ACTIVITIES)
    assert isinstance(client, BulkApi) == facts.can(Capability.BULK)
    if facts.can(Capability.LEADS):
        assert client.describe("leads") and "crm_id" in client.pull("leads", None, None).records


def test_change_tracking_answers_what_changed_since_its_token_and_nothing_else(connected) -> None:
    name, _, client = connected
    crm = registry.crm_of(name)
    everything = client.pull("contacts", None, None)
    if not registry.facts(crm).can(Capability.CHANGE_TRACKING):
        assert everything.state == {}, "a pull without change tracking carries no change token"
        return
    assert everything.state, "a tracked pull hands back the CRM's change token"
    create = Write("tracked-1", "create", "enginy-tracked-1", {_mapped(crm, "last_name"): "Hopper"})
    [created] = client.push("contacts", [create])
    changed = client.pull("contacts", everything.cursor, None, everything.state)
    assert changed.records["crm_id"].tolist() == [created.crm_id]
