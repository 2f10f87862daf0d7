"""The Dynamics 365 connector against the sandbox over HTTPS: msal for tokens, the Web API for data."""

import logging
import time
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet

from crm_pipelines.canonical import CrmContact
from crm_pipelines.enginy.generator import generate_frames
from crm_pipelines.crms.dynamics.client import DynamicsResource, ReconnectRequired
from crm_pipelines.crms.dynamics import emulator as sandbox_dynamics
from crm_pipelines.sandbox.faults import FaultRule
from crm_pipelines.snapshot import DEFAULT_OVERLAP, fold_changes

CONTACTS = 120


@pytest.fixture
def crm(sandbox):
    sandbox_dynamics.seed(sandbox.ctx, generate_frames(CONTACTS, seed=5).crm)
    sandbox.ctx.stats.reset()
    return sandbox


def resource(sandbox, **overrides) -> DynamicsResource:
    settings = dict(environment_url=sandbox.base_url, tenant_id=sandbox_dynamics.TENANT_NAME,
                    client_id=sandbox_dynamics.CLIENT_ID, client_secret=sandbox_dynamics.CLIENT_SECRET,
                    authority_host=sandbox.base_url, page_size=50)
    settings.update(overrides)
    return DynamicsResource(**settings)


def web_api(sandbox, client, method: str, path: str, **kwargs) -> requests.Response:
    return client._send(method, f"{client.api}/{path}", **kwargs)


def calls(sandbox, endpoint_suffix: str) -> int:
    return sum(n for (crm, _, endpoint), n in sandbox.ctx.stats.calls.items()
               if crm == "dynamics" and endpoint.endswith(endpoint_suffix))


def test_a_first_pull_returns_every_contact_as_canonical_records_page_by_page(crm) -> None:
    client = resource(crm).client()
    result = client.pull("contacts", None, None)
    expected = len(crm.ctx.store.records("dynamics", "contacts"))
    assert len(result.records) == expected > 0
    CrmContact.validate(result.records)
    assert result.records["account_id"].notna().any()
    assert result.pages == -(-expected // 50)
    assert calls(crm, "/contacts") == result.pages, "one call per page, nothing wasted"
    assert "delta_link" in result.state


def test_changes_and_deletions_arrive_through_the_delta_link_and_fold_into_the_snapshot(crm) -> None:
    client = resource(crm).client()
    first = client.pull("contacts", None, None)
    changed, removed = first.records["crm_id"].iloc[0], first.records["crm_id"].iloc[1]
    web_api(crm, client, "PATCH", f"contacts({changed})", json={"jobtitle": "Chief Revenue Officer"})
    web_api(crm, client, "DELETE", f"contacts({removed})")
    second = client.pull("contacts", None, None, state=first.state)
    assert set(second.records["crm_id"]) == {changed, removed}, "only what changed comes back"
    snapshot = fold_changes(first.records, second.records).set_index("crm_id")
    assert len(snapshot) == len(first.records), "nothing doubled"
    assert snapshot.loc[changed, "job_title"] == "Chief Revenue Officer"
    assert snapshot.loc[removed, "is_deleted"] and snapshot.loc[removed, "last_name"] is not None
    third = client.pull("contacts", None, None, state=second.state)
    assert third.records.empty


def test_a_window_pull_returns_only_records_modified_in_the_window(crm) -> None:
    client = resource(crm).client()
    everything = client.pull("contacts", None, None).records
    stamps = everything["last_modified"].sort_values()
    since, until = stamps.iloc[10], stamps.iloc[60]
    window = client.pull("contacts", since.to_pydatetime(), until.to_pydatetime()).records
    expected = everything[(everything.last_modified >= since) & (everything.last_modified < until)]
    assert sorted(window["crm_id"]) == sorted(expected["crm_id"])


def test_companies_and_users_are_pulled_as_canonical_frames(crm) -> None:
    client = resource(crm).client()
    companies = client.pull("companies", None, None).records
    assert len(companies) == len(crm.ctx.store.records("dynamics", "accounts"))
    assert companies["name"].notna().all()
    users = client.users()
    assert users["email"].str.contains("@").all() and users["is_active"].any()


def test_describe_lists_attributes_with_writability_and_picklist_options(crm) -> None:
    fields = {f.name: f for f in resource(crm).client().describe("companies")}
    assert fields["name"].createable and fields["name"].updateable
    assert not fields["modifiedon"].createable
    assert fields["industrycode"].options, "picklist values are listed"


def test_describe_gives_text_lengths_and_calls_an_email_or_url_column_what_its_format_says(crm) -> None:
    """Dataverse's own limits and formats, so the export rejects an over-long value or a malformed
    address before the push, as it does for Salesforce."""
    fields = {f.name: f for f in resource(crm).client().describe("contacts")}
    assert fields["lastname"].length == 50 and fields["description"].length == 2000
    assert (fields["emailaddress1"].type, fields["crm_linkedinurl"].type) == ("email", "url")
    assert fields["lastname"].type == "String" and fields["preferredcontactmethodcode"].length is None


def test_the_token_cache_is_encrypted_at_rest_and_reused(crm, tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    path = tmp_path / "dynamics-token-cache.bin"
    client = resource(crm, token_cache_path=str(path), token_cache_key=key).client()
    client.pull("users", None, None)
    token = client.app.acquire_token_for_client([f"{crm.base_url}/.default"])["access_token"]
    stored = path.read_bytes()
    assert token.encode() not in stored and b"access_token" not in stored.lower() and b"secret" not in stored
    token_calls = calls(crm, "/oauth2/v2.0/token")
    resource(crm, token_cache_path=str(path), token_cache_key=key).client().pull("users", None, None)
    assert calls(crm, "/oauth2/v2.0/token") == token_calls, "a new process reuses the cached token"


def test_an_expired_token_is_renewed_without_failing_the_pull(crm) -> None:
    crm.ctx.crm_settings("dynamics")["token_lifetime_seconds"] = 1
    client = resource(crm).client()
    client.pull("users", None, None)
    time.sleep(1.5)
    assert len(client.pull("users", None, None).records) > 0
    assert calls(crm, "/oauth2/v2.0/token") >= 2


def test_a_revoked_grant_fails_with_a_reconnect_message(crm) -> None:
    crm.ctx.crm_settings("dynamics")["grant_revoked"] = True
    with pytest.raises(ReconnectRequired, match=r"^reconnect Dynamics: Entra ID refused the app \(invalid_grant\)"):
        resource(crm).client().pull("contacts", None, None)


def test_a_wrong_secret_fails_with_a_reconnect_message_that_does_not_contain_it(crm) -> None:
    with pytest.raises(ReconnectRequired) as caught:
        resource(crm, client_secret="not-the-secret-123").client().pull("contacts", None, None)
    assert "invalid_client" in str(caught.value) and "not-the-secret-123" not in str(caught.value)


def test_throttling_and_server_errors_are_retried_after_the_time_the_crm_asks(crm) -> None:
    crm.ctx.faults.add(FaultRule(crm="dynamics", endpoint="/api/data/v9.2/contacts", status=429, retry_after=1, nth=1))
    crm.ctx.faults.add(FaultRule(crm="dynamics", endpoint="/api/data/v9.2/contacts", status=503, nth=3))
    started = time.monotonic()
    result = resource(crm).client().pull("contacts", None, None)
    assert len(result.records) == len(crm.ctx.store.records("dynamics", "contacts"))
    assert time.monotonic() - started >= 1.0, "Retry-After was honoured"


def test_a_bad_token_cache_key_is_a_clear_error(crm, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Fernet key"):
        resource(crm, token_cache_path=str(tmp_path / "c.bin"), token_cache_key="short").client()


def warnings_about(caplog, table: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and r.name.startswith("crm_pipelines.crms.dynamics") and table in r.getMessage()]


def test_an_expired_delta_link_falls_back_to_a_modifiedon_pull_from_the_cursor_and_warns_once(crm, caplog) -> None:
    """Dataverse keeps changes for ExpireChangeTrackingInDays (7 by default) and then refuses the
    stored delta link with 400 ExpiredVersionStamp: the sync goes on by modifiedon from the cursor
    less the overlap, says why once, and the next full pull starts the change feed again."""
    caplog.set_level(logging.WARNING)
    first = resource(crm).client().pull("contacts", None, None)
    changed = first.records["crm_id"].iloc[0]
    client = resource(crm).client()
    web_api(crm, client, "PATCH", f"contacts({changed})", json={"jobtitle": "Chief Revenue Officer"})
    sandbox_dynamics.expire_delta_tokens(crm.ctx)
    second = client.pull("contacts", first.cursor - DEFAULT_OVERLAP, None, state=first.state)
    assert second.records.set_index("crm_id").loc[changed, "job_title"] == "Chief Revenue Officer"
    assert len(second.records) < len(first.records), "the window since the cursor, not the whole table"
    assert "delta_link" not in second.state
    third = resource(crm).client().pull("contacts", second.cursor - DEFAULT_OVERLAP, None, state=second.state)
    assert changed in set(third.records["crm_id"])
    [warning] = warnings_about(caplog, "contacts")
    assert "expired" in warning and "0x80044352" in warning
    restarted = resource(crm).client().pull("contacts", None, None)
    assert "delta_link" in restarted.state and len(restarted.records) == len(first.records)


def test_a_table_without_change_tracking_is_pulled_by_modifiedon_and_warned_about_once(crm, caplog) -> None:
    """A table needs Track changes on (ChangeTrackingEnabled) to answer with a delta link; the
    connector reads the setting once per client and, without it, pulls by modifiedon."""
    caplog.set_level(logging.WARNING)
    crm.ctx.crm_settings("dynamics")["untracked_tables"] = ["contact"]
    first = resource(crm).client().pull("contacts", None, None)
    assert len(first.records) == len(crm.ctx.store.records("dynamics", "contacts"))
    changed = first.records["crm_id"].iloc[0]
    client = resource(crm).client()
    web_api(crm, client, "PATCH", f"contacts({changed})", json={"jobtitle": "Head of Sales"})
    crm.ctx.stats.reset()
    second = client.pull("contacts", first.cursor - DEFAULT_OVERLAP, None, state=first.state)
    assert second.records.set_index("crm_id").loc[changed, "job_title"] == "Head of Sales"
    assert len(second.records) < len(first.records), "the window since the cursor, not the whole table"
    client.pull("contacts", second.cursor - DEFAULT_OVERLAP, None, state=second.state)
    assert calls(crm, "/EntityDefinitions({key})") == 1, "ChangeTrackingEnabled is read once per client"
    resource(crm).client().pull("contacts", second.cursor - DEFAULT_OVERLAP, None, state=second.state)
    [warning] = warnings_about(caplog, "contact")
    assert "Track changes" in warning
    companies = resource(crm).client().pull("companies", None, None)
    assert "delta_link" in companies.state, "the other tables still track changes"


def test_a_throttled_server_error_or_dropped_tenant_discovery_is_tried_again(crm) -> None:
    discovery = "/{tenant}/v2.0/.well-known/openid-configuration"
    # A 429 without Retry-After too: msal then reports the status only in the error its own was raised from.
    for fault in (FaultRule(crm="dynamics", endpoint=discovery, status=429, retry_after=0, times=1),
                  FaultRule(crm="dynamics", endpoint=discovery, status=429, times=1),
                  FaultRule(crm="dynamics", endpoint=discovery, status=503, times=1),
                  FaultRule(crm="dynamics", endpoint=discovery, kind="drop", times=1)):
        crm.ctx.faults.clear()
        crm.ctx.faults.add(fault)
        result = resource(crm).client().pull("contacts", None, None)
        assert len(result.records) == len(crm.ctx.store.records("dynamics", "contacts"))
        assert [rule.hits for rule in crm.ctx.faults.rules()] == [1], fault


def test_a_throttled_token_request_is_tried_again_once_msal_stops_replaying_its_answer(crm) -> None:
    """msal keeps a 429 or 5xx from the token endpoint and answers the same request with it for the
    Retry-After Entra sent (5 s without one): the retry waits that long instead of spending all its
    attempts on msal's copy within a few seconds (the drill's Dynamics run failed so)."""
    crm.ctx.faults.add(FaultRule(crm="dynamics", endpoint="/{tenant}/oauth2/v2.0/token", status=429, times=1))
    started = time.monotonic()
    result = resource(crm).client().pull("users", None, None)
    assert len(result.records) == len(crm.ctx.store.records("dynamics", "systemusers"))
    assert [rule.hits for rule in crm.ctx.faults.rules()] == [1]
    assert time.monotonic() - started >= 5, "it waited as long as msal replays the 429"
