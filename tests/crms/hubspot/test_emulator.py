"""The sandbox's HubSpot: hubspot-api-client v12 runs unchanged against it."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests
from hubspot import HubSpot
from hubspot.crm.contacts import ApiException
from hubspot.crm.contacts import BatchInputSimplePublicObjectBatchInput as ContactUpdates
from hubspot.crm.contacts import BatchInputSimplePublicObjectBatchInputForCreate as ContactCreates
from hubspot.crm.contacts import BatchInputSimplePublicObjectBatchInputUpsert as ContactUpserts
from hubspot.crm.contacts import BatchReadInputSimplePublicObjectId as ContactReads
from hubspot.crm.contacts import PublicObjectSearchRequest, SimplePublicObjectInput, SimplePublicObjectInputForCreate

from crm_pipelines.sandbox.faults import FaultRule
from crm_pipelines.crms.hubspot.emulator import ACCESS_TOKEN, CRM, insert, seed
from crm_pipelines.sandbox.server import RunningSandbox

OBJECTS = "/crm/v3/objects/{objectType}"


@pytest.fixture
def hubspot(sandbox: RunningSandbox) -> HubSpot:
    # Tests that are not about the limits should not wait on them.
    sandbox.ctx.crm_settings(CRM).update({"burst_limit": None, "search_per_second": None})
    return client(sandbox)


def client(sandbox: RunningSandbox, token: str = ACCESS_TOKEN) -> HubSpot:
    return HubSpot(access_token=token, host=sandbox.base_url, ssl_ca_cert=str(sandbox.tls.ca_bundle))


def _contacts(sandbox: RunningSandbox, n: int, start: datetime | None = None, step: timedelta = timedelta(minutes=1),
              **extra: str) -> list[str]:
    start = start or datetime(2025, 1, 1, tzinfo=timezone.utc)
    return [insert(sandbox.ctx, "contacts", {"firstname": f"P{i}", "lastname": "Test", "email": f"p{i}@example.com",
                                             **extra}, created_at=start + i * step).id for i in range(n)]


def _error(exc: pytest.ExceptionInfo) -> dict:
    return json.loads(exc.value.body)


def _calls(sandbox: RunningSandbox, method: str, endpoint: str) -> int:
    return sandbox.ctx.stats.calls[(CRM, method, endpoint)]


def _history(sandbox: RunningSandbox, obj: str) -> list[list[str]]:
    return [[c.op for c in r.history] for r in sandbox.ctx.store.records(CRM, obj, include_deleted=True)]


# --- authentication and reading ---------------------------------------------------------------

def test_a_wrong_private_app_token_is_refused_with_hubspots_401(sandbox, hubspot):
    with pytest.raises(ApiException) as exc:
        client(sandbox, "pat-na1-wrong").crm.contacts.basic_api.get_page(limit=10)
    assert exc.value.status == 401
    assert _error(exc)["category"] == "INVALID_AUTHENTICATION"
    assert hubspot.crm.contacts.basic_api.get_page(limit=10).results == []


def test_list_pages_by_after_cursor_with_at_most_100_per_page(sandbox, hubspot):
    ids = _contacts(sandbox, 250)
    seen, after, pages = [], None, 0
    while True:
        page = hubspot.crm.contacts.basic_api.get_page(limit=100, after=after, properties=["email", "jobtitle"])
        pages += 1
        seen += [r.id for r in page.results]
        if not page.paging:
            break
        after = page.paging.next.after
    assert pages == 3 and seen == ids
    first = hubspot.crm.contacts.basic_api.get_page(limit=1, properties=["email", "jobtitle"]).results[0]
    # Requested properties come back, null when unset; the record id is always there.
    assert first.properties == {"email": "p0@example.com", "jobtitle": None}
    assert _calls(sandbox, "GET", OBJECTS) == 4
    with pytest.raises(ApiException) as exc:
        hubspot.crm.contacts.basic_api.get_page(limit=101)
    assert exc.value.status == 400 and _error(exc)["category"] == "VALIDATION_ERROR"


def test_a_page_cursor_is_stable_when_records_are_written_between_pages(sandbox, hubspot):
    _contacts(sandbox, 150)
    first = hubspot.crm.contacts.basic_api.get_page(limit=100)
    hubspot.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": "late@example.com"}))
    second = hubspot.crm.contacts.basic_api.get_page(limit=100, after=first.paging.next.after)
    ids = [r.id for r in first.results + second.results]
    assert len(ids) == len(set(ids)) == 151


def test_without_properties_the_defaults_come_back_with_system_dates(sandbox, hubspot):
    [contact_id] = _contacts(sandbox, 1)
    record = hubspot.crm.contacts.basic_api.get_by_id(contact_id)
    assert set(record.properties) == {"createdate", "email", "firstname", "hs_object_id", "lastmodifieddate",
                                      "lastname"}
    assert record.properties["hs_object_id"] == contact_id
    assert record.properties["createdate"] == "2025-01-01T00:00:00.000Z"
    with pytest.raises(ApiException) as exc:
        hubspot.crm.contacts.basic_api.get_by_id("999999999")
    assert exc.value.status == 404 and _error(exc)["category"] == "OBJECT_NOT_FOUND"


# --- writes -----------------------------------------------------------------------------------

def test_batch_create_takes_100_inputs_and_refuses_101_without_writing_any(sandbox, hubspot):
    inputs = [{"properties": {"email": f"new{i}@example.com", "firstname": f"N{i}"}} for i in range(101)]
    with pytest.raises(ApiException) as exc:
        hubspot.crm.contacts.batch_api.create(ContactCreates(inputs=inputs))
    assert exc.value.status == 400 and "limit is 100" in _error(exc)["message"]
    assert sandbox.ctx.store.records(CRM, "contacts") == []
    answer = hubspot.crm.contacts.batch_api.create(ContactCreates(inputs=inputs[:100]))
    assert answer.status == "COMPLETE" and len(answer.results) == 100
    assert sorted(r.properties["email"] for r in answer.results) == sorted(i["properties"]["email"]
                                                                          for i in inputs[:100])
    assert sandbox.ctx.stats.records[(CRM, "POST", f"{OBJECTS}/batch/create")] == 100


def test_one_invalid_value_fails_the_whole_batch_with_the_property_named(sandbox, hubspot):
    inputs = [{"properties": {"email": "ok@example.com"}},
              {"properties": {"email": "bad@example.com", "lifecyclestage": "prospect"}},
              {"properties": {"email": "odd@example.com", "favourite_colour": "blue"}}]
    with pytest.raises(ApiException) as exc:
        hubspot.crm.contacts.batch_api.create(ContactCreates(inputs=inputs))
    message = _error(exc)["message"]
    assert exc.value.status == 400 and "INVALID_OPTION" in message and "lifecyclestage" in message
    assert "PROPERTY_DOESNT_EXIST" in message and "favourite_colour" in message
    assert sandbox.ctx.store.records(CRM, "contacts") == []
    with pytest.raises(ApiException) as exc:
        hubspot.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(
            properties={"email": "x@example.com", "hs_object_id": "5"}))
    assert "READ_ONLY_VALUE" in _error(exc)["message"]


def test_emails_are_stored_lower_cased_and_one_without_a_real_domain_fails_the_whole_batch(sandbox, hubspot):
    created = hubspot.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(
        properties={"email": "  Ada.Lovelace@Example.COM "}))
    assert created.properties["email"] == "ada.lovelace@example.com"
    read = hubspot.crm.contacts.basic_api.get_by_id(created.id, properties=["email"])
    assert read.properties["email"] == "ada.lovelace@example.com"
    for bad in ("user@localhost", "no-at-sign.example.com", "@example.com", "a b@example.com"):
        with pytest.raises(ApiException) as exc:
            hubspot.crm.contacts.batch_api.create(ContactCreates(inputs=[
                {"properties": {"email": "fine@example.org"}}, {"properties": {"email": bad}}]))
        assert exc.value.status == 400 and "INVALID_EMAIL" in _error(exc)["message"], bad
    assert len(sandbox.ctx.store.records(CRM, "contacts")) == 1, "nothing of a refused batch is written"


def test_a_second_contact_with_the_same_email_is_a_409_conflict_naming_the_existing_one(sandbox, hubspot):
    first = hubspot.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(
        properties={"email": "Ada@Example.com"}))
    with pytest.raises(ApiException) as exc:
        hubspot.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": "ada@example.com"}))
    assert exc.value.status == 409
    assert _error(exc)["message"] == f"Contact already exists. Existing ID: {first.id}"
    with pytest.raises(ApiException):
        hubspot.crm.contacts.batch_api.create(ContactCreates(inputs=[
            {"properties": {"email": "twin@example.com"}}, {"properties": {"email": "TWIN@example.com"}}]))
    assert len(sandbox.ctx.store.records(CRM, "contacts")) == 1


def test_batch_update_changes_found_records_and_reports_missing_ids_as_207(sandbox, hubspot):
    ids = _contacts(sandbox, 2)
    before = sandbox.ctx.store.get(CRM, "contacts", ids[0]).modified_at
    answer = hubspot.crm.contacts.batch_api.update(ContactUpdates(inputs=[
        {"id": ids[0], "properties": {"jobtitle": "CTO"}}, {"id": "424242", "properties": {"jobtitle": "CEO"}}]))
    assert [r.properties["jobtitle"] for r in answer.results] == ["CTO"]
    assert answer.errors[0].category == "OBJECT_NOT_FOUND" and answer.errors[0].context == {"ids": ["424242"]}
    record = hubspot.crm.contacts.basic_api.get_by_id(ids[0], properties=["jobtitle", "hs_lastmodifieddate",
                                                                          "lastmodifieddate"])
    assert record.properties["jobtitle"] == "CTO"
    assert record.properties["hs_lastmodifieddate"] == record.properties["lastmodifieddate"]
    assert record.updated_at > before
    # An empty string clears a property.
    hubspot.crm.contacts.basic_api.update(ids[0], SimplePublicObjectInput(properties={"jobtitle": ""}))
    assert hubspot.crm.contacts.basic_api.get_by_id(ids[0], properties=["jobtitle"]).properties["jobtitle"] is None


def test_batch_upsert_by_email_creates_once_then_updates(sandbox, hubspot):
    body = ContactUpserts(inputs=[{"idProperty": "email", "id": "grace@example.com",
                                   "properties": {"firstname": "Grace"}}])
    first = hubspot.crm.contacts.batch_api.upsert(body)
    second = hubspot.crm.contacts.batch_api.upsert(ContactUpserts(inputs=[
        {"idProperty": "email", "id": "grace@example.com", "properties": {"lastname": "Hopper"}}]))
    assert first.results[0].new is True and second.results[0].new is False
    assert first.results[0].id == second.results[0].id
    assert _history(sandbox, "contacts") == [["create", "update"]]
    with pytest.raises(ApiException) as exc:
        hubspot.crm.contacts.batch_api.upsert(ContactUpserts(inputs=[
            {"idProperty": "firstname", "id": "Grace", "properties": {}}]))
    assert "not a unique property" in _error(exc)["message"]


def test_batch_read_by_id_or_unique_property_reports_missing_ones(sandbox, hubspot):
    ids = _contacts(sandbox, 3)
    answer = hubspot.crm.contacts.batch_api.read(ContactReads(inputs=[{"id": ids[2]}, {"id": "1"}],
                                                              properties=["email"]))
    assert [r.properties["email"] for r in answer.results] == ["p2@example.com"]
    assert answer.errors[0].context == {"ids": ["1"]}
    by_email = hubspot.crm.contacts.batch_api.read(ContactReads(inputs=[{"id": "p1@example.com"}],
                                                                id_property="email", properties=["firstname"]))
    assert by_email.results[0].id == ids[1]


def test_archived_records_leave_the_list_and_show_with_archived_true(sandbox, hubspot):
    ids = _contacts(sandbox, 3)
    hubspot.crm.contacts.basic_api.archive(ids[1])
    hubspot.crm.contacts.batch_api.archive({"inputs": [{"id": ids[2]}, {"id": "31337"}]})
    live = hubspot.crm.contacts.basic_api.get_page(limit=100)
    archived = hubspot.crm.contacts.basic_api.get_page(limit=100, archived=True)
    assert [r.id for r in live.results] == ids[:1]
    assert sorted(r.id for r in archived.results) == ids[1:]
    assert all(r.archived and r.archived_at is not None for r in archived.results)
    with pytest.raises(ApiException) as exc:
        hubspot.crm.contacts.basic_api.get_by_id(ids[1])
    assert exc.value.status == 404


# --- search -----------------------------------------------------------------------------------

def _search(hubspot: HubSpot, **request) -> object:
    return hubspot.crm.contacts.search_api.do_search(public_object_search_request=PublicObjectSearchRequest(**request))


def test_search_filters_or_of_and_groups_sorts_and_pages(sandbox, hubspot):
    _contacts(sandbox, 30)
    for i, title in enumerate(["VP Sales", "Sales Manager", "Engineer"]):
        insert(sandbox.ctx, "contacts", {"email": f"t{i}@corp.example", "jobtitle": title, "numemployees": "x"})
    sales = _search(hubspot, filter_groups=[{"filters": [{"propertyName": "jobtitle", "operator": "CONTAINS_TOKEN",
                                                          "value": "sales"}]}], properties=["jobtitle"], limit=10)
    assert sorted(r.properties["jobtitle"] for r in sales.results) == ["Sales Manager", "VP Sales"]
    either = _search(hubspot, filter_groups=[
        {"filters": [{"propertyName": "email", "operator": "EQ", "value": "P3@EXAMPLE.COM"}]},
        {"filters": [{"propertyName": "jobtitle", "operator": "EQ", "value": "Engineer"},
                     {"propertyName": "email", "operator": "HAS_PROPERTY"}]}], limit=10)
    assert sorted(r.properties["email"] for r in either.results) == ["p3@example.com", "t2@corp.example"]
    newest_first, after = [], None
    while True:
        page = _search(hubspot, sorts=[{"propertyName": "createdate", "direction": "DESCENDING"}],
                       filter_groups=[{"filters": [{"propertyName": "lastname", "operator": "EQ", "value": "Test"}]}],
                       properties=["createdate"], limit=7, after=after)
        assert page.total == 30
        newest_first += [r.properties["createdate"] for r in page.results]
        if not page.paging:
            break
        after = page.paging.next.after
    assert newest_first == sorted(newest_first, reverse=True) and len(set(newest_first)) == 30


def test_search_on_last_modified_since_a_cursor_in_milliseconds(sandbox, hubspot):
    ids = _contacts(sandbox, 5)
    cursor = datetime.now(timezone.utc)
    time.sleep(0.01)
    hubspot.crm.contacts.basic_api.update(ids[3], SimplePublicObjectInput(properties={"jobtitle": "CFO"}))
    changed = _search(hubspot, filter_groups=[{"filters": [
        {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(int(cursor.timestamp() * 1000))}]}])
    assert [r.id for r in changed.results] == [ids[3]]


def test_search_stops_at_10000_results_with_hubspots_400(sandbox, hubspot):
    _contacts(sandbox, 10_050, step=timedelta(seconds=1))
    request = {"filter_groups": [{"filters": [{"propertyName": "lastname", "operator": "EQ", "value": "Test"}]}],
               "sorts": [{"propertyName": "createdate", "direction": "ASCENDING"}], "limit": 200}
    last_page = _search(hubspot, **request, after="9800")
    assert last_page.total == 10_050 and len(last_page.results) == 200 and last_page.paging is not None
    with pytest.raises(ApiException) as exc:
        _search(hubspot, **request, after=last_page.paging.next.after)
    assert exc.value.status == 400 and _error(exc)["category"] == "VALIDATION_ERROR"
    assert "10,000" in _error(exc)["message"]
    with pytest.raises(ApiException):
        _search(hubspot, limit=201)


def _refused_with_hubspots_400(exc: pytest.ExceptionInfo, words: str) -> None:
    body = _error(exc)
    assert exc.value.status == 400 and set(body) == {"status", "message", "correlationId", "category"}
    assert body["status"] == "error" and body["category"] == "VALIDATION_ERROR" and words in body["message"]


def _has(name: str) -> dict:
    return {"propertyName": name, "operator": "HAS_PROPERTY"}


def test_search_takes_five_filter_groups_and_refuses_a_sixth(sandbox, hubspot):
    _contacts(sandbox, 3)
    groups = [{"filters": [{"propertyName": "email", "operator": "EQ", "value": f"p{i}@example.com"}]}
              for i in range(5)]
    assert _search(hubspot, filter_groups=groups).total == 3
    with pytest.raises(ApiException) as exc:
        _search(hubspot, filter_groups=groups + [{"filters": [_has("email")]}])
    _refused_with_hubspots_400(exc, "filter groups")


def test_search_takes_ten_filters_in_a_group_and_refuses_an_eleventh(sandbox, hubspot):
    _contacts(sandbox, 3)
    ten = [_has(name) for name in ("email", "firstname", "lastname", "createdate", "lastmodifieddate",
                                   "hs_object_id")] + [{"propertyName": "lastname", "operator": "EQ", "value": "Test"}] * 4
    assert _search(hubspot, filter_groups=[{"filters": ten}]).total == 3
    with pytest.raises(ApiException) as exc:
        _search(hubspot, filter_groups=[{"filters": ten + [_has("email")]}])
    _refused_with_hubspots_400(exc, "filter group 0")


def test_search_takes_twenty_five_filters_in_all_and_refuses_a_twenty_sixth(sandbox, hubspot):
    _contacts(sandbox, 3)
    five_by_five = [{"filters": [_has("email")] * 5} for _ in range(5)]
    assert _search(hubspot, filter_groups=five_by_five).total == 3
    with pytest.raises(ApiException) as exc:
        _search(hubspot, filter_groups=five_by_five[:4] + [{"filters": [_has("email")] * 6}])
    _refused_with_hubspots_400(exc, "at most 25")


@pytest.mark.parametrize("operator", ["IN", "NOT_IN"])
def test_an_in_filter_takes_100_values_and_refuses_101(sandbox, hubspot, operator):
    _contacts(sandbox, 3)
    values = [f"p{i}@example.com" for i in range(1, 101)]
    found = _search(hubspot, filter_groups=[{"filters": [
        {"propertyName": "email", "operator": operator, "values": values}]}], properties=["email"])
    assert sorted(r.properties["email"] for r in found.results) == (
        ["p1@example.com", "p2@example.com"] if operator == "IN" else ["p0@example.com"])
    with pytest.raises(ApiException) as exc:
        _search(hubspot, filter_groups=[{"filters": [
            {"propertyName": "email", "operator": operator, "values": values + ["p0@example.com"]}]}])
    _refused_with_hubspots_400(exc, "at most 100")


@pytest.mark.parametrize("body", [
    {"filterGroups": {"filters": []}}, {"filterGroups": [{"filters": {"propertyName": "email"}}]},
    {"filterGroups": [{"filters": [{"propertyName": "email", "operator": "IN", "values": "p0@example.com"}]}]},
    {"filterGroups": [{"filters": [{"propertyName": "createdate", "operator": "BETWEEN", "value": "0"}]}]},
    {"limit": "ten"}, {"after": "page-2"}])
def test_a_malformed_search_is_refused_with_hubspots_400_never_a_500(sandbox, hubspot, body):
    """hubspot-api-client's models cannot form these bodies; plain requests can, and so can any
    other client a customer points at the sandbox."""
    answer = requests.post(f"{sandbox.base_url}{OBJECTS.format(objectType='contacts')}/search", json=body,
                           headers={"Authorization": f"Bearer {ACCESS_TOKEN}"}, verify=str(sandbox.tls.ca_bundle))
    assert answer.status_code == 400
    assert answer.json()["category"] == "VALIDATION_ERROR" and answer.json()["status"] == "error"


def test_with_a_search_lag_a_write_is_read_by_id_at_once_and_found_by_search_only_after_the_lag(sandbox, hubspot):
    old = _contacts(sandbox, 1)[0]  # written long ago: indexed
    sandbox.ctx.crm_settings(CRM)["search_lag_seconds"] = 0.5
    new = hubspot.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(
        properties={"email": "fresh@example.com", "lastname": "Test"})).id
    hubspot.crm.contacts.basic_api.update(old, SimplePublicObjectInput(properties={"jobtitle": "CFO"}))
    everyone = {"filter_groups": [{"filters": [{"propertyName": "lastname", "operator": "EQ", "value": "Test"}]}]}
    assert _search(hubspot, **everyone).total == 0, "neither the new nor the changed record is indexed yet"
    read = hubspot.crm.contacts.batch_api.read(ContactReads(inputs=[{"id": new}, {"id": old}], properties=["email"]))
    assert sorted(r.id for r in read.results) == sorted([new, old])
    assert hubspot.crm.contacts.basic_api.get_by_id(new).id == new
    time.sleep(0.6)
    assert sorted(r.id for r in _search(hubspot, **everyone).results) == sorted([new, old])


# --- properties and owners --------------------------------------------------------------------

def test_properties_describe_types_options_and_read_only_values(sandbox, hubspot):
    described = {p.name: p for p in hubspot.crm.properties.core_api.get_all(object_type="contacts").results}
    assert described["lifecyclestage"].type == "enumeration"
    assert "lead" in [o.value for o in described["lifecyclestage"].options]
    assert described["lastmodifieddate"].modification_metadata.read_only_value is True
    assert described["firstname"].modification_metadata.read_only_value is False
    assert described["email"].has_unique_value is True
    companies = {p.name for p in hubspot.crm.properties.core_api.get_all(object_type="companies").results}
    assert {"name", "domain", "hs_lastmodifieddate", "numberofemployees"} <= companies


def test_a_custom_property_created_through_the_api_is_described_and_writable(sandbox, hubspot):
    from hubspot.crm.properties import PropertyCreate

    hubspot.crm.properties.core_api.create(object_type="contacts", property_create=PropertyCreate(
        name="enginy_lead_temperature", label="Lead temperature", type="enumeration", field_type="select",
        group_name="contactinformation", options=[{"label": "Warm", "value": "Warm", "hidden": False},
                                                  {"label": "Cold", "value": "Cold", "hidden": False}]))
    described = hubspot.crm.properties.core_api.get_by_name("contacts", "enginy_lead_temperature")
    assert [o.value for o in described.options] == ["Warm", "Cold"]
    made = hubspot.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(
        properties={"email": "c@example.com", "enginy_lead_temperature": "Warm"}))
    assert made.properties["enginy_lead_temperature"] == "Warm"
    with pytest.raises(ApiException) as exc:
        hubspot.crm.contacts.basic_api.update(made.id, SimplePublicObjectInput(
            properties={"enginy_lead_temperature": "Paused"}))
    assert "INVALID_OPTION" in _error(exc)["message"]


def test_owners_page_and_filter_by_email(sandbox, hubspot):
    for i in range(3):
        insert(sandbox.ctx, "owners", {"email": f"rep{i}@corp.example", "firstName": f"Rep{i}", "lastName": "X"})
    first = hubspot.crm.owners.owners_api.get_page(limit=2)
    second = hubspot.crm.owners.owners_api.get_page(limit=2, after=first.paging.next.after)
    assert [o.email for o in first.results + second.results] == [f"rep{i}@corp.example" for i in range(3)]
    assert second.paging is None
    assert [o.first_name for o in hubspot.crm.owners.owners_api.get_page(email="REP1@corp.example").results] == [
        "Rep1"]


# --- associations and engagements -------------------------------------------------------------

def _company(sandbox: RunningSandbox, name: str) -> str:
    return insert(sandbox.ctx, "companies", {"name": name, "domain": f"{name.lower()}.example"}).id


def test_associations_v4_labels_and_the_single_primary_company(sandbox, hubspot):
    [contact] = _contacts(sandbox, 1)
    acme, globex = _company(sandbox, "Acme"), _company(sandbox, "Globex")
    v4 = hubspot.crm.associations.v4
    v4.basic_api.create_default(from_object_type="contacts", from_object_id=contact, to_object_type="companies",
                                to_object_id=acme)
    v4.basic_api.create(object_type="contacts", object_id=contact, to_object_type="companies", to_object_id=acme,
                        association_spec=[{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}])

    def companies() -> dict[str, set[int]]:
        page = v4.basic_api.get_page(object_type="contacts", object_id=contact, to_object_type="companies")
        return {str(r.to_object_id): {t.type_id for t in r.association_types} for r in page.results}

    def primary() -> str | None:
        return hubspot.crm.contacts.basic_api.get_by_id(contact, properties=["associatedcompanyid"]).properties[
            "associatedcompanyid"]

    assert companies() == {acme: {1, 279}} and primary() == acme
    # Making Globex primary demotes Acme to a plain association.
    v4.batch_api.create(from_object_type="contacts", to_object_type="companies", batch_input_public_association_multi_post={
        "inputs": [{"from": {"id": contact}, "to": {"id": globex},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}]}]})
    assert companies() == {acme: {279}, globex: {1, 279}} and primary() == globex
    # The company side sees the same link with its own type ids.
    from_company = v4.basic_api.get_page(object_type="companies", object_id=globex, to_object_type="contacts")
    assert {t.type_id for t in from_company.results[0].association_types} == {2, 280}
    labels = v4.schema.definitions_api.get_all(from_object_type="contacts", to_object_type="companies")
    assert {(l.type_id, l.label) for l in labels.results} == {(279, None), (1, "Primary")}
    v4.basic_api.archive(object_type="contacts", object_id=contact, to_object_type="companies", to_object_id=globex)
    assert companies() == {acme: {279}} and primary() is None
    read = v4.batch_api.get_page(from_object_type="companies", to_object_type="contacts",
                                 batch_input_public_fetch_associations_batch_request={"inputs": [{"id": acme}]})
    assert [(r._from.id, [t.to_object_id for t in r.to]) for r in read.results] == [(acme, [contact])]


def test_writing_associatedcompanyid_sets_the_primary_company(sandbox, hubspot):
    acme = _company(sandbox, "Acme")
    made = hubspot.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(
        properties={"email": "z@example.com", "associatedcompanyid": acme}))
    page = hubspot.crm.associations.v4.basic_api.get_page(object_type="contacts", object_id=made.id,
                                                          to_object_type="companies")
    assert [(str(r.to_object_id), {t.type_id for t in r.association_types}) for r in page.results] == [
        (acme, {1, 279})]


def test_engagements_are_created_with_inline_associations(sandbox, hubspot):
    from hubspot.crm.objects.tasks import SimplePublicObjectInputForCreate as TaskCreate

    [contact] = _contacts(sandbox, 1)
    when = "2025-03-01T10:00:00.000Z"
    task = hubspot.crm.objects.tasks.basic_api.create(TaskCreate(
        properties={"hs_timestamp": when, "hs_task_subject": "LinkedIn invitation sent", "hs_task_status": "COMPLETED",
                    "hs_task_type": "LINKED_IN_CONNECT"},
        associations=[{"to": {"id": contact}, "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                                          "associationTypeId": 204}]}]))
    hubspot.crm.objects.basic_api.create("emails", {
        "properties": {"hs_timestamp": when, "hs_email_subject": "Re: intro", "hs_email_direction": "EMAIL"},
        "associations": [{"to": {"id": contact}, "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                                             "associationTypeId": 198}]}]})
    hubspot.crm.objects.notes.basic_api.create({"properties": {"hs_timestamp": when, "hs_note_body": "Replied"}})
    linked = hubspot.crm.associations.v4.basic_api.get_page(object_type="contacts", object_id=contact,
                                                            to_object_type="tasks")
    assert [str(r.to_object_id) for r in linked.results] == [task.id]
    assert len(sandbox.ctx.store.records(CRM, "emails")) == len(sandbox.ctx.store.records(CRM, "notes")) == 1
    with pytest.raises(Exception) as exc:
        hubspot.crm.objects.notes.basic_api.create({"properties": {"hs_note_body": "no time"}})
    assert exc.value.status == 400 and "hs_timestamp" in json.loads(exc.value.body)["message"]


# --- limits, faults, accounting ---------------------------------------------------------------

def test_the_burst_limit_answers_429_with_hubspots_headers_and_body(sandbox):
    sandbox.ctx.crm_settings(CRM).update({"burst_limit": 3, "burst_window_ms": 60_000})
    hubspot = client(sandbox)
    url = f"{sandbox.base_url}/crm/v3/objects/contacts"
    answers = [requests.get(url, headers={"Authorization": f"Bearer {ACCESS_TOKEN}"}) for _ in range(3)]
    assert [a.headers["X-HubSpot-RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]
    assert answers[0].headers["X-HubSpot-RateLimit-Max"] == "3"
    assert answers[0].headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "60000"
    with pytest.raises(ApiException) as exc:
        hubspot.crm.contacts.basic_api.get_page(limit=1)
    assert exc.value.status == 429
    body = _error(exc)
    assert body["errorType"] == "RATE_LIMIT" and body["policyName"] == "TEN_SECONDLY_ROLLING"


def test_search_has_its_own_per_second_limit(sandbox):
    sandbox.ctx.crm_settings(CRM).update({"burst_limit": None, "search_per_second": 2})
    hubspot = client(sandbox)
    _search(hubspot, limit=1)
    _search(hubspot, limit=1)
    with pytest.raises(ApiException) as exc:
        _search(hubspot, limit=1)
    assert exc.value.status == 429 and _error(exc)["policyName"] == "SECONDLY"
    time.sleep(1.05)
    assert _search(hubspot, limit=1).total == 0


def test_an_injected_503_fails_the_nth_call_only_and_stats_count_every_call(sandbox, hubspot):
    sandbox.ctx.faults.add(FaultRule(crm=CRM, endpoint=f"{OBJECTS}/batch/create", method="POST", status=503, nth=2))
    create = lambda email: hubspot.crm.contacts.batch_api.create(ContactCreates(inputs=[  # noqa: E731
        {"properties": {"email": email}}]))
    create("one@example.com")
    with pytest.raises(ApiException) as exc:
        create("two@example.com")
    assert exc.value.status == 503 and _error(exc)["status"] == "error"
    create("two@example.com")
    assert _calls(sandbox, "POST", f"{OBJECTS}/batch/create") == 3
    assert sandbox.ctx.stats.statuses[(CRM, 503)] == 1
    assert _history(sandbox, "contacts") == [["create"], ["create"]]


def test_a_429_fault_with_retry_after_is_waited_out_by_the_client_itself(sandbox, hubspot):
    """urllib3 under hubspot-api-client honours Retry-After on 429: one failed call, then success."""
    sandbox.ctx.faults.add(FaultRule(crm=CRM, endpoint=OBJECTS, method="GET", status=429, retry_after=1, times=1))
    started = time.monotonic()
    assert hubspot.crm.contacts.basic_api.get_page(limit=1).results == []
    assert time.monotonic() - started >= 1
    assert _calls(sandbox, "GET", OBJECTS) == 2 and sandbox.ctx.stats.statuses[(CRM, 429)] == 1


def test_a_connection_dropped_after_the_write_leaves_one_record_when_the_retry_upserts(sandbox, hubspot):
    sandbox.ctx.faults.add(FaultRule(crm=CRM, endpoint=f"{OBJECTS}/batch/upsert", kind="drop", nth=1))
    body = ContactUpserts(inputs=[{"idProperty": "email", "id": "once@example.com", "properties": {"firstname": "O"}}])
    with pytest.raises(Exception):
        hubspot.crm.contacts.batch_api.upsert(body)
    assert hubspot.crm.contacts.batch_api.upsert(body).results[0].new is False
    assert _history(sandbox, "contacts") == [["create", "update"]]


def test_an_over_long_property_list_is_refused_with_414(sandbox, hubspot):
    with pytest.raises(ApiException) as exc:
        hubspot.crm.contacts.basic_api.get_page(limit=1, properties=[f"custom_property_{i}" for i in range(400)])
    assert exc.value.status == 414


# --- seeding ----------------------------------------------------------------------------------

def test_seed_maps_generated_data_onto_owners_companies_and_contacts(sandbox, hubspot):
    from crm_pipelines.enginy.generator import generate_frames

    data = generate_frames(200).crm
    seed(sandbox.ctx, data)
    ctx = sandbox.ctx
    assert len(ctx.store.records(CRM, "contacts")) == len(data.contacts)
    assert len(ctx.store.records(CRM, "companies")) == len(data.companies)
    assert len(ctx.store.records(CRM, "owners")) == len(data.users)
    emails = [r.fields["email"].lower() for r in ctx.store.records(CRM, "contacts") if r.fields.get("email")]
    assert len(emails) == len(set(emails))  # HubSpot's one contact per email holds in the seeded portal
    linked = next(r for r in ctx.store.records(CRM, "contacts") if r.fields.get("associatedcompanyid"))
    truth = data.contacts.set_index("seed_id").loc[linked.fields["_seed_id"]]
    company = ctx.store.get(CRM, "companies", linked.fields["associatedcompanyid"])
    assert company.fields["_seed_id"] == truth["company_seed_id"]
    read = hubspot.crm.contacts.basic_api.get_by_id(linked.id, properties=["createdate", "_seed_id"])
    assert "_seed_id" not in read.properties
    assert read.properties["createdate"].startswith(truth["created_at"].strftime("%Y-%m-%dT%H:%M:%S"))
    page = hubspot.crm.associations.v4.basic_api.get_page(object_type="contacts", object_id=linked.id,
                                                          to_object_type="companies")
    assert [(str(r.to_object_id), {t.type_id for t in r.association_types}) for r in page.results] == [
        (company.id, {1, 279})]
