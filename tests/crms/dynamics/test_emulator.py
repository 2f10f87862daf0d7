"""The sandbox's Dynamics 365: msal and requests run unchanged against its authority and Web API."""

from __future__ import annotations

import time
import uuid

import msal
import pytest
import requests

from crm_pipelines.crms.dynamics.emulator import (CLIENT_ID, CLIENT_SECRET, TENANT_ID, TENANT_NAME,
                                            add_custom_attributes, expire_delta_tokens, seed)
from crm_pipelines.crms.wire.query_literals import odata_string
from crm_pipelines.sandbox.faults import FaultRule
from crm_pipelines.sandbox.server import RunningSandbox

API = "/api/data/v9.2"


def _app(sandbox: RunningSandbox, secret: str = CLIENT_SECRET,
         tenant: str = TENANT_NAME) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        CLIENT_ID, client_credential=secret, authority=f"{sandbox.base_url}/{tenant}",
        instance_discovery=False)


def _token(sandbox: RunningSandbox) -> str:
    result = _app(sandbox).acquire_token_for_client([f"{sandbox.base_url}/.default"])
    return result["access_token"]


@pytest.fixture
def web(sandbox: RunningSandbox) -> requests.Session:
    """A requests session carrying a bearer token, as the Dynamics resource will hold one."""
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {_token(sandbox)}",
                            "Accept": "application/json", "OData-MaxVersion": "4.0",
                            "OData-Version": "4.0"})
    return session


def _url(sandbox: RunningSandbox, path: str) -> str:
    return f"{sandbox.base_url}{API}/{path}"


def _create(sandbox: RunningSandbox, web: requests.Session, entity_set: str, body: dict) -> str:
    response = web.post(_url(sandbox, entity_set), json=body)
    assert response.status_code == 204, response.text
    return response.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")


def _calls(sandbox: RunningSandbox, method: str, endpoint: str) -> int:
    return sandbox.ctx.stats.calls[("dynamics", method, API + endpoint)]


def _people(sandbox: RunningSandbox, web: requests.Session) -> None:
    for first, last, email, city in [
        ("Ada", "Lovelace", "ada@analytical.example", "London"),
        ("Alan", "Turing", "alan@bletchley.example", "Wilmslow"),
        ("Grace", "Hopper", "grace@navy.example", "Arlington"),
        ("Edsger", "Dijkstra", None, "Nuenen"),
        ("Barbara", "Liskov", "barbara@mit.example", "Boston"),
        ("Donald", "Knuth", "don@stanford.example", "Stanford"),
        ("Frances", "Allen", "fran@ibm.example", "Peru"),
    ]:
        _create(sandbox, web, "contacts", {"firstname": first, "lastname": last,
                                           "emailaddress1": email, "address1_city": city})


# --- authority ------------------------------------------------------------------------------

def test_msal_gets_a_token_that_the_web_api_accepts(sandbox, web):
    """The connector must work with msal's own discovery and token calls, untouched."""
    response = web.get(_url(sandbox, "WhoAmI"))
    assert response.status_code == 200
    assert set(response.json()) >= {"UserId", "BusinessUnitId", "OrganizationId"}


def test_the_tenant_guid_works_as_well_as_its_name(sandbox):
    """Users paste either form from the Azure portal; both must authenticate."""
    result = _app(sandbox, tenant=TENANT_ID).acquire_token_for_client([f"{sandbox.base_url}/.default"])
    assert result["token_type"] == "Bearer" and result["expires_in"] > 0


def test_an_unknown_tenant_fails_msal_authority_discovery(sandbox):
    """A mistyped tenant must fail when the client is built (Entra answers AADSTS90002 to the
    discovery, which msal turns into its own message), not later on a data call."""
    with pytest.raises(ValueError, match="Unable to get authority configuration"):
        _app(sandbox, tenant="no-such-tenant")


def test_a_wrong_client_secret_comes_back_from_msal_as_the_aadsts_error(sandbox):
    """The pipeline shows Entra's own words so the user knows to fix the secret."""
    result = _app(sandbox, secret="wrong").acquire_token_for_client([f"{sandbox.base_url}/.default"])
    assert result["error"] == "invalid_client"
    assert result["error_description"].startswith("AADSTS7000215")
    assert result["error_codes"] == [7000215]


def test_a_revoked_grant_is_reported_as_invalid_grant(sandbox):
    """invalid_grant is the signal for 'reconnect the integration', distinct from a typo."""
    sandbox.ctx.crm_settings("dynamics")["grant_revoked"] = True
    result = _app(sandbox).acquire_token_for_client([f"{sandbox.base_url}/.default"])
    assert result["error"] == "invalid_grant"
    assert "AADSTS65001" in result["error_description"]


@pytest.mark.parametrize(("setting", "error", "code"), [
    ("client_secret_expired", "invalid_client", 7000222),
    ("app_disabled", "unauthorized_client", 7000112),
])
def test_an_expired_secret_or_disabled_app_gets_entra_own_error(sandbox, setting, error, code):
    """Each of these needs a different fix by an admin; the AADSTS code tells which."""
    sandbox.ctx.crm_settings("dynamics")[setting] = True
    result = _app(sandbox).acquire_token_for_client([f"{sandbox.base_url}/.default"])
    assert result["error"] == error and result["error_codes"] == [code]


def test_a_scope_without_default_is_rejected_as_entra_does(sandbox):
    """Client-credential flows need '{resource}/.default'; a wrong scope must not get a token."""
    result = _app(sandbox).acquire_token_for_client([f"{sandbox.base_url}/user_impersonation"])
    assert result["error"] == "invalid_scope"


def test_an_expired_token_gets_401_invalid_token_and_a_fresh_token_works(sandbox):
    """Tokens live about an hour in production; the connector must renew on 401, not fail."""
    sandbox.ctx.crm_settings("dynamics")["token_lifetime_seconds"] = 1
    token = _token(sandbox)
    time.sleep(1.2)
    expired = requests.get(_url(sandbox, "WhoAmI"), headers={"Authorization": f"Bearer {token}"})
    assert expired.status_code == 401
    assert 'error=invalid_token' in expired.headers["WWW-Authenticate"]
    # Back to an hour, so the fresh token cannot expire too on a busy machine before it is used.
    sandbox.ctx.crm_settings("dynamics")["token_lifetime_seconds"] = 3600
    fresh = requests.get(_url(sandbox, "WhoAmI"), headers={"Authorization": f"Bearer {_token(sandbox)}"})
    assert fresh.status_code == 200


def test_a_call_without_a_token_is_challenged(sandbox):
    """Dataverse answers 401 with a Bearer challenge naming the authority to ask."""
    response = requests.get(_url(sandbox, "contacts"))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer authorization_uri=")


# --- queries --------------------------------------------------------------------------------

def test_paging_follows_next_links_at_the_preferred_page_size(sandbox, web):
    """Pulls rely on @odata.nextLink; the page size decides how many calls a pull costs."""
    _people(sandbox, web)
    url, prefer = _url(sandbox, "contacts?$select=fullname"), {"Prefer": "odata.maxpagesize=3"}
    names, pages = [], 0
    while url:
        response = web.get(url, headers=prefer)
        assert response.headers["Preference-Applied"] == "odata.maxpagesize=3"
        body = response.json()
        names += [row["fullname"] for row in body["value"]]
        pages += 1
        url = body.get("@odata.nextLink")
    assert pages == 3 and len(names) == len(set(names)) == 7
    assert _calls(sandbox, "GET", "/contacts") == 3
    assert sandbox.ctx.stats.records[("dynamics", "GET", API + "/contacts")] == 7


def test_a_row_written_between_pages_is_read_where_the_order_puts_it(sandbox, web):
    """The pages of a query share one sorted answer; a write between two pages must not leave a
    later page reading the answer from before it."""
    _people(sandbox, web)
    url, prefer = _url(sandbox, "contacts?$select=lastname&$orderby=lastname desc"), {"Prefer": "odata.maxpagesize=3"}
    first = web.get(url, headers=prefer).json()
    assert [r["lastname"] for r in first["value"]] == ["Turing", "Lovelace", "Liskov"]
    _create(sandbox, web, "contacts", {"lastname": "Allen-Abbott"})  # after "Allen", before "Dijkstra"
    _create(sandbox, web, "contacts", {"lastname": "Zuse"})  # before the page read: not seen again
    second = web.get(first["@odata.nextLink"], headers=prefer).json()
    third = web.get(second["@odata.nextLink"], headers=prefer).json()
    assert [r["lastname"] for r in second["value"] + third["value"]] == [
        "Knuth", "Hopper", "Dijkstra", "Allen-Abbott", "Allen"]


def test_filter_supports_comparisons_functions_null_and_parentheses(sandbox, web):
    """The pipeline's incremental and matching queries use this subset of OData $filter."""
    _people(sandbox, web)

    def last_names(expression: str) -> set[str]:
        response = web.get(_url(sandbox, "contacts"), params={"$select": "lastname",
                                                               "$filter": expression})
        assert response.status_code == 200, response.text
        return {row["lastname"] for row in response.json()["value"]}

    assert last_names("lastname eq 'turing'") == {"Turing"}  # case-insensitive, as Dataverse
    assert last_names("emailaddress1 eq null") == {"Dijkstra"}
    assert last_names("startswith(firstname,'A') and not contains(lastname,'ing')") == {"Lovelace"}
    assert last_names("(address1_city eq 'Boston' or address1_city eq 'Peru') and "
                      "endswith(emailaddress1,'.example')") == {"Liskov", "Allen"}
    assert last_names("lastname ge 'L' and lastname lt 'M'") == {"Lovelace", "Liskov"}
    assert last_names("lastname ne 'Knuth' and emailaddress1 ne null and "
                      "not (address1_city eq 'London')") == {"Turing", "Hopper", "Liskov", "Allen"}


def test_a_malformed_filter_or_unknown_column_is_an_odata_error(sandbox, web):
    """Mapping mistakes must surface with Dataverse's error code, not an empty result."""
    bad = web.get(_url(sandbox, "contacts"), params={"$filter": "lastname eq"})
    unknown = web.get(_url(sandbox, "contacts"), params={"$select": "lastname,shoesize"})
    assert bad.status_code == unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "0x80060888"
    assert "shoesize" in unknown.json()["error"]["message"]


def test_select_orderby_top_and_count_shape_the_result(sandbox, web):
    """Sorting on several columns, a row cap and the total are what reports ask for."""
    _people(sandbox, web)
    _create(sandbox, web, "contacts", {"firstname": "Alan", "lastname": "Kay", "address1_city": "Los Angeles"})
    response = web.get(_url(sandbox, "contacts"), params={
        "$select": "firstname,lastname", "$orderby": "firstname asc,lastname desc", "$top": "3",
        "$count": "true"})
    body = response.json()
    assert body["@odata.count"] == 3
    assert [(r["firstname"], r["lastname"]) for r in body["value"]] == [
        ("Ada", "Lovelace"), ("Alan", "Turing"), ("Alan", "Kay")]
    assert set(body["value"][0]) == {"@odata.etag", "firstname", "lastname", "contactid"}
    assert body["@odata.context"].endswith("$metadata#contacts(firstname,lastname)")


# --- writes ---------------------------------------------------------------------------------

def test_a_contact_bound_to_an_account_reads_back_its_parentcustomerid_value(sandbox, web):
    """Associations are written with @odata.bind and read as _parentcustomerid_value."""
    account = _create(sandbox, web, "accounts", {"name": "Analytical Engines", "industrycode": 7})
    created = web.post(_url(sandbox, "contacts"), headers={"Prefer": "return=representation"},
                       json={"firstname": "Ada", "lastname": "Lovelace",
                             "parentcustomerid_account@odata.bind": f"/accounts({account})"})
    assert created.status_code == 201
    contact = created.json()["contactid"]
    read = web.get(_url(sandbox, f"contacts({contact})?$select=fullname,_parentcustomerid_value"))
    assert read.json()["_parentcustomerid_value"] == account
    assert read.json()["fullname"] == "Ada Lovelace"
    expanded = web.get(_url(sandbox, f"contacts({contact})"), params={
        "$select": "lastname", "$expand": "parentcustomerid_account($select=name,industrycode)"})
    assert expanded.json()["parentcustomerid_account"]["name"] == "Analytical Engines"
    web.patch(_url(sandbox, f"accounts({account})"), json={"crm_enginyid": "co-ae"})
    by_key = _create(sandbox, web, "contacts", {
        "lastname": "Babbage", "parentcustomerid_account@odata.bind": "/accounts(crm_enginyid='co-ae')"})
    assert sandbox.ctx.store.get("dynamics", "contacts", by_key).fields["_parentcustomerid_value"] == account
    missing = web.post(_url(sandbox, "contacts"), json={
        "lastname": "Nobody", "parentcustomerid_account@odata.bind": f"/accounts({uuid.uuid4()})"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "0x80040217"


def test_formatted_values_and_lookup_tables_come_with_include_annotations(sandbox, web):
    """Reports show picklist labels and owner names; Dataverse sends them only when asked."""
    account = _create(sandbox, web, "accounts", {"name": "Babbage & Co", "industrycode": 16})
    contact = _create(sandbox, web, "contacts", {
        "lastname": "Lovelace", "parentcustomerid_account@odata.bind": f"/accounts({account})"})
    plain = web.get(_url(sandbox, f"accounts({account})?$select=industrycode")).json()
    assert not any("@" in k for k in plain if k != "@odata.etag" and k != "@odata.context")
    annotated = web.get(_url(sandbox, f"contacts({contact})?$select=_parentcustomerid_value"),
                        headers={"Prefer": 'odata.include-annotations="*"'}).json()
    assert annotated["_parentcustomerid_value@OData.Community.Display.V1.FormattedValue"] == "Babbage & Co"
    assert annotated["_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "account"
    industry = web.get(_url(sandbox, f"accounts({account})?$select=industrycode"), headers={
        "Prefer": 'odata.include-annotations="OData.Community.Display.V1.FormattedValue"'}).json()
    assert industry["industrycode@OData.Community.Display.V1.FormattedValue"] == "Financial"


def test_upsert_by_alternate_key_creates_once_then_updates(sandbox, web):
    """The push is idempotent through crm_enginyid: a retried upsert must never duplicate."""
    url = _url(sandbox, "contacts(crm_enginyid='ctc-42')")
    first = web.patch(url, json={"firstname": "Grace", "lastname": "Hopper"})
    second = web.patch(url, json={"jobtitle": "Rear Admiral"})
    assert first.status_code == second.status_code == 204
    assert first.headers["OData-EntityId"] == second.headers["OData-EntityId"]
    rows = sandbox.ctx.store.records("dynamics", "contacts")
    assert len(rows) == 1
    assert [c.op for c in rows[0].history] == ["create", "update"]
    assert rows[0].fields["crm_enginyid"] == "ctc-42" and rows[0].fields["jobtitle"] == "Rear Admiral"


def test_creating_a_second_row_with_the_same_enginy_id_is_refused(sandbox, web):
    """crm_enginyid is an alternate key: Dataverse enforces its uniqueness on every write."""
    _create(sandbox, web, "leads", {"lastname": "First", "crm_enginyid": "ctc-1"})
    again = web.post(_url(sandbox, "leads"), json={"lastname": "Second", "crm_enginyid": "CTC-1"})
    assert again.status_code == 412 and again.json()["error"]["code"] == "0x80040237"
    assert len(sandbox.ctx.store.records("dynamics", "leads")) == 1


def test_if_match_and_if_none_match_turn_an_upsert_into_update_only_or_create_only(sandbox, web):
    """If-Match: * must not create, If-None-Match: * must not overwrite."""
    url = _url(sandbox, "accounts(crm_enginyid='co-7')")
    assert web.patch(url, json={"name": "X"}, headers={"If-Match": "*"}).status_code == 404
    assert web.patch(url, json={"name": "X"}, headers={"If-None-Match": "*"}).status_code == 204
    clash = web.patch(url, json={"name": "Y"}, headers={"If-None-Match": "*"})
    assert clash.status_code == 412 and clash.json()["error"]["code"] == "0x80040237"
    assert web.patch(url, json={"name": "Z"}, headers={"If-Match": "*"}).status_code == 204
    assert web.get(url).json()["name"] == "Z"


def test_values_are_validated_against_the_attribute_metadata(sandbox, web):
    """Rejected rows must carry Dataverse's reason so the push can keep them with it."""
    too_long = web.post(_url(sandbox, "contacts"), json={"lastname": "x" * 51})
    bad_option = web.post(_url(sandbox, "accounts"), json={"name": "A", "industrycode": 99})
    unknown = web.post(_url(sandbox, "accounts"), json={"name": "A", "colour": "red"})
    assert too_long.json()["error"]["code"] == "0x80044331"
    assert bad_option.json()["error"]["code"] == "0x8004431a"
    assert unknown.status_code == 400 and "colour" in unknown.json()["error"]["message"]


def test_delete_then_read_is_404(sandbox, web):
    """A deleted row is gone for the API but kept (soft) in the store's history."""
    contact = _create(sandbox, web, "contacts", {"lastname": "Temp"})
    assert web.delete(_url(sandbox, f"contacts({contact})")).status_code == 204
    assert web.get(_url(sandbox, f"contacts({contact})")).status_code == 404
    assert web.delete(_url(sandbox, f"contacts({contact})")).status_code == 404


# --- $batch ---------------------------------------------------------------------------------

def _batch(operations: list) -> str:
    """A multipart/mixed body; a list inside ``operations`` is one change set."""
    lines: list[str] = []

    def request(method: str, url: str, body: str | None, content_id: int | None) -> list[str]:
        part = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
        if content_id is not None:
            part.append(f"Content-ID: {content_id}")
        part += ["", f"{method} {url} HTTP/1.1", "Content-Type: application/json;type=entry", "",
                 body or ""]
        return part

    for item in operations:
        lines.append("--batch_B1")
        if isinstance(item, list):
            lines += ["Content-Type: multipart/mixed; boundary=changeset_C1", ""]
            for n, (method, url, body) in enumerate(item, start=1):
                lines += ["--changeset_C1", *request(method, url, body, n)]
            lines.append("--changeset_C1--")
        else:
            method, url, body = item
            lines += request(method, url, body, None)
    lines.append("--batch_B1--")
    return "\r\n".join(lines) + "\r\n"


def _post_batch(sandbox, web, operations, prefer=None) -> requests.Response:
    headers = {"Content-Type": "multipart/mixed; boundary=batch_B1"}
    if prefer:
        headers["Prefer"] = prefer
    return web.post(_url(sandbox, "$batch"), data=_batch(operations).encode(), headers=headers)


def test_a_changeset_with_content_id_references_commits_as_one(sandbox, web):
    """An account and its contact go in one transaction, the contact binding to '$1'."""
    api = f"{sandbox.base_url}{API}"
    response = _post_batch(sandbox, web, [
        [("POST", f"{api}/accounts", '{"name": "Bletchley Park", "crm_enginyid": "co-1"}'),
         ("POST", f"{api}/contacts", '{"lastname": "Turing", "parentcustomerid_account@odata.bind": "$1"}')],
        ("GET", f"{api}/contacts?$select=lastname,_parentcustomerid_value", None),
    ])
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("multipart/mixed; boundary=batchresponse_")
    text = response.text
    assert text.count("HTTP/1.1 204 No Content") == 2 and "Content-ID: 2" in text
    assert "HTTP/1.1 200 OK" in text and '"lastname": "Turing"' in text
    account = sandbox.ctx.store.records("dynamics", "accounts")[0]
    contact = sandbox.ctx.store.records("dynamics", "contacts")[0]
    assert contact.fields["_parentcustomerid_value"] == account.id
    assert _calls(sandbox, "POST", "/$batch") == 1


def test_a_changeset_rolls_back_entirely_when_one_operation_fails(sandbox, web):
    """All or nothing: a failed row must not leave its siblings half-written in the CRM."""
    api = f"{sandbox.base_url}{API}"
    existing = _create(sandbox, web, "contacts", {"lastname": "Before"})
    response = _post_batch(sandbox, web, [
        [("POST", f"{api}/accounts", '{"name": "Kept?"}'),
         ("PATCH", f"{api}/contacts({existing})", '{"lastname": "After"}'),
         ("POST", f"{api}/contacts", '{"lastname": "' + "y" * 60 + '"}')],
        ("POST", f"{api}/accounts", '{"name": "Never run"}'),
    ])
    assert response.status_code == 200
    assert "HTTP/1.1 400 Bad Request" in response.text and "0x80044331" in response.text
    assert "Content-ID: 3" in response.text  # which row was refused
    assert "HTTP/1.1 204" not in response.text
    assert sandbox.ctx.store.records("dynamics", "accounts") == []
    record = sandbox.ctx.store.get("dynamics", "contacts", existing)
    assert record.fields["lastname"] == "Before" and len(record.history) == 1


def test_continue_on_error_runs_the_operations_after_a_failure(sandbox, web):
    """With odata.continue-on-error one bad row does not block the rest of a batch."""
    api = f"{sandbox.base_url}{API}"
    response = _post_batch(sandbox, web, [
        ("POST", f"{api}/accounts", '{"name": "A", "industrycode": 12345}'),
        ("POST", f"{api}/accounts", '{"name": "B"}'),
    ], prefer="odata.continue-on-error")
    assert "HTTP/1.1 400 Bad Request" in response.text and "HTTP/1.1 204 No Content" in response.text
    assert [r.fields["name"] for r in sandbox.ctx.store.records("dynamics", "accounts")] == ["B"]


def test_a_batch_of_more_than_1000_requests_is_refused(sandbox, web):
    """Dataverse caps a batch at 1000 requests; the push must split before that."""
    api = f"{sandbox.base_url}{API}"
    response = _post_batch(sandbox, web, [("POST", f"{api}/accounts", '{"name": "A"}')] * 1001)
    assert response.status_code == 400
    assert sandbox.ctx.store.records("dynamics", "accounts") == []


# --- incremental pulls ----------------------------------------------------------------------

def test_change_tracking_delta_link_returns_updates_and_deletions(sandbox, web):
    """Incremental pulls must see deletes, which a modifiedon filter alone cannot show."""
    kept = _create(sandbox, web, "contacts", {"lastname": "Kept"})
    changed = _create(sandbox, web, "contacts", {"lastname": "Changed"})
    gone = _create(sandbox, web, "contacts", {"lastname": "Gone"})
    initial = web.get(_url(sandbox, "contacts?$select=lastname"),
                      headers={"Prefer": "odata.track-changes"}).json()
    assert len(initial["value"]) == 3
    web.patch(_url(sandbox, f"contacts({changed})"), json={"lastname": "Changed again"})
    web.delete(_url(sandbox, f"contacts({gone})"))
    added = _create(sandbox, web, "contacts", {"lastname": "New"})
    delta = web.get(initial["@odata.deltaLink"]).json()
    assert delta["@odata.context"].endswith("$metadata#contacts(lastname)/$delta")
    updates = {r["contactid"]: r["lastname"] for r in delta["value"] if "contactid" in r}
    deletions = [r for r in delta["value"] if r.get("reason") == "deleted"]
    assert updates == {changed: "Changed again", added: "New"} and kept not in updates
    assert [d["id"] for d in deletions] == [gone]
    assert deletions[0]["@odata.context"].endswith("$metadata#contacts/$deletedEntity")
    assert web.get(delta["@odata.deltaLink"]).json()["value"] == []


def test_initial_change_tracking_pages_before_it_hands_out_the_delta_link(sandbox, web):
    """A first full pull is paged like any query; the delta link only comes on its last page."""
    _people(sandbox, web)
    url, pages, seen = _url(sandbox, "contacts?$select=lastname"), 0, []
    headers = {"Prefer": "odata.track-changes,odata.maxpagesize=4"}
    while True:
        body = web.get(url, headers=headers).json()
        pages, seen = pages + 1, seen + [r["lastname"] for r in body["value"]]
        if "@odata.nextLink" not in body:
            break
        assert "@odata.deltaLink" not in body
        url = body["@odata.nextLink"]
        headers = {"Prefer": "odata.maxpagesize=4"}  # the link itself carries the tracking
    assert pages == 2 and len(set(seen)) == 7
    assert web.get(body["@odata.deltaLink"]).json()["value"] == []


def test_a_table_without_track_changes_ignores_the_preference_and_says_so_in_its_definition(sandbox, web):
    """Only tables with Track changes on answer odata.track-changes with a delta link (Use change
    tracking to synchronize data with external systems, "Enable change tracking for a table")."""
    sandbox.ctx.crm_settings("dynamics")["untracked_tables"] = ["account"]
    _create(sandbox, web, "accounts", {"name": "Contoso"})
    body = web.get(_url(sandbox, "accounts?$select=name"), headers={"Prefer": "odata.track-changes"}).json()
    assert [r["name"] for r in body["value"]] == ["Contoso"] and "@odata.deltaLink" not in body
    definition = "EntityDefinitions(LogicalName='{}')?$select=ChangeTrackingEnabled"
    assert web.get(_url(sandbox, definition.format("account"))).json()["ChangeTrackingEnabled"] is False
    assert web.get(_url(sandbox, definition.format("contact"))).json()["ChangeTrackingEnabled"] is True


def test_an_expired_or_forged_delta_token_answers_400_in_dataverse_error_shape(sandbox, web):
    """Changes are kept ExpireChangeTrackingInDays (7 by default); an older token is refused with
    ExpiredVersionStamp (0x80044352) and the client must read everything again."""
    _create(sandbox, web, "contacts", {"lastname": "Kept"})
    initial = web.get(_url(sandbox, "contacts"), headers={"Prefer": "odata.track-changes"}).json()
    old_link = initial["@odata.deltaLink"]
    expire_delta_tokens(sandbox.ctx)
    expired = web.get(old_link)
    assert expired.status_code == 400
    assert expired.json() == {"error": {"code": "0x80044352", "message": "Version stamp associated with the "
                                        "client has expired. Please perform a full sync."}}
    fresh = web.get(_url(sandbox, "contacts"), headers={"Prefer": "odata.track-changes"}).json()
    assert web.get(fresh["@odata.deltaLink"]).status_code == 200, "a token issued after the expiry works"
    sandbox.ctx.crm_settings("dynamics")["change_tracking_days"] = 0  # every token is past the retention
    assert web.get(fresh["@odata.deltaLink"]).json()["error"]["code"] == "0x80044352"
    forged = web.get(_url(sandbox, "contacts?$deltatoken=not-a-token"))
    assert forged.status_code == 400 and forged.json()["error"]["code"] == "0x80060888"


def test_modifiedon_ge_filter_returns_rows_changed_since_a_cursor(sandbox, web):
    """The simple incremental pull: rows modified at or after the last cursor."""
    old = _create(sandbox, web, "accounts", {"name": "Old"})
    cursor = web.get(_url(sandbox, f"accounts({old})?$select=modifiedon")).json()["modifiedon"]
    time.sleep(1.05)  # modifiedon has one-second precision, as in Dataverse
    _create(sandbox, web, "accounts", {"name": "New"})
    later = web.get(_url(sandbox, f"accounts?$select=name&$filter=modifiedon gt {cursor}")).json()
    since = web.get(_url(sandbox, f"accounts?$select=name&$filter=modifiedon ge {cursor}")).json()
    assert [r["name"] for r in later["value"]] == ["New"]
    assert {r["name"] for r in since["value"]} == {"Old", "New"}


# --- metadata -------------------------------------------------------------------------------

def test_entity_definitions_describe_attributes_and_picklist_options(sandbox, web):
    """Mapping validation reads the CRM's schema: types, writability, lengths and options."""
    attributes = web.get(_url(sandbox, "EntityDefinitions(LogicalName='contact')/Attributes"), params={
        "$select": "LogicalName,AttributeType,IsValidForCreate,IsValidForUpdate,RequiredLevel,MaxLength"})
    by_name = {a["LogicalName"]: a for a in attributes.json()["value"]}
    assert by_name["firstname"]["MaxLength"] == 50 and by_name["firstname"]["IsValidForCreate"]
    assert not by_name["fullname"]["IsValidForCreate"] and not by_name["modifiedon"]["IsValidForUpdate"]
    assert by_name["parentcustomerid"]["AttributeType"] == "Customer"
    assert by_name["lastname"]["RequiredLevel"]["Value"] == "ApplicationRequired"
    assert {"crm_enginyid", "crm_linkedinurl", "emailaddress1", "ownerid"} <= set(by_name)
    picklists = web.get(
        _url(sandbox, "EntityDefinitions(LogicalName='account')/Attributes/"
                      "Microsoft.Dynamics.CRM.PicklistAttributeMetadata"),
        params={"$select": "LogicalName", "$expand": "OptionSet($select=Options)"}).json()["value"]
    industry = next(p for p in picklists if p["LogicalName"] == "industrycode")
    labels = {o["Value"]: o["Label"]["UserLocalizedLabel"]["Label"] for o in industry["OptionSet"]["Options"]}
    assert labels[7] == "Consulting" and labels[100000000] == "Software"


def test_custom_attributes_added_at_run_time_are_described_and_writable(sandbox, web):
    """A customer org can have hundreds of columns; metadata, writes and $select must scale."""
    add_custom_attributes(sandbox.ctx, "contact", [
        {"LogicalName": f"crm_field{i:03d}", "AttributeType": "String", "MaxLength": 20}
        for i in range(300)])
    names = [a["LogicalName"] for a in web.get(
        _url(sandbox, "EntityDefinitions(LogicalName='contact')/Attributes?$select=LogicalName")
    ).json()["value"]]
    assert sum(n.startswith("crm_field") for n in names) == 300
    contact = _create(sandbox, web, "contacts", {"lastname": "Wide", "crm_field299": "last one"})
    select = ",".join(f"crm_field{i:03d}" for i in range(300))
    row = web.get(_url(sandbox, f"contacts({contact})?$select={select}")).json()
    assert row["crm_field299"] == "last one" and row["crm_field000"] is None


def test_a_url_over_the_limit_is_refused_with_414(sandbox, web):
    """Long $select lists must be split by the connector; the service refuses, not truncates."""
    sandbox.ctx.crm_settings("dynamics")["max_url_length"] = 2048
    select = ",".join(["lastname"] * 300)
    assert web.get(_url(sandbox, f"contacts?$select={select}")).status_code == 414


# --- limits and faults ----------------------------------------------------------------------

def test_service_protection_limit_answers_429_with_retry_after(sandbox, web):
    """Above the per-window request count Dataverse throttles; the connector must wait."""
    sandbox.ctx.crm_settings("dynamics").update(service_protection_requests=3,
                                                service_protection_window_seconds=30)
    statuses = [web.get(_url(sandbox, "accounts")).status_code for _ in range(4)]
    throttled = web.get(_url(sandbox, "accounts"))
    assert statuses == [200, 200, 200, 429]
    assert throttled.json()["error"]["code"] == "0x80072322"
    assert 1 <= int(throttled.headers["Retry-After"]) <= 30


def test_an_injected_503_fails_once_and_the_retry_succeeds(sandbox, web):
    """Fault drills: a transient 5xx carries the OData error body and then clears."""
    sandbox.ctx.faults.add(FaultRule(crm="dynamics", endpoint=f"{API}/accounts", method="POST",
                                     status=503, nth=1))
    first = web.post(_url(sandbox, "accounts"), json={"name": "Retry Ltd"})
    assert first.status_code == 503 and "error" in first.json()
    assert web.post(_url(sandbox, "accounts"), json={"name": "Retry Ltd"}).status_code == 204
    assert len(sandbox.ctx.store.records("dynamics", "accounts")) == 1


def test_a_connection_dropped_after_the_write_leaves_one_record_when_the_retry_upserts(sandbox, web):
    """The write happened but the client never heard; an upsert by key makes the retry safe."""
    url = _url(sandbox, "contacts(crm_enginyid='ctc-9')")
    sandbox.ctx.faults.add(FaultRule(crm="dynamics", endpoint=f"{API}/contacts({{key:path}})",
                                     method="PATCH", kind="drop", status=200, nth=1))
    with pytest.raises((requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        web.patch(url, json={"lastname": "Dropped"})
    assert web.patch(url, json={"lastname": "Dropped"}).status_code == 204
    rows = sandbox.ctx.store.records("dynamics", "contacts", include_deleted=True)
    assert len(rows) == 1 and [c.op for c in rows[0].history] == ["create", "update"]


# --- seed -----------------------------------------------------------------------------------

def test_seed_maps_the_generator_output_to_dataverse_tables(sandbox, web):
    """Demos and matching tests start from the generator's CRM side, joined back by seed_id."""
    from crm_pipelines.enginy.generator import generate_frames

    data = generate_frames(40, seed=7).crm
    seed(sandbox.ctx, data)
    store = sandbox.ctx.store
    leads = int(data.contacts["is_lead"].sum())
    assert len(store.records("dynamics", "systemusers")) == len(data.users)
    assert len(store.records("dynamics", "accounts")) == len(data.companies)
    assert len(store.records("dynamics", "leads")) == leads
    assert len(store.records("dynamics", "contacts")) == len(data.contacts) - leads
    person = data.contacts[~data.contacts["is_lead"] & data.contacts["company_seed_id"].notna()].iloc[0]
    rows = web.get(_url(sandbox, "contacts"), params={
        "$filter": f"lastname eq {odata_string(person.last_name)}",
        "$select": "lastname,_parentcustomerid_value,createdon"}).json()["value"]
    assert rows and all("_seed_id" not in r for r in rows)
    stored = [store.get("dynamics", "contacts", r["contactid"]) for r in rows]
    assert person.seed_id in {s.fields["_seed_id"] for s in stored}
    mine = next(s for s in stored if s.fields["_seed_id"] == person.seed_id)
    account = store.get("dynamics", "accounts", mine.fields["_parentcustomerid_value"])
    assert account.fields["_seed_id"] == person.company_seed_id
