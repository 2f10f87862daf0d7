"""The Zoho CRM adapter against the sandbox over HTTPS: page tokens, incremental pulls with
deletions, COQL windows past Zoho's 10,000-row reach, refresh tokens, 429s, and an upsert that
never creates a record twice."""

import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.fernet import Fernet

from crm_pipelines.crms.base import Write
from crm_pipelines.crms.zoho.client import ZohoAuthError, ZohoClient, ZohoResource
from crm_pipelines.crms.zoho import emulator as zoho
from crm_pipelines.sandbox.faults import FaultRule
from crm_pipelines.crms.zoho.emulator.api import ID_BASE

START = datetime(2025, 3, 1, tzinfo=timezone.utc)
CONTACTS = f"{zoho.API}/Contacts"


def client(sandbox, **settings) -> ZohoClient:
    """A client holding a live access token, the sandbox's counters zeroed after it got one
    (clients share tokens, and a reset sandbox no longer takes an earlier test's)."""
    made = ZohoResource(client_id=zoho.CLIENT_ID, client_secret=zoho.CLIENT_SECRET,
                        refresh_token=zoho.REFRESH_TOKEN, accounts_url=sandbox.base_url, api_domain=sandbox.base_url,
                        ca_bundle=str(sandbox.tls.ca_bundle), **settings).client()
    made.rest.request("GET", f"{zoho.API}/users")
    sandbox.ctx.stats.reset()
    return made


def contacts(sandbox, n: int, step: timedelta = timedelta(minutes=1)) -> list[str]:
    """``n`` contacts modified ``step`` apart from START (stored directly: seeding 12,000 through
    insert would re-scan the ids each time)."""
    return [sandbox.ctx.store.create("zoho", "Contacts", str(ID_BASE + 1 + i), {"Last_Name": str(i)},
                                     at=START + i * step).id for i in range(n)]


def calls(sandbox, method: str, endpoint: str) -> int:
    return sandbox.ctx.stats.calls[("zoho", method, endpoint)]


def test_a_full_pull_walks_page_tokens_past_two_thousand_records(sandbox) -> None:
    contacts(sandbox, 2100)
    result = client(sandbox).pull("contacts", None, None)
    assert sorted(result.records["last_name"].astype(int)) == list(range(2100))
    assert result.pages == 11 == calls(sandbox, "GET", CONTACTS)
    assert result.cursor == START + timedelta(minutes=2099)


def test_an_incremental_pull_lists_changes_since_the_cursor_and_reads_deletions(sandbox) -> None:
    ids = contacts(sandbox, 30)
    crm = client(sandbox)
    since = datetime.now(timezone.utc) - timedelta(seconds=5)
    crm.rest.request("PUT", f"{zoho.API}/Contacts", json={"data": [{"id": ids[3], "Title": "CFO"}]})
    crm.rest.request("DELETE", f"{zoho.API}/Contacts/{ids[4]}")
    result = crm.pull("contacts", since, None)
    by_id = result.records.set_index("crm_id")
    assert sorted(by_id.index) == sorted([ids[3], ids[4]]), "only what changed since the cursor"
    assert by_id.loc[ids[3], "job_title"] == "CFO" and not by_id.loc[ids[3], "is_deleted"]
    assert bool(by_id.loc[ids[4], "is_deleted"])
    assert calls(sandbox, "GET", f"{zoho.API}/Contacts/deleted") == 1
    assert result.api_calls <= 4, "the fields, one page of changes, one of deletions"


def test_a_backfill_window_is_a_coql_walk_that_restarts_past_the_ten_thousandth_row(sandbox) -> None:
    contacts(sandbox, 12_500, step=timedelta(seconds=1))
    since, until = START + timedelta(seconds=100), START + timedelta(seconds=12_200)
    result = client(sandbox).pull("contacts", since, until)
    assert sorted(result.records["last_name"].astype(int)) == list(range(100, 12_200))
    queries = calls(sandbox, "POST", f"{zoho.API}/coql")
    assert queries >= 7 and result.pages == queries + 1, "and one page of deletions"


def test_an_expired_access_token_is_renewed_once_and_a_live_one_is_reused(sandbox) -> None:
    contacts(sandbox, 5)
    crm = client(sandbox, page_size=2)
    crm.pull("contacts", None, None)
    ZohoResource(client_id=zoho.CLIENT_ID, client_secret=zoho.CLIENT_SECRET, refresh_token=zoho.REFRESH_TOKEN,
                 accounts_url=sandbox.base_url, api_domain=sandbox.base_url,
                 ca_bundle=str(sandbox.tls.ca_bundle)).client().pull("contacts", None, None)
    assert calls(sandbox, "POST", zoho.TOKEN_PATH) == 0, "one token for every page and every client"
    zoho.expire_tokens(sandbox.ctx)
    assert len(crm.pull("contacts", None, None).records) == 5
    assert calls(sandbox, "POST", zoho.TOKEN_PATH) == 1 and sandbox.ctx.stats.statuses[("zoho", 401)] == 1


def test_a_refused_refresh_token_says_what_to_set_and_never_shows_the_token(sandbox) -> None:
    stolen = "1000.not-the-right-refresh-token"
    resource = ZohoResource(client_id=zoho.CLIENT_ID, client_secret=zoho.CLIENT_SECRET, refresh_token=stolen,
                            accounts_url=sandbox.base_url, api_domain=sandbox.base_url,
                            ca_bundle=str(sandbox.tls.ca_bundle))
    with pytest.raises(ZohoAuthError) as refused:
        resource.client().describe("contacts")
    assert "ZOHO_REFRESH_TOKEN" in str(refused.value) and "invalid_code" in str(refused.value)
    assert stolen not in str(refused.value)


def test_a_429_is_retried_and_the_pull_completes(sandbox) -> None:
    contacts(sandbox, 3)
    crm = client(sandbox)
    sandbox.ctx.faults.add(FaultRule(crm="zoho", endpoint=CONTACTS, method="GET", status=429, times=2))
    result = crm.pull("contacts", None, None)
    assert len(result.records) == 3 and calls(sandbox, "GET", CONTACTS) == 3


def test_latest_change_is_one_coql_row(sandbox) -> None:
    contacts(sandbox, 10)
    crm = client(sandbox)
    assert crm.latest_change("contacts", None) == START + timedelta(minutes=9)
    assert crm.latest_change("contacts", START + timedelta(minutes=9)) is None
    assert sandbox.ctx.stats.records[("zoho", "POST", f"{zoho.API}/coql")] == 1


def test_describe_names_the_unique_enginy_id_and_zohos_types(sandbox) -> None:
    described = {f.name: f for f in client(sandbox).describe("companies")}
    assert described["Enginy_Id"].external_id and described["Enginy_Id"].unique
    assert described["Website"].type == "url" and described["Employees"].type == "integer"
    assert described["Account_Name"].required and not described["Modified_Time"].updateable


def write(n: int, **fields) -> Write:
    return Write(f"w{n}", "create", f"enginy-{n}", {"Last_Name": f"Okafor {n}", **fields})


def test_creates_are_upserts_on_the_enginy_id_so_sending_them_again_updates(sandbox) -> None:
    account = zoho.insert(sandbox.ctx, "Accounts", {"Account_Name": "Acme"}).id
    crm = client(sandbox)
    writes = [Write(f"w{i}", "create", f"enginy-{i}", {"Last_Name": f"L{i}"}, company_id=account)
              for i in range(150)]
    first = crm.push("contacts", writes)
    assert {r.status for r in first} == {"created"} and calls(sandbox, "POST", f"{zoho.API}/Contacts/upsert") == 2
    again = crm.push("contacts", writes)
    assert {r.status for r in again} == {"updated"} and [r.crm_id for r in again] == [r.crm_id for r in first]
    stored = sandbox.ctx.store.records("zoho", "Contacts")
    assert len(stored) == 150 and all(r.fields["Account_Name"] == account for r in stored)


def test_a_lost_upsert_answer_is_sent_again_and_still_makes_one_record(sandbox) -> None:
    crm = client(sandbox)
    sandbox.ctx.faults.add(FaultRule(crm="zoho", endpoint=f"{zoho.API}/Contacts/upsert", kind="drop", nth=1))
    [result] = crm.push("contacts", [write(1)])
    assert result.status == "updated", "the second upsert found what the first one made"
    [record] = sandbox.ctx.store.records("zoho", "Contacts", include_deleted=True)
    assert [c.op for c in record.history] == ["create", "update"]


def test_refused_records_are_rejected_with_zohos_code_and_field_and_the_rest_written(sandbox) -> None:
    gone = zoho.insert(sandbox.ctx, "Contacts", {"Last_Name": "Gone"}).id
    sandbox.ctx.store.delete("zoho", "Contacts", gone)
    crm = client(sandbox)
    results = crm.push("contacts", [write(1), write(2, Email="not-an-email"), Write("w3", "create", "enginy-3", {}),
                                    Write("w4", "update", "enginy-4", {"Title": "CEO"}, crm_id=gone)])
    by_id = {r.write_id: r for r in results}
    assert by_id["w1"].status == "created"
    assert (by_id["w2"].status, by_id["w2"].error_code, by_id["w2"].error) == ("rejected", "INVALID_DATA",
                                                                                "invalid data (Email)")
    assert by_id["w3"].error_code == "MANDATORY_NOT_FOUND" and "Last_Name" in by_id["w3"].error
    assert (by_id["w4"].status, by_id["w4"].error_code) == ("rejected", "NOT_FOUND")


def test_processes_share_access_tokens_through_the_encrypted_token_file(sandbox, tmp_path) -> None:
    """Steps of a multiprocess run each build a client in their own process: with a token file
    they buy one token between them, which Zoho's ten-in-ten-minutes limit needs."""
    zoho.insert(sandbox.ctx, "Contacts", {"Last_Name": "Shared"})
    key = Fernet.generate_key().decode()
    step = (
        "import sys; from crm_pipelines.crms.zoho.client import ZohoResource; "
        "c = ZohoResource(client_id=sys.argv[1], client_secret=sys.argv[2], refresh_token=sys.argv[3], "
        "accounts_url=sys.argv[4], api_domain=sys.argv[4], ca_bundle=sys.argv[5], token_cache_path=sys.argv[6], "
        "token_cache_key=sys.argv[7]).client(); print(len(c.pull('contacts', None, None).records))")
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", step, zoho.CLIENT_ID, zoho.CLIENT_SECRET, zoho.REFRESH_TOKEN,
                               sandbox.base_url, str(sandbox.tls.ca_bundle), str(tmp_path / "zoho.tokens"), key],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stdout.strip() == "1", done.stderr[-2000:]
    assert calls(sandbox, "POST", zoho.TOKEN_PATH) == 1
    assert zoho.REFRESH_TOKEN.encode() not in (tmp_path / "zoho.tokens").read_bytes()
