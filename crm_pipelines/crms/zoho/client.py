"""Zoho CRM through its API v7 and OAuth 2.0 refresh tokens (crm_pipelines.crms.wire.rest).

Contacts are our contacts, Accounts our companies, Leads our leads. A refresh token (a
self-client's, from the API console) buys short-lived access tokens from the accounts server of
the org's data centre; a token is reused until it expires or Zoho answers ``INVALID_TOKEN``,
then renewed once — the accounts server grants only ten tokens every ten minutes, so clients
share them: in the process, and across processes through an encrypted token file.

Pulls: a first (or full) pull and an incremental one list the module sorted by
``Modified_Time`` — the incremental one with ``If-Modified-Since`` — and walk its
``page_token``s; an incremental or backfill pull also reads the module's deleted records. A
bounded window (a backfill) is a COQL query walked by ``Modified_Time``: COQL returns at most
2,000 rows a query and none past the 10,000th, so when a window holds more the walk starts a new
query at the last time seen. ``latest_change`` is one COQL row.

Push: creates are upserts with ``duplicate_check_fields`` on the Enginy id field (a unique
custom field), 100 records a call, so sending a create again — after a lost answer, a crash or
a re-run — updates the record the first one made instead of making another. Updates are sent by
id, 100 a call. Zoho answers each record on its own; a refused record is rejected with Zoho's
code and the field it names.
"""

import fcntl
import hashlib
import json
import os
import re
import threading
import time
from contextlib import contextmanager, nullcontext
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
from cryptography.fernet import Fernet, InvalidToken
from pydantic import Field

from crm_pipelines.canonical import CrmCompany, CrmContact, CrmUser, empty
from crm_pipelines.crms.base import (
    PROGRESS_EVERY, CrmField, CrmObject, CrmResource, Progress, PullResult, Write, WriteResult,
)
from crm_pipelines.crms.wire.rest import BearerToken, CursorPaging, PageNumberPaging, RestClient, RestError
from crm_pipelines.crms.wire.query_literals import coql_string
from crm_pipelines.crms.wire.retries import TransientCrmError
from crm_pipelines.progress import Reading

API = "/crm/v7"
MODULES = {"contacts": "Contacts", "companies": "Accounts", "leads": "Leads"}
# Zoho data types → the type names crm_pipelines.export.values knows.
TYPES = {"text": "string", "textarea": "textarea", "email": "email", "phone": "phone", "website": "url",
         "picklist": "picklist", "multiselectpicklist": "multipicklist", "integer": "integer", "bigint": "integer",
         "double": "double", "decimal": "double", "currency": "currency", "boolean": "boolean", "date": "date",
         "datetime": "datetime", "lookup": "reference", "ownerlookup": "owner", "autonumber": "string"}
WRITE_BATCH = 100  # records an upsert or update takes
LIST_FIELDS = 50  # fields a list call may name
COQL_ROWS, COQL_REACH = 2000, 10_000
_API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class ZohoAuthError(RuntimeError):
    """The accounts server refused the refresh token or the client: reconnect the integration."""


# Access tokens by (accounts server, client, refresh token) digest, shared by every client in the
# process: each asset builds its own client, and Zoho grants only ten tokens every ten minutes.
# Steps in other processes (the multiprocess executor, the sensor's runs) share them through the
# token file when one is configured.
_TOKENS: dict[str, tuple[str, float]] = {}  # digest → (access token, time.time() it stops being used)
_TOKENS_LOCK = threading.Lock()


class TokenFile:
    """Access tokens on disk for other processes, Fernet-encrypted; flock keeps two processes
    from buying at once."""

    def __init__(self, path: str, key: str) -> None:
        self.path = Path(path)
        try:
            self.fernet = Fernet(key.encode())
        except (ValueError, TypeError):
            raise ValueError("ZOHO_TOKEN_CACHE_KEY must be a Fernet key — fix: set it to the output of `python "
                             "-c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"
                             ) from None

    @contextmanager
    def locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def read(self) -> dict[str, list[Any]]:
        try:
            return json.loads(self.fernet.decrypt(self.path.read_bytes()))
        except (FileNotFoundError, InvalidToken, ValueError):
            return {}  # none yet, or written with another key: buy one

    def write(self, entries: dict[str, list[Any]]) -> None:
        now = time.time()
        kept = {k: v for k, v in entries.items() if v[1] > now}
        temporary = self.path.with_suffix(".tmp")
        temporary.write_bytes(self.fernet.encrypt(json.dumps(kept).encode()))
        os.chmod(temporary, 0o600)
        temporary.replace(self.path)


class ZohoTokens:
    """Access tokens bought with the refresh token, kept until they expire or are refused."""

    def __init__(self, settings: "ZohoResource") -> None:
        self.settings = settings
        self.accounts = RestClient(settings.accounts_url, verify=settings.ca_bundle or None,
                                   name="Zoho's accounts server")
        self.key = hashlib.sha256("\n".join((settings.accounts_url, settings.client_id,
                                              settings.refresh_token)).encode()).hexdigest()
        self.file = TokenFile(settings.token_cache_path, settings.token_cache_key) \
            if settings.token_cache_path else None
        self._used: str | None = None

    def _held(self) -> tuple[str, float] | None:
        with _TOKENS_LOCK:
            held = _TOKENS.get(self.key)
        if (held is None or held[1] <= time.time()) and self.file is not None:
            entry = self.file.read().get(self.key)
            held = (entry[0], entry[1]) if entry else None
        return held if held is not None and held[1] > time.time() else None

    def token(self) -> str:
        held = self._held()
        if held is None:
            self.refresh()
            held = self._held()
        self._used = held[0] if held else None
        return self._used or ""

    def refresh(self) -> None:
        """Buy a token, unless another client already replaced the one this client last used."""
        with _TOKENS_LOCK, (self.file.locked() if self.file is not None else nullcontext()):
            held = _TOKENS.get(self.key)
            if self.file is not None:
                entry = self.file.read().get(self.key)
                held = (entry[0], entry[1]) if entry else held
            if held is not None and held[0] != self._used and held[1] > time.time():
                _TOKENS[self.key] = held
                return
            # A form body, so the refresh token and secret never sit in a URL a log could print.
            answer = self.accounts.request("POST", "/oauth/v2/token", idempotent=True, data={
                "grant_type": "refresh_token", "client_id": self.settings.client_id,
                "client_secret": self.settings.client_secret, "refresh_token": self.settings.refresh_token})
            if not isinstance(answer, dict) or "access_token" not in answer:
                # Zoho answers a refused refresh 200 with an error code; name it, never the token.
                code = answer.get("error") if isinstance(answer, dict) else "no token"
                raise ZohoAuthError(f"Zoho's accounts server refused the refresh token ({code}): generate a new "
                                    "one for the integration and set ZOHO_REFRESH_TOKEN (and ZOHO_ACCOUNTS_URL for "
                                    "the org's data centre)")
            # Given up a minute early rather than spend a call on a 401.
            _TOKENS[self.key] = (answer["access_token"], time.time() + max(0, int(answer.get("expires_in", 3600)) - 60))
            if self.file is not None:
                self.file.write({**self.file.read(), self.key: list(_TOKENS[self.key])})


def _time(value: Any) -> pd.Timestamp | None:
    if not value:
        return None
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).replace(microsecond=0).isoformat()


def _ref(value: Any) -> str | None:
    """A lookup as Zoho answers it ({id, name}) or as COQL does ({id}) → its id."""
    if isinstance(value, dict):
        value = value.get("id")
    return None if value in (None, "") else str(value)


class ZohoClient:
    """The CrmClient for one Zoho CRM org."""

    crm = "zoho"

    def __init__(self, settings: "ZohoResource") -> None:
        self.settings = settings
        self.tokens = ZohoTokens(settings)
        self.rest = RestClient(settings.api_domain, BearerToken(self.tokens.token, self.tokens.refresh,
                                                                scheme="Zoho-oauthtoken"),
                               verify=settings.ca_bundle or None, name="Zoho CRM")
        self.progress: Progress = lambda message: None
        self._fields: dict[str, list[dict[str, Any]]] = {}

    # --- fields -----------------------------------------------------------------------------
    def _field_defs(self, module: str) -> list[dict[str, Any]]:
        if module not in self._fields:
            answer = self.rest.request("GET", f"{API}/settings/fields", params={"module": module})
            self._fields[module] = list((answer or {}).get("fields") or [])
        return self._fields[module]

    def _module(self, obj: str) -> str:
        if obj not in MODULES:
            raise LookupError(f"Zoho CRM has no {obj} module")
        return MODULES[obj]

    def describe(self, obj: CrmObject) -> list[CrmField]:
        fields = []
        for f in self._field_defs(self._module(obj)):
            writable = not (f.get("read_only") or f.get("field_read_only"))
            options = f.get("pick_list_values") or []
            name = f["api_name"]
            fields.append(CrmField(
                name=name, label=f.get("field_label") or name, type=TYPES.get(f.get("data_type"), "string"),
                createable=writable, updateable=writable, required=bool(f.get("system_mandatory")),
                options=tuple(str(o["actual_value"]) for o in options),
                option_labels=tuple(str(o["display_value"]) for o in options),
                unique=bool(f.get("unique")), external_id=name == self.settings.enginy_id_field))
        return fields

    def _list_fields(self, module: str) -> list[str]:
        """The fields a pull asks for: the canonical ones first, then the rest, up to Zoho's 50."""
        names = [f["api_name"] for f in self._field_defs(module) if f["api_name"] != "id"]
        first = ["Modified_Time", "Owner", "First_Name", "Last_Name", "Email", "Phone", "Title", "Designation",
                 "Company", "Account_Name", "Website", self.settings.linkedin_field, self.settings.enginy_id_field]
        ordered = [n for n in first if n in names] + [n for n in names if n not in first]
        return [n for n in ordered if _API_NAME.match(n)][:LIST_FIELDS]

    # --- pulls ------------------------------------------------------------------------------
    def pull(self, obj: CrmObject, since: datetime | None, until: datetime | None,
             state: dict[str, Any] | None = None) -> PullResult:
        calls_before = self.rest.api_calls
        if obj == "users":
            return PullResult(self.users(), None, api_calls=self.rest.api_calls - calls_before, pages=1)
        module = self._module(obj)
        fields = self._list_fields(module)
        if until is None:
            rows, pages = self._listed(module, fields, since)
        else:
            rows, pages = self._queried(module, fields, since, until)
        gone: list[dict[str, Any]] = []
        if since is not None:
            gone, more = self._deleted(module, since, until)
            pages += more
        records = self._canonical(obj, rows, gone)
        live = records.loc[~records["is_deleted"], "last_modified"]
        cursor = live.max() if len(live) else None
        return PullResult(records, None if cursor is None or pd.isna(cursor) else cursor.to_pydatetime(),
                          api_calls=self.rest.api_calls - calls_before, pages=pages)

    def _listed(self, module: str, fields: list[str], since: datetime | None) -> tuple[list[dict[str, Any]], int]:
        params = {"fields": ",".join(fields), "sort_by": "Modified_Time", "sort_order": "asc"}
        # If-Modified-Since is strict (modified after); a second earlier keeps [since, …).
        headers = {"If-Modified-Since": _iso(since - timedelta(seconds=1))} if since is not None else None
        paging = CursorPaging(records="data", next_cursor="info.next_page_token", cursor_param="page_token",
                              limit_param="per_page", limit=self.settings.page_size)
        rows: list[dict[str, Any]] = []
        pages = 0
        reading = Reading(self.progress, module, every=PROGRESS_EVERY)
        for pages, page in enumerate(self.rest.pages(f"{API}/{module}", paging, params, headers=headers), start=1):
            rows.extend(page.records)
            reading.page(len(rows), pages)
        return rows, pages

    def _queried(self, module: str, fields: list[str], since: datetime | None,
                 until: datetime) -> tuple[list[dict[str, Any]], int]:
        """Records modified in [since, until) by COQL, restarting at the last time seen whenever
        a query would reach past Zoho's 10,000th row."""
        rows: dict[str, dict[str, Any]] = {}
        pages, low = 0, since
        reading = Reading(self.progress, module, every=PROGRESS_EVERY)
        while True:
            where = f"Modified_Time < {coql_string(_iso(until))}"
            if low is not None:
                where = f"(Modified_Time >= {coql_string(_iso(low))} and {where})"
            offset, restart = 0, None
            while restart is None:
                query = (f"select {', '.join(fields)} from {module} where {where} "
                         f"order by Modified_Time asc, id asc limit {offset}, {COQL_ROWS}")
                answer = self.rest.request("POST", f"{API}/coql", json={"select_query": query}, idempotent=True)
                pages += 1
                page = (answer or {}).get("data") or []
                rows.update((str(r["id"]), r) for r in page)
                reading.page(len(rows), pages)
                if not page or not answer["info"].get("more_records"):
                    return list(rows.values()), pages
                offset += COQL_ROWS
                if offset + COQL_ROWS > COQL_REACH:
                    restart = _time(page[-1]["Modified_Time"])
            if low is not None and restart <= _time(low):
                raise TransientCrmError(None, f"Zoho CRM: more than {COQL_REACH:,} {module} share the modification "
                                              f"time {restart}; COQL cannot page past them")
            low = restart.to_pydatetime()

    def _deleted(self, module: str, since: datetime, until: datetime | None) -> tuple[list[dict[str, Any]], int]:
        paging = PageNumberPaging(records="data", size=200, has_more="info.more_records")
        headers = {"If-Modified-Since": _iso(since - timedelta(seconds=1))}
        gone, pages = [], 0
        for pages, page in enumerate(self.rest.pages(f"{API}/{module}/deleted", paging, {"type": "all"},
                                                     headers=headers), start=1):
            gone.extend(r for r in page.records if until is None or _time(r.get("deleted_time")) < _time(until))
        return gone, pages

    def _canonical(self, obj: str, rows: list[dict[str, Any]], gone: list[dict[str, Any]]) -> pd.DataFrame:
        model = CrmCompany if obj == "companies" else CrmContact
        removed = {str(g["id"]): g for g in gone}
        rows = [r for r in rows if str(r["id"]) not in removed]
        if not rows and not removed:
            return empty(model)
        raw = [{k: (_ref(v) if isinstance(v, dict) else v) for k, v in r.items()} for r in rows]

        def col(name: str) -> list[Any]:
            return [r.get(name) for r in raw] + [None] * len(removed)

        common = {"crm_id": [str(r["id"]) for r in rows] + list(removed),
                  "owner_id": col("Owner"),
                  "last_modified": pd.to_datetime([r.get("Modified_Time") for r in rows]
                                                  + [g.get("deleted_time") for g in removed.values()], utc=True),
                  "is_deleted": [False] * len(rows) + [True] * len(removed),
                  "raw": raw + [{} for _ in removed]}
        if obj == "companies":
            return CrmCompany.validate(pd.DataFrame({
                **common, "name": col("Account_Name"), "domain": col("Website"),
                "linkedin_url": col(self.settings.linkedin_field)}))
        names = [r.get("Account_Name", {}).get("name") if isinstance(r.get("Account_Name"), dict) else None
                 for r in rows]
        return CrmContact.validate(pd.DataFrame({
            **common, "first_name": col("First_Name"), "last_name": col("Last_Name"),
            "company_name": (col("Company") if obj == "leads" else names + [None] * len(removed)),
            "email": col("Email"), "linkedin_url": col(self.settings.linkedin_field), "phone": col("Phone"),
            "job_title": col("Designation" if obj == "leads" else "Title"),
            "account_id": col("Account_Name") if obj == "contacts" else [None] * (len(rows) + len(removed))}))

    def latest_change(self, obj: CrmObject, since: datetime | None) -> datetime | None:
        if obj not in MODULES:
            return None
        where = "id is not null" if since is None else f"Modified_Time > {coql_string(_iso(since))}"
        answer = self.rest.request("POST", f"{API}/coql", idempotent=True, json={
            "select_query": f"select Modified_Time from {MODULES[obj]} where {where} "
                            "order by Modified_Time desc limit 1"})
        rows = (answer or {}).get("data") or []
        return _time(rows[0]["Modified_Time"]).to_pydatetime() if rows else None

    def users(self) -> pd.DataFrame:
        paging = PageNumberPaging(records="users", size=200, has_more="info.more_records")
        users = [u for page in self.rest.pages(f"{API}/users", paging, {"type": "AllUsers"}) for u in page.records]
        return CrmUser.validate(pd.DataFrame({
            "crm_id": [str(u["id"]) for u in users], "email": [u.get("email") for u in users],
            "first_name": [u.get("first_name") for u in users], "last_name": [u.get("last_name") for u in users],
            "is_active": [u.get("status") == "active" for u in users], "raw": users}))

    @property
    def api_calls(self) -> int:
        return self.rest.api_calls

    # --- push -------------------------------------------------------------------------------
    @property
    def enginy_id_field(self) -> str:
        """The unique custom field holding Enginy's id: creates upsert on it."""
        return self.settings.enginy_id_field

    def push(self, obj: CrmObject, writes: list[Write]) -> list[WriteResult]:
        if obj not in MODULES:
            return [WriteResult(w.write_id, "rejected", error=f"Zoho CRM has no {obj} module") for w in writes]
        module = MODULES[obj]
        results: list[WriteResult] = []
        for action in ("create", "update"):
            chosen = [w for w in writes if w.action == action]
            for start in range(0, len(chosen), WRITE_BATCH):
                results += self._send(module, obj, chosen[start:start + WRITE_BATCH])
                if (start // WRITE_BATCH + 1) % PROGRESS_EVERY == 0:
                    self.progress(f"{obj}: {start + WRITE_BATCH:,} of {len(chosen):,} {action}s sent")
        return results

    def _send(self, module: str, obj: str, batch: list[Write]) -> list[WriteResult]:
        creating = batch[0].action == "create"
        data = [self._record(obj, w) for w in batch]
        try:
            if creating:
                # An upsert on the Enginy id is safe to send again: Zoho updates what it finds.
                answer = self.rest.request("POST", f"{API}/{module}/upsert", idempotent=True, json={
                    "data": data, "duplicate_check_fields": [self.settings.enginy_id_field], "trigger": []})
            else:
                answer = self.rest.request("PUT", f"{API}/{module}", json={"data": data, "trigger": []})
        except RestError as error:
            if error.status in (401, 403):
                raise
            if isinstance(error.body, dict) and isinstance(error.body.get("data"), list):
                answer = error.body  # every record refused: Zoho says why, record by record
            else:
                return [WriteResult(w.write_id, "rejected", error=error.message,
                                    error_code=str(error.body.get("code") if isinstance(error.body, dict)
                                                   else error.status)) for w in batch]
        except TransientCrmError as error:  # retries spent: the next run sends them again
            return [WriteResult(w.write_id, "failed", error=str(error)) for w in batch]
        return [self._result(w, entry) for w, entry in zip(batch, answer.get("data") or [])]

    @staticmethod
    def _result(write: Write, entry: dict[str, Any]) -> WriteResult:
        if entry.get("status") == "success":
            created = entry.get("action") == "insert"
            return WriteResult(write.write_id, "created" if created else "updated",
                               str(entry.get("details", {}).get("id") or write.crm_id))
        details = entry.get("details") or {}
        where = f" ({details['api_name']})" if details.get("api_name") else ""
        code = entry.get("code") or "ERROR"
        if code == "INVALID_DATA" and details.get("api_name") == "id":
            return WriteResult(write.write_id, "rejected", error="the record no longer exists in Zoho CRM",
                               error_code="NOT_FOUND")
        return WriteResult(write.write_id, "rejected", error=f"{entry.get('message')}{where}", error_code=code)

    def _record(self, obj: str, write: Write) -> dict[str, Any]:
        record = dict(write.fields)
        if write.action == "create":
            record[self.settings.enginy_id_field] = write.enginy_id
        else:
            record["id"] = write.crm_id
        if write.owner_id:
            record["Owner"] = {"id": write.owner_id}
        if write.company_id and obj == "contacts":
            record["Account_Name"] = {"id": write.company_id}
        return record


class ZohoResource(CrmResource):
    """A Zoho CRM org through a self-client's refresh token."""

    client_id: str = Field(description="the client id of the API console's self client; bind with EnvVar")
    client_secret: str = Field(description="its client secret; bind with EnvVar")
    refresh_token: str = Field(description="a refresh token with scopes ZohoCRM.modules.ALL, ZohoCRM.settings.ALL, "
                                           "ZohoCRM.users.READ, ZohoCRM.coql.READ; bind with EnvVar")
    accounts_url: str = Field("https://accounts.zoho.com", description="the accounts server of the org's data centre "
                                                                       "(accounts.zoho.eu, accounts.zoho.in, …)")
    api_domain: str = Field("https://www.zohoapis.com", description="the API domain of the org's data centre")
    ca_bundle: str = Field("", description="CA file to trust (a local sandbox); empty: the system's")
    enginy_id_field: str = Field("Enginy_Id", description="API name of the unique custom field holding Enginy's id on "
                                                          "Contacts, Accounts and Leads")
    linkedin_field: str = Field("LinkedIn", description="API name of the field with the LinkedIn URL")
    page_size: int = Field(200, ge=1, le=200, description="records a page (Zoho's ceiling is 200)")
    token_cache_path: str = Field("", description="a file where processes share access tokens, encrypted; empty: "
                                                  "each process buys its own")
    token_cache_key: str = Field("", description="Fernet key for the token file; bind with EnvVar")

    def client(self) -> ZohoClient:
        return ZohoClient(self)
