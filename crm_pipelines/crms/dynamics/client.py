"""Microsoft Dynamics 365: msal for OAuth 2.0 client credentials, requests for the Dataverse Web API.

Tokens come from msal's cache and are renewed before they expire; the cache is persisted
encrypted (Fernet, key from an environment variable) so no token is ever on disk in clear
text. When Entra ID refuses the app (secret expired, consent revoked, app disabled) the pull
fails with ``ReconnectRequired``, whose message starts "reconnect Dynamics:" for the alerts.
Deletions come from Dataverse change tracking: the delta link is the incremental state.
"""

import email
import json
import logging
import re
import threading
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlencode

import msal
import pandas as pd
import requests
from cryptography.fernet import Fernet, InvalidToken
from pydantic import Field

from crm_pipelines.canonical import CrmCompany, CrmContact, CrmUser
from crm_pipelines.export.writes import Activity
from crm_pipelines.crms.wire.activity_writes import clip
from crm_pipelines.crms.base import (
    PROGRESS_EVERY, CrmField, CrmObject, CrmResource, Progress, PullResult, Write, WriteResult, push_in_parallel,
)
from crm_pipelines.crms.wire.query_literals import odata_string
from crm_pipelines.crms.wire.retries import TRANSIENT_STATUSES, TransientCrmError, retry_after_seconds, with_retries
from crm_pipelines.progress import Reading

ENTITY_SETS = {"contacts": ("contacts", "contactid", "contact"), "companies": ("accounts", "accountid", "account"),
               "leads": ("leads", "leadid", "lead"), "users": ("systemusers", "systemuserid", "systemuser")}

# A completed task: statecode Completed with its status reason Completed.
TASK_COMPLETED = {"statecode": 1, "statuscode": 5}
SUBJECT_LENGTH, DESCRIPTION_LENGTH = 200, 2000
# Keys per look-up query: an OData filter of equalities joined by "or" stays short.
LOOKUP_KEYS = 25
# A String column's FormatName → the type it is described as (the export checks values by kind).
TEXT_FORMATS = {"Email": "email", "Url": "url"}
DUPLICATE_KEY = "0x80040237"
logger = logging.getLogger(__name__)


def _batch_answers(response: requests.Response) -> list[tuple[int, dict[str, Any]]]:
    """(status, JSON body) of each operation of a $batch answer, in order."""
    message = email.message_from_bytes(
        f"Content-Type: {response.headers['Content-Type']}\r\n\r\n".encode() + response.content)
    answers = []
    for part in message.get_payload():
        text = part.get_payload(decode=True).decode()
        head, _, body = text.replace("\r\n", "\n").partition("\n\n")
        status = int(head.split("\n", 1)[0].split()[1])
        try:
            answers.append((status, json.loads(body) if body.strip() else {}))
        except ValueError:
            answers.append((status, {}))
    return answers


# Entra ID's answers that pass: its service unavailable, and AADSTS50196, its throttle on an app
# asking for tokens too often.
ENTRA_TRANSIENT = {"temporarily_unavailable", "server_error"}
ENTRA_THROTTLED = {50196}
# How long msal answers a token request Entra ID throttled or failed (429, 5xx) from its own cache
# when Entra sent no Retry-After (msal's default for a confidential client's app).
MSAL_REPLAY_SECONDS = 5.0


class EntraSession(requests.Session):
    """msal's HTTP client, which notes how long msal will replay a token request's 429 or 5xx
    from its cache (Entra's Retry-After, else MSAL_REPLAY_SECONDS): a retry sooner gets the same
    answer without reaching Entra, and six of them in a few seconds failed the run."""

    def __init__(self) -> None:
        super().__init__()
        self.replayed_for: float | None = None  # None: the last token request was answered

    def post(self, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 60)
        response = super().post(url, *args, **kwargs)
        throttled = response.status_code == 429 or response.status_code >= 500
        waited = retry_after_seconds(response.headers.get("Retry-After")) if throttled else None
        self.replayed_for = (MSAL_REPLAY_SECONDS if waited is None else waited) if throttled else None
        return response


class ReconnectRequired(RuntimeError):
    """The CRM no longer accepts the stored grant; a person must reconnect the integration."""


class DataverseError(RuntimeError):
    """The Web API refused a request for good (not a throttle or an outage): its status and code."""

    def __init__(self, status: int, code: str, message: str, text: str) -> None:
        super().__init__(text)
        self.status, self.code, self.message = status, code, message


class EncryptedTokenCache(msal.SerializableTokenCache):
    """msal's token cache, persisted with Fernet encryption at rest."""

    def __init__(self, path: Path, key: str) -> None:
        super().__init__()
        self.path = path
        try:
            self._fernet = Fernet(key.encode())
        except (ValueError, TypeError):
            raise ValueError("the token cache key must be a Fernet key (32 url-safe base64 bytes) — fix: set it to "
                             "the output of `python -c 'from cryptography.fernet import Fernet; "
                             "print(Fernet.generate_key().decode())'`") from None
        if path.exists():
            try:
                self.deserialize(self._fernet.decrypt(path.read_bytes()).decode())
            except InvalidToken:
                # A cache written with another key is useless, not fatal: start empty.
                pass

    def persist(self) -> None:
        if self.has_state_changed:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_bytes(self._fernet.encrypt(self.serialize().encode()))
            self.has_state_changed = False


class DynamicsClient:
    """The CrmClient for one Dataverse environment."""

    crm = "dynamics"

    def __init__(self, settings: "DynamicsResource") -> None:
        self.settings = settings
        self.environment_url = settings.environment_url.rstrip("/")
        self.api = f"{self.environment_url}/api/data/{settings.api_version}"
        self.cache = (EncryptedTokenCache(Path(settings.token_cache_path), settings.token_cache_key)
                      if settings.token_cache_path else msal.SerializableTokenCache())
        self.entra = EntraSession()
        self.app = with_retries(self._entra_app)
        self.session = requests.Session()
        # A push sends several $batch requests at once: the call count and the token cache
        # (kept in a file when configured) are shared under a lock.
        self._lock = threading.Lock()
        self.api_calls = 0
        self.progress: Progress = lambda message: None
        self._change_tracking: dict[str, bool] = {}  # logical name → ChangeTrackingEnabled

    # --- auth ------------------------------------------------------------------------------
    def _entra_app(self) -> msal.ConfidentialClientApplication:
        """msal's app, which asks Entra ID for the tenant's OpenID configuration as it is made: a
        dropped connection, a 429 or a 5xx there is tried again like any other call."""
        s = self.settings
        try:
            return msal.ConfidentialClientApplication(
                s.client_id, client_credential=s.client_secret,
                authority=f"{s.authority_host.rstrip('/')}/{s.tenant_id}", token_cache=self.cache,
                instance_discovery=False, http_client=self.entra)
        except (msal.exceptions.MsalServiceError, ValueError) as exc:
            # msal gives no status but in its message: "HTTP Error: 503", "… HTTP status: 429, …";
            # a 4xx's comes in the error its "Unable to get authority configuration" was raised from.
            found = re.search(r"HTTP (?:Error|status): (\d{3})", f"{exc} {exc.__context__}")
            status = int(found.group(1)) if found else None
            if status not in TRANSIENT_STATUSES:
                raise
            raise TransientCrmError(status, f"Entra ID's tenant discovery answered {status}") from exc

    def _token(self) -> str:
        with self._lock:
            result = self.app.acquire_token_for_client([f"{self.environment_url}/.default"])
            if isinstance(self.cache, EncryptedTokenCache):
                self.cache.persist()
            replayed_for = self.entra.replayed_for
        if "access_token" not in result:
            reason = (result.get("error_description") or result.get("error") or "no token").splitlines()[0]
            if result.get("error") in ENTRA_TRANSIENT or ENTRA_THROTTLED & set(result.get("error_codes") or ()):
                # Entra ID is down or throttling token requests: tried again, not a reconnect.
                raise TransientCrmError(
                    None, f"Entra ID did not issue a token for now ({result.get('error')}): {reason}", replayed_for)
            raise ReconnectRequired(f"reconnect Dynamics: Entra ID refused the app ({result.get('error')}): {reason}")
        return result["access_token"]

    def _request(self, method: str, url: str, headers: dict[str, str], **kwargs: Any) -> requests.Response:
        with self._lock:
            self.api_calls += 1
        return self.session.request(method, url, timeout=60, headers={
            "Authorization": f"Bearer {self._token()}", "Accept": "application/json",
            "OData-MaxVersion": "4.0", "OData-Version": "4.0", **headers}, **kwargs)

    def _send(self, method: str, url: str, headers: dict[str, str] | None = None, **kwargs: Any) -> requests.Response:
        def attempt() -> requests.Response:
            response = self._request(method, url, headers or {}, **kwargs)
            if response.status_code == 401:
                # The service refused a token msal still thought valid (expired early,
                # revoked): drop it and ask Entra ID for a fresh one, once.
                self.app.remove_tokens_for_client()
                response = self._request(method, url, headers or {}, **kwargs)
                if response.status_code == 401:
                    raise ReconnectRequired("reconnect Dynamics: the Web API refuses fresh tokens (401): "
                                            + response.text[:200])
            if response.status_code in TRANSIENT_STATUSES:
                raise TransientCrmError(response.status_code, f"Dataverse answered {response.status_code}",
                                        retry_after_seconds(response.headers.get("Retry-After")))
            if response.status_code >= 400:
                try:
                    error = response.json().get("error") or {}
                except (ValueError, AttributeError):
                    error = {}
                raise DataverseError(response.status_code, str(error.get("code") or ""), str(error.get("message") or ""),
                                     f"Dataverse answered {response.status_code} to {method} "
                                     f"{url.split('?')[0]}: {response.text[:500]}")
            return response

        return with_retries(attempt)

    def _pages(self, url: str, prefer: list[str]) -> tuple[list[dict[str, Any]], str | None, int]:
        rows: list[dict[str, Any]] = []
        pages = 0
        headers = {"Prefer": ", ".join([f"odata.maxpagesize={self.settings.page_size}", *prefer])}
        next_url: str | None = url
        delta_link = None
        reading = Reading(self.progress, url.split("?")[0].rsplit("/", 1)[-1], every=PROGRESS_EVERY)
        while next_url:
            body = self._send("GET", next_url, headers=headers).json()
            pages += 1
            rows.extend(body.get("value", []))
            reading.page(len(rows), pages)
            next_url = body.get("@odata.nextLink")
            delta_link = body.get("@odata.deltaLink", delta_link)
        return rows, delta_link, pages

    # --- CrmClient --------------------------------------------------------------------------
    def pull(self, obj: CrmObject, since: datetime | None, until: datetime | None,
             state: dict[str, Any] | None = None) -> PullResult:
        """A pull up to now follows the change-tracking delta link from the last pull (or starts
        tracking with a full read): Dataverse's change feed reports deletions too. A bounded
        window (a backfill) filters on modifiedon; so does a pull up to now where the feed cannot
        serve: the table does not track changes, or no delta link is held, or Dataverse refuses
        the stored one (it expired). That fall-back reads from ``since`` (the cursor less the
        overlap) and is logged once, when it starts; a full pull starts the feed again."""
        entity_set, key, logical = ENTITY_SETS[obj]
        calls_before = self.api_calls
        state = dict(state or {})
        rows, delta_link, pages, notes = None, None, 0, []
        if obj != "users" and until is None:
            fed, why = self._from_feed(entity_set, logical, since, state)
            if fed is not None:
                rows, delta_link, pages = fed
            elif since is not None:
                notes.append(self._fall_back(entity_set, why, since, state))
            else:
                state.pop("delta_link", None)  # an untracked table's full read: no feed to follow
        if rows is None:
            rows, _, pages = self._pages(self._window_url(entity_set, key, since, until), [])
        if delta_link:
            state = {"delta_link": delta_link}  # the feed serves again: any fall-back is over
        records = _canonical(obj, rows, key, self.settings.linkedin_attribute)
        cursor = records["last_modified"].max() if len(records) and "last_modified" in records else None
        return PullResult(records, None if cursor is None or pd.isna(cursor) else cursor.to_pydatetime(),
                          api_calls=self.api_calls - calls_before, pages=pages, state=state, notes=notes)

    def _tracks_changes(self, logical: str) -> bool:
        """The table's Track changes option (EntityDefinitions' ChangeTrackingEnabled), read once."""
        if logical not in self._change_tracking:
            doc = self._send("GET", f"{self.api}/EntityDefinitions(LogicalName={odata_string(logical)})"
                                    "?$select=ChangeTrackingEnabled").json()
            self._change_tracking[logical] = bool(doc.get("ChangeTrackingEnabled"))
        return self._change_tracking[logical]

    def _from_feed(self, entity_set: str, logical: str, since: datetime | None,
                   state: dict[str, Any]) -> tuple[tuple[list[dict[str, Any]], str | None, int] | None, str]:
        """The change feed's rows, delta link and pages; or None and why the feed cannot serve."""
        if not self._tracks_changes(logical):
            return None, (f"table '{logical}' does not track changes (ChangeTrackingEnabled is false; turn on "
                          "Track changes in its settings)")
        why = "no delta link is held from an earlier pull"
        if state.get("delta_link"):
            try:
                return self._pages(state["delta_link"], []), ""
            except DataverseError as error:
                if error.status != 400:
                    raise
                why = f"Dataverse refused the stored delta link, expired or not valid ({error.code}: {error.message})"
        if since is None:
            # Everything is read anyway: read it tracked, and the feed starts (again) here.
            return self._pages(f"{self.api}/{entity_set}", ["odata.track-changes"]), ""
        return None, why

    def _fall_back(self, entity_set: str, why: str, since: datetime, state: dict[str, Any]) -> str:
        """Say why the pull reads by modifiedon; warn only when the fall-back starts, since the
        state carries it from pull to pull (each sync run has a client of its own)."""
        message = (f"Dataverse {entity_set}: {why}. Pulling the rows modified since {_odata_datetime(since)} by "
                   "modifiedon instead; deletions are seen again from the next full pull, which starts the "
                   "change feed anew.")
        if "fallback_since" not in state:
            logger.warning(message)
        state.pop("delta_link", None)
        state.setdefault("fallback_since", _odata_datetime(since))
        self.progress(message)
        return message

    def _window_url(self, entity_set: str, key: str, since: datetime | None, until: datetime | None) -> str:
        clauses = []
        if since is not None:
            clauses.append(f"modifiedon ge {_odata_datetime(since)}")
        if until is not None:
            clauses.append(f"modifiedon lt {_odata_datetime(until)}")
        query = {"$orderby": f"modifiedon asc,{key} asc"}
        if clauses:
            query["$filter"] = " and ".join(clauses)
        return f"{self.api}/{entity_set}?{urlencode(query)}"

    def latest_change(self, obj: CrmObject, since: datetime | None) -> datetime | None:
        entity_set, key, _ = ENTITY_SETS[obj]
        query = {"$select": "modifiedon", "$orderby": "modifiedon desc", "$top": "1"}
        if since is not None:
            query["$filter"] = f"modifiedon gt {_odata_datetime(since)}"
        rows = self._send("GET", f"{self.api}/{entity_set}?{urlencode(query)}").json().get("value", [])
        latest = pd.Timestamp(rows[0]["modifiedon"]).to_pydatetime() if rows else None
        # modifiedon has whole seconds, and so has the filter: never report the cursor itself.
        return latest if latest is not None and (since is None or latest > since) else None

    @property
    def enginy_id_field(self) -> str:
        """The CRM field holding Enginy's id on records the push created (creates upsert on it)."""
        return self.settings.enginy_key

    def push(self, obj: CrmObject, writes: list[Write]) -> list[WriteResult]:
        """``$batch`` requests of independent operations (continue-on-error), each a PATCH:
        creates upsert on the Enginy alternate key, updates address the row's id. Up to
        ``parallel_batches`` requests at once, as Microsoft advises for bulk work (a batch runs
        its operations one after another; the service runs batches side by side)."""
        return self._in_batches(writes, lambda batch: self._push_batch(obj, batch), f"{ENTITY_SETS[obj][0]} writes")

    def _in_batches(self, items: list[Any], send: Callable[[list[Any]], list[WriteResult]],
                    what: str) -> list[WriteResult]:
        """``send`` each batch_size slice of ``items``, parallel_batches at once; the results in
        the items' order."""
        batches = [items[start:start + self.settings.batch_size]
                   for start in range(0, len(items), self.settings.batch_size)]
        return push_in_parallel(batches, send, self.settings.parallel_batches,
                                lambda sent: self.progress(f"{what}: {sent:,} of {len(items):,} sent"),
                                "dataverse-batch")

    def _push_batch(self, obj: CrmObject, batch: list[Write]) -> list[WriteResult]:
        entity_set, key, _ = ENTITY_SETS[obj]
        results: list[WriteResult] = []
        operations = []
        for write in batch:
            address = (f"{self.settings.enginy_key}={odata_string(write.enginy_id)}" if write.action == "create"
                       else write.crm_id)
            body = {**write.fields, **({self.settings.enginy_key: write.enginy_id}
                                       if write.action == "create" else {})}
            if write.owner_id:
                body["ownerid@odata.bind"] = f"/systemusers({write.owner_id})"
            # One parent account per contact: the batch asks for an additional link only where the
            # contact has none yet, so any link asked for is the parent to set.
            if write.company_id and obj == "contacts":
                body["parentcustomerid_account@odata.bind"] = f"/accounts({write.company_id})"
            # If-Match: * on an update: it never creates.
            operations.append((f"{entity_set}({address})", ["If-Match: *"] if write.action == "update" else [], body))
        try:
            answers = self._post_batch(operations)
        except TransientCrmError as error:  # retries spent: the next run sends the batch again
            return [WriteResult(w.write_id, "failed", error=str(error)) for w in batch]
        for i, write in enumerate(batch):
            status, body = answers[i] if i < len(answers) else (0, {})
            if status in (200, 201):
                results.append(WriteResult(write.write_id, "created" if status == 201 else "updated",
                                           body.get(key)))
            elif status in TRANSIENT_STATUSES or status == 0:
                results.append(WriteResult(write.write_id, "failed", error=f"Dataverse answered {status}"))
            else:
                error = body.get("error") or {}
                results.append(WriteResult(write.write_id, "rejected", error=error.get("message"),
                                           error_code=error.get("code")))
        return results

    def log_activities(self, activities: list[Activity]) -> list[WriteResult]:
        """Completed task activities regarding the contact or lead, in ``$batch`` requests,
        parallel_batches at once. Each is a PATCH on the Enginy alternate key with
        If-None-Match: *, which creates and never updates, so a batch sent again after a lost
        answer cannot log anything twice: what already landed answers 412 and is looked up for
        its id."""
        return self._in_batches(activities, self._log_batch, "tasks")

    def _log_batch(self, batch: list[Activity]) -> list[WriteResult]:
        operations = []
        for a in batch:
            regarding = "lead" if a.record_object == "leads" else "contact"
            body: dict[str, Any] = {
                "subject": clip(a.subject, SUBJECT_LENGTH), "actualend": _odata_datetime(a.occurred_at),
                **TASK_COMPLETED, f"regardingobjectid_{regarding}_task@odata.bind": f"/{regarding}s({a.record_id})"}
            if a.description:
                body["description"] = clip(a.description, DESCRIPTION_LENGTH)
            if a.owner_id:
                body["ownerid@odata.bind"] = f"/systemusers({a.owner_id})"
            operations.append((f"tasks({self.settings.enginy_key}={odata_string(a.write_id)})",
                               ["If-None-Match: *"], body))
        try:
            answers = self._post_batch(operations)
        except TransientCrmError as error:  # retries spent: the next run sends the batch again
            return [WriteResult(a.write_id, "failed", error=str(error)) for a in batch]
        results: dict[str, WriteResult] = {}
        landed = []
        for i, a in enumerate(batch):
            status, body = answers[i] if i < len(answers) else (0, {})
            error = body.get("error") or {}
            if status == 201:
                results[a.write_id] = WriteResult(a.write_id, "created", body.get("activityid"))
            elif status == 412 and error.get("code") == DUPLICATE_KEY:
                landed.append(a.write_id)
            elif status in TRANSIENT_STATUSES or status == 0:
                results[a.write_id] = WriteResult(a.write_id, "failed", error=f"Dataverse answered {status}")
            else:
                results[a.write_id] = WriteResult(a.write_id, "rejected", error=error.get("message"),
                                                  error_code=error.get("code"))
        found = self._find_tasks(landed)
        results.update((key, WriteResult(key, "created", found.get(key))) for key in landed)
        return [results[a.write_id] for a in batch]

    def _post_batch(self, operations: list[tuple[str, list[str], dict[str, Any]]]) -> list[tuple[int, dict[str, Any]]]:
        """One ``$batch`` request of independent PATCH operations (path under the API, extra
        headers, body) that goes on past a failed one; each operation's status and answer."""
        boundary = f"batch_{uuid.uuid4().hex}"
        parts = ["\r\n".join([f"--{boundary}", "Content-Type: application/http", "Content-Transfer-Encoding: binary",
                               "", f"PATCH {self.api}/{path} HTTP/1.1", "Content-Type: application/json",
                               "Prefer: return=representation", *headers, "", json.dumps(body, default=str)])
                 for path, headers, body in operations]
        payload = "\r\n".join(parts + [f"--{boundary}--", ""])
        response = self._send("POST", f"{self.api}/$batch", data=payload.encode(), headers={
            "Content-Type": f"multipart/mixed; boundary={boundary}", "Prefer": "odata.continue-on-error"})
        return _batch_answers(response)

    def _find_tasks(self, keys: list[str]) -> dict[str, str]:
        key = self.settings.enginy_key
        found: dict[str, str] = {}
        for start in range(0, len(keys), LOOKUP_KEYS):
            wanted = " or ".join(f"{key} eq {odata_string(k)}" for k in keys[start:start + LOOKUP_KEYS])
            query = urlencode({"$select": f"activityid,{key}", "$filter": wanted})
            rows = self._send("GET", f"{self.api}/tasks?{query}").json().get("value", [])
            found.update((r[key], r["activityid"]) for r in rows)
        return found

    def describe(self, obj: CrmObject) -> list[CrmField]:
        _, _, logical = ENTITY_SETS[obj]
        base = f"{self.api}/EntityDefinitions(LogicalName='{logical}')/Attributes"
        select = "LogicalName,AttributeType,IsValidForCreate,IsValidForUpdate,RequiredLevel,DisplayName"
        attributes = self._send("GET", f"{base}?$select={select}").json()["value"]
        picklists = self._send(
            "GET", f"{base}/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$select=LogicalName&$expand=OptionSet"
        ).json()["value"]
        options = {p["LogicalName"]: [o for o in (p.get("OptionSet") or {}).get("Options", [])] for p in picklists}
        # MaxLength and the format (Email, Url, …) are properties of the text attributes' own types,
        # which Dataverse answers only when the collection is cast to that type.
        texts = {t["LogicalName"]: t for cast in ("StringAttributeMetadata", "MemoAttributeMetadata")
                 for t in self._send("GET", f"{base}/Microsoft.Dynamics.CRM.{cast}"
                                            "?$select=LogicalName,MaxLength,FormatName").json()["value"]}
        fields = []
        for a in attributes:
            name = a["LogicalName"]
            opts = options.get(name, [])
            label = ((a.get("DisplayName") or {}).get("UserLocalizedLabel") or {}).get("Label") or name
            required = (a.get("RequiredLevel") or {}).get("Value") in {"ApplicationRequired", "SystemRequired"}
            text = texts.get(name, {})
            # A String column formatted as an email or a URL is described as one, as Salesforce does.
            formatted = TEXT_FORMATS.get((text.get("FormatName") or {}).get("Value"))
            fields.append(CrmField(
                name=name, label=label, type=formatted or a.get("AttributeType", "String"),
                createable=bool(a.get("IsValidForCreate")), updateable=bool(a.get("IsValidForUpdate")),
                required=required, options=tuple(str(o["Value"]) for o in opts),
                option_labels=tuple(((o.get("Label") or {}).get("UserLocalizedLabel") or {}).get("Label", "")
                                    for o in opts),
                length=text.get("MaxLength")))
        return fields

    def users(self) -> pd.DataFrame:
        return self.pull("users", None, None).records


def _odata_datetime(value: datetime) -> str:
    return pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if "@" not in k}


def _canonical(obj: CrmObject, rows: list[dict[str, Any]], key: str, linkedin: str) -> pd.DataFrame:
    deleted = [r for r in rows if str(r.get("@odata.context", "")).endswith("$deletedEntity") or r.get("reason") == "deleted"]
    live = [r for r in rows if r not in deleted]
    frame = pd.DataFrame(live)
    get = (lambda c: frame[c] if c in frame else None)  # noqa: E731
    n = len(frame)
    if obj == "users":
        return CrmUser.validate(pd.DataFrame({
            "crm_id": get(key), "email": get("internalemailaddress"), "first_name": get("firstname"),
            "last_name": get("lastname"),
            "is_active": ~frame["isdisabled"].fillna(False).astype(bool) if "isdisabled" in frame else [True] * n,
            "raw": [_clean(r) for r in live]}))
    common = {
        "crm_id": get(key), "owner_id": get("_ownerid_value"),
        "last_modified": pd.to_datetime(get("modifiedon"), utc=True) if n else pd.Series(dtype="datetime64[us, UTC]"),
        "is_deleted": [False] * n, "raw": [_clean(r) for r in live], "linkedin_url": get(linkedin),
    }
    if obj == "companies":
        frame_out = pd.DataFrame({**common, "name": get("name"), "domain": get("websiteurl")})
        model = CrmCompany
    else:
        frame_out = pd.DataFrame({
            **common, "first_name": get("firstname"), "last_name": get("lastname"),
            "company_name": (get("companyname") if obj == "leads"
                             else get("_parentcustomerid_value@OData.Community.Display.V1.FormattedValue")),
            "email": get("emailaddress1"), "phone": get("telephone1"), "job_title": get("jobtitle"),
            "account_id": None if obj == "leads" else get("_parentcustomerid_value")})
        model = CrmContact
    if deleted:
        gone = pd.DataFrame({"crm_id": [str(r["id"]) for r in deleted], "is_deleted": True,
                             "last_modified": pd.Timestamp.now(tz="UTC"), "raw": [{} for _ in deleted]})
        frame_out = pd.concat([frame_out, gone], ignore_index=True)
    return model.validate(frame_out.reindex(columns=list(model.to_schema().columns)))


class DynamicsResource(CrmResource):
    """Microsoft Dynamics 365 (Dataverse) through an Entra ID app registration."""

    environment_url: str = Field(description="the Dataverse environment, e.g. https://contoso.crm4.dynamics.com")
    tenant_id: str = Field(description="Entra ID tenant id or name")
    client_id: str
    client_secret: str = Field(description="bind with EnvVar; never written in config")
    authority_host: str = "https://login.microsoftonline.com"
    api_version: str = "v9.2"
    page_size: int = Field(5000, description="Prefer: odata.maxpagesize")
    batch_size: int = Field(100, description="operations per $batch request of the push")
    parallel_batches: int = Field(4, ge=1, le=52, description="$batch requests of a push sent at once (Dataverse "
                                                              "takes 52 concurrent requests per user)")
    enginy_key: str = Field("crm_enginyid", description="the alternate key creates upsert on")
    linkedin_attribute: str = Field("crm_linkedinurl", description="attribute holding the LinkedIn URL")
    token_cache_path: str = Field("", description="file for msal's token cache, encrypted; empty: memory only")
    token_cache_key: str = Field("", description="Fernet key for the token cache; bind with EnvVar")

    def client(self) -> DynamicsClient:
        return DynamicsClient(self)
