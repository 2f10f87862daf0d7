"""The Salesforce connector against the sandbox over HTTPS, through simple-salesforce."""

import json
from datetime import datetime, timedelta, timezone

import pytest
from pandas.testing import assert_frame_equal

from crm_pipelines.canonical import CrmContact
from crm_pipelines.enginy.generator import generate_frames
from crm_pipelines.crms.salesforce.client import (SalesforceAuthError, SalesforceResource, _canonical, _canonical_csv,
                                                  _csv_rows)
from crm_pipelines.crms.salesforce import emulator as sandbox_salesforce
from crm_pipelines.sandbox.faults import FaultRule
from crm_pipelines.snapshot import fold_changes


@pytest.fixture
def crm(sandbox):
    sandbox_salesforce.seed(sandbox.ctx, generate_frames(1500, seed=5).crm)
    sandbox.ctx.stats.reset()
    return sandbox


def resource(sandbox, **overrides) -> SalesforceResource:
    settings = dict(login_url=sandbox.base_url, client_id="sandbox-client", client_secret="sandbox-secret")
    return SalesforceResource(**{**settings, **overrides})


def live(sandbox, obj: str) -> int:
    return len(sandbox.ctx.store.records("salesforce", obj))


def query_calls(sandbox) -> int:
    return sum(n for (crm, _, endpoint), n in sandbox.ctx.stats.calls.items()
               if crm == "salesforce" and ("/query" in endpoint or "/queryAll" in endpoint))


def test_a_first_pull_returns_every_contact_with_its_account_name_in_pages_of_2000(crm) -> None:
    client = resource(crm).client()
    result = client.pull("contacts", None, None)
    assert len(result.records) == live(crm, "Contact") > 1000
    CrmContact.validate(result.records)
    with_account = result.records[result.records.account_id.notna()]
    assert with_account["company_name"].notna().all(), "Account.Name comes along"
    assert result.pages == 1, "1,500-ish contacts fit one page of 2,000"
    assert result.records["raw"].map(lambda r: "LinkedIn_Profile__c" in json.loads(r)).all(), "as JSON text"


def test_pages_follow_next_records_url_without_missing_or_doubling_a_row(crm) -> None:
    for i in range(3000):
        sandbox_salesforce.insert(crm.ctx, "Lead", {"LastName": f"Bulkload {i}", "Company": "Acme", "Status": "Open - Not Contacted"})
    result = resource(crm, bulk_threshold=100_000).client().pull("leads", None, None)
    assert result.pages == -(-live(crm, "Lead") // 2000)
    assert result.records["crm_id"].is_unique and len(result.records) == live(crm, "Lead")


def test_a_window_pull_sees_changes_and_deletions_through_query_all(crm) -> None:
    client = resource(crm).client()
    first = client.pull("contacts", None, None)
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    changed, removed = first.records["crm_id"].iloc[0], first.records["crm_id"].iloc[1]
    client.sf.Contact.update(changed, {"Title": "Chief Revenue Officer"})
    client.sf.Contact.delete(removed)
    second = client.pull("contacts", since, None)
    assert set(second.records["crm_id"]) == {changed, removed}
    snapshot = fold_changes(first.records, second.records).set_index("crm_id")
    assert len(snapshot) == len(first.records)
    assert snapshot.loc[changed, "job_title"] == "Chief Revenue Officer"
    assert bool(snapshot.loc[removed, "is_deleted"])


def test_a_pull_above_the_threshold_goes_through_bulk_api_2(crm) -> None:
    client = resource(crm, bulk_threshold=100).client()
    result = client.pull("contacts", None, None)
    assert result.notes and result.notes[0].startswith("Bulk API 2.0")
    assert len(result.records) == live(crm, "Contact")
    rest = resource(crm).client().pull("contacts", None, None).records.set_index("crm_id").sort_index()
    bulk = result.records.set_index("crm_id").sort_index()
    assert (bulk["email"].fillna("") == rest["email"].fillna("")).all()
    assert (bulk["last_modified"] == rest["last_modified"]).all()
    assert any("/jobs/query" in endpoint for (crm_, _, endpoint) in crm.ctx.stats.calls if crm_ == "salesforce")


def test_an_org_with_hundreds_of_custom_fields_is_pulled_in_several_queries(crm) -> None:
    for i in range(400):
        sandbox_salesforce.add_custom_field(crm.ctx, "Contact", f"Very_Long_Custom_Field_Name_{i:03d}__c")
    client = resource(crm).client()
    crm.ctx.stats.reset()
    result = client.pull("contacts", None, None)
    assert len(result.records) == live(crm, "Contact")
    fields = result.records["raw"].map(json.loads)
    assert fields.map(lambda r: "Very_Long_Custom_Field_Name_399__c" in r and "Email" in r).all()
    assert query_calls(crm) >= 2, "the field list was split to stay under the URI limit"


def test_describe_reports_types_picklists_and_writability(crm) -> None:
    fields = {f.name: f for f in resource(crm).client().describe("contacts")}
    assert fields["LastName"].required and fields["LastName"].createable
    assert not fields["Name"].createable and not fields["CreatedDate"].updateable
    assert fields["Enginy_Id__c"].external_id and fields["Enginy_Id__c"].unique
    assert fields["LeadSource"].options
    # The lengths describe gives, for the export to reject an over-long value before sending it.
    assert fields["LastName"].length == 80 and fields["Email"].length == 80 and fields["Birthdate"].length is None


def test_users_are_pulled_with_their_emails(crm) -> None:
    users = resource(crm).client().users()
    assert len(users) == live(crm, "User") and users["email"].str.contains("@").all()


def test_refused_credentials_say_so_without_repeating_the_secret(crm) -> None:
    with pytest.raises(SalesforceAuthError) as caught:
        resource(crm, client_secret="wrong-secret-42").client().pull("contacts", None, None)
    assert "invalid_client" in str(caught.value) and "wrong-secret-42" not in str(caught.value)


def test_the_username_password_flow_works_too(crm) -> None:
    client = resource(crm, username="integration@enginy-customer.com", password="sandbox-password").client()
    assert len(client.pull("users", None, None).records) > 0


def test_server_errors_are_retried(crm) -> None:
    crm.ctx.faults.add(FaultRule(crm="salesforce", status=503, nth=2))
    crm.ctx.faults.add(FaultRule(crm="salesforce", status=503, nth=3))
    assert len(resource(crm).client().pull("contacts", None, None).records) == live(crm, "Contact")


def test_a_bulk_pull_of_an_object_too_big_to_read_unchunked_completes_with_the_newest_modstamp_as_cursor(crm) -> None:
    """On a real org an ORDER BY turns PK chunking off for a Bulk API 2.0 query, and the big pulls
    that go through bulk then time out (Bulk API 2.0, "Troubleshooting Query Timeouts"); chunked
    results come back in no order. The sandbox fails unchunked jobs past a row limit and answers
    chunks last Id range first, so the pull must neither order nor trust the order."""
    crm.ctx.crm_settings("salesforce").update(bulk_unchunked_row_limit=500, bulk_pk_chunk_size=300)
    rest = resource(crm).client().pull("contacts", None, None)
    client, lines = resource(crm, bulk_threshold=100).client(), []
    client.progress = lines.append
    result = client.pull("contacts", None, None)
    assert result.notes and result.notes[0].startswith("Bulk API 2.0")
    assert sorted(result.records["crm_id"]) == sorted(rest.records["crm_id"])
    total = f"{len(rest.records):,}"
    assert lines and lines[-1].startswith(f"Contact (Bulk API 2.0): {total} of {total} ("), lines
    assert len(result.records) == live(crm, "Contact") > 500
    assert result.cursor == rest.records["last_modified"].max().to_pydatetime()
    assert list(result.records["crm_id"]) == list(rest.records["crm_id"]), "modification order, as REST gives it"


def test_a_bulk_result_set_is_read_a_column_at_a_time_into_the_frame_its_rows_would_make() -> None:
    """Bulk API 2.0 result sets are read by Arrow and made JSON by DuckDB, not a dict per row: the
    canonical frame, raw fields and all, is the one the rows make — quotes, line breaks, accents,
    empty cells (no value) and a relationship field's dotted column included."""
    text = ('"Id","FirstName","LastName","Email","IsDeleted","SystemModstamp","AccountId","Account.Name","Title"\n'
            '"003A","Ada","Lovelace ""the first""","ada@acme.com","false","2026-01-02T03:04:05.000Z","001A",'
            '"Acmé, Inc.\nLondon","CTO"\n'
            '"003B","","Hopper","","true","2026-01-03T03:04:05.000Z","","",""\n')
    settings = SalesforceResource(client_id="id", client_secret="secret")
    by_columns = _canonical_csv("contacts", text, settings)
    by_rows = _canonical("contacts", _csv_rows(text), settings)
    assert_frame_equal(by_columns, by_rows)
    assert json.loads(by_columns["raw"][1]) == {"Id": "003B", "FirstName": None, "LastName": "Hopper", "Email": None,
                                                "IsDeleted": "true", "SystemModstamp": "2026-01-03T03:04:05.000Z",
                                                "AccountId": None, "Account.Name": None, "Title": None}
    assert by_columns["company_name"][0] == "Acmé, Inc.\nLondon" and by_columns["is_deleted"].tolist() == [False, True]
