"""HubSpot through hubspot-api-client: private-app token, CRM v3 list and search.

A full pull pages through the list API, 100 records a call, by HubSpot's id cursor (stable
while others write). Incremental and backfill pulls search on the last-modified property,
ascending, and every query starts again at the last timestamp seen rather than paging by
offset: offset paging skips a record whenever one on an earlier page is modified during the
pull, and stops at HubSpot's 10,000-result cap. Records sharing the last timestamp are asked for
again and de-duplicated; an instant holding more than a page is walked by record id. Deletions
are the archived records whose archive time falls in the window.
"""

import hashlib
import itertools
import json
import math
import threading
import time
from contextlib import contextmanager, nullcontext
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator, TypeVar
from urllib.parse import quote

import orjson
import pandas as pd
import urllib3
from hubspot import HubSpot
from hubspot.crm.objects import BatchReadInputSimplePublicObjectId, PublicObjectSearchRequest
from pydantic import Field

from crm_pipelines.canonical import CrmCompany, CrmContact, CrmUser, empty
from crm_pipelines.export.writes import Activity
from crm_pipelines.crms.wire.activity_writes import log_once
from crm_pipelines.crms.base import (
    PROGRESS_EVERY, CrmField, CrmObject, CrmResource, Progress, PullResult, Write, WriteResult, push_in_parallel,
)
from crm_pipelines.crms.wire.retries import TRANSIENT_STATUSES, TransientCrmError, retry_after_seconds, with_retries
from crm_pipelines.progress import Reading

T = TypeVar("T")

OBJECT_TYPES = {"contacts": "contacts", "companies": "companies"}
SEARCH_CAP = 10_000
SEARCH_PAGE = 200
LIST_PAGE = 100
IN_VALUES = 100  # values one IN filter takes (search refuses more with a 400)
# HubSpot answers 414 past 8 KB of request line; the list API repeats `properties=` per name.
MAX_PROPERTIES_URL = 6_000
# HubSpot's documented limit of a string property's value (its properties API gives no length).
MAX_TEXT = 65_536
ONE_MS = timedelta(milliseconds=1)
# Activities as a HubSpot admin expects them: a sent email is an email engagement; a call or a
# LinkedIn touchpoint a completed task of that type (what HubSpot's own sequences create).
ENGAGEMENTS = {"email": "emails", "call": "tasks", "linkedin": "tasks"}
# HubSpot-defined association type ids, engagement → contact.
TO_CONTACT = {"emails": 198, "notes": 202, "tasks": 204}
TASK_TYPES = {"call": "CALL", "linkedin_message": "LINKED_IN_MESSAGE", "linkedin_connection_request": "LINKED_IN_CONNECT"}


class HubSpotApiError(RuntimeError):
    """An answer HubSpot gives for the request itself (validation, conflict, auth): not retried."""

    def __init__(self, status: int, body: str) -> None:
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = {}
        self.status = status
        self.category = parsed.get("category")
        self.message = parsed.get("message") or body[:500]
        super().__init__(f"HubSpot answered {status}: {self.message}")


# HubSpot's burst limit counts calls in a rolling ten-second window.
BURST_WINDOW_SECONDS = 10.0
_BURSTS: dict[tuple[str, str, int], "_RollingLimit"] = {}
_BURSTS_LOCK = threading.Lock()


def _burst_limit(host: str, token: str, calls: int) -> "_RollingLimit":
    """The burst limit of one portal's app, shared by every client of this process that calls it
    (each snapshot asset makes its own client, and the portal counts them all)."""
    key = (host, hashlib.sha256(token.encode()).hexdigest(), calls)
    with _BURSTS_LOCK:
        return _BURSTS.setdefault(key, _RollingLimit(calls, BURST_WINDOW_SECONDS))


class _RollingLimit:
    """At most ``calls`` calls in any ``seconds``, across threads: a call waits for the oldest of
    the window to leave it. A pull of a thousand pages otherwise sends 190 calls in a couple of
    seconds and spends the rest of the window on 429s that a short backoff does not outwait.

    HubSpot counts a call when it arrives, which is after this process sent it and before the
    answer came back: a call holds its place in the window from when it is sent until ``seconds``
    after its answer. Counted from the send, a call freed its place a little before HubSpot's
    window let it go, and the call sent into that place met a 429 (waited out for a whole window)."""

    def __init__(self, calls: int, seconds: float) -> None:
        self.calls, self.seconds = calls, seconds
        self.answered: dict[int, float] = {}  # each call of the window: when it was answered, inf in flight
        self.tickets = itertools.count()
        self.lock = threading.Lock()

    @contextmanager
    def place(self) -> Iterator[None]:
        """Hold a place in the window for one call, made inside the ``with``."""
        while True:
            with self.lock:
                now = time.monotonic()
                for ticket in [t for t, at in self.answered.items() if at <= now - self.seconds]:
                    del self.answered[ticket]
                if len(self.answered) < self.calls:
                    ticket = next(self.tickets)
                    self.answered[ticket] = math.inf
                    break
                pause = min(self.answered.values()) + self.seconds - now
            time.sleep(pause if pause != math.inf else 0.01)  # every place in flight: one is soon answered
        try:
            yield
        finally:
            with self.lock:
                self.answered[ticket] = time.monotonic()


class HubSpotClient:
    """The CrmClient for one HubSpot account."""

    crm = "hubspot"
    # A contact may hang on several companies (one primary): an additional link is always possible.
    contacts_link_many_companies = True

    def __init__(self, settings: "HubSpotResource") -> None:
        self.settings = settings
        options: dict[str, Any] = {"access_token": settings.access_token, "host": settings.host.rstrip("/")}
        if settings.ca_bundle:
            options["ssl_ca_cert"] = settings.ca_bundle
        self.api = HubSpot(**options)
        self.api_calls = 0
        self.progress: Progress = lambda message: None
        self._properties: dict[str, list[dict[str, Any]]] = {}
        self._last_search = 0.0
        self._last_create: float | None = None  # monotonic end of the last engagement create sent
        self._lock = threading.Lock()
        self._search_lock = threading.Lock()
        self._burst = _burst_limit(settings.host, settings.access_token, settings.calls_per_ten_seconds)

    def _call(self, fn: Callable[[], T], attempts: int = 6, search: bool = False) -> T:
        def attempt() -> T:
            with self._lock:  # a push calls from several threads at once
                self.api_calls += 1
            try:
                # Search has a limit of its own (_search paces it).
                with nullcontext() if search else self._burst.place():
                    return fn()
            except (urllib3.exceptions.HTTPError, ConnectionError) as exc:  # dropped or refused connection
                raise TransientCrmError(None, f"HubSpot connection failed: {type(exc).__name__}") from exc
            except Exception as exc:  # every generated sub-client has its own ApiException class
                status = getattr(exc, "status", None)
                if status in TRANSIENT_STATUSES:
                    headers = getattr(exc, "headers", None) or {}
                    wait = retry_after_seconds(headers.get("Retry-After"))
                    if wait is None and status == 429 and headers.get("X-HubSpot-RateLimit-Remaining") == "0":
                        # The burst window is spent (another process of the run used it): a backoff of
                        # a second or two would meet 429 again; the whole window surely frees it.
                        wait = int(headers.get("X-HubSpot-RateLimit-Interval-Milliseconds") or 10_000) / 1000
                    raise TransientCrmError(status, f"HubSpot answered {status}", wait) from exc
                if status is not None:
                    raise HubSpotApiError(status, str(getattr(exc, "body", "") or "")) from exc
                raise

        return with_retries(attempt, attempts=attempts)

    def _json(self, method: Callable[..., Any], attempts: int = 6, search: bool = False,
              **arguments: Any) -> dict[str, Any]:
        """``method``'s answer as the JSON HubSpot sent, not as the client's models: they parse
        every record's timestamps with dateutil, which was four fifths of a pull's time and most of
        a push's beside the calls themselves."""
        def read() -> dict[str, Any]:
            answer = method(**arguments, _preload_content=False)
            try:
                return orjson.loads(answer.data) if answer.data else {}
            finally:
                answer.release_conn()

        return self._call(read, attempts, search)

    # --- schema -----------------------------------------------------------------------------
    def _property_defs(self, object_type: str) -> list[dict[str, Any]]:
        if object_type not in self._properties:
            answer = self._call(lambda: self.api.crm.properties.core_api.get_all(object_type=object_type))
            self._properties[object_type] = [p.to_dict() for p in answer.results]
        return self._properties[object_type]

    def describe(self, obj: CrmObject) -> list[CrmField]:
        if obj not in OBJECT_TYPES:
            raise LookupError(f"HubSpot has no {obj} object")
        fields = []
        for p in self._property_defs(OBJECT_TYPES[obj]):
            read_only = bool((p.get("modification_metadata") or {}).get("read_only_value")) or bool(p.get("calculated"))
            options = [o for o in p.get("options") or [] if not o.get("hidden")]
            # A contact's email is a "string" to the properties API, but HubSpot validates it as
            # an address and stores it lower-cased: described as an email, it is checked before the
            # push and compared without case.
            kind = "email" if obj == "contacts" and p["name"] == "email" else p.get("type") or "string"
            fields.append(CrmField(
                name=p["name"], label=p.get("label") or p["name"], type=kind,
                createable=not read_only, updateable=not read_only,
                options=tuple(o["value"] for o in options), option_labels=tuple(o.get("label") or "" for o in options),
                unique=bool(p.get("has_unique_value")),
                length=MAX_TEXT if p.get("type", "string") == "string" else None))
        return fields

    def _property_chunks(self, object_type: str) -> list[list[str]]:
        """Property names split so each list call's URL stays under HubSpot's limit."""
        chunks: list[list[str]] = [[]]
        length = 0
        for name in (p["name"] for p in self._property_defs(object_type)):
            cost = len("&properties=") + len(quote(name))
            if chunks[-1] and length + cost > MAX_PROPERTIES_URL:
                chunks.append([])
                length = 0
            chunks[-1].append(name)
            length += cost
        return chunks

    # --- pulls ------------------------------------------------------------------------------
    def pull(self, obj: CrmObject, since: datetime | None, until: datetime | None,
             state: dict[str, Any] | None = None) -> PullResult:
        if obj == "users":
            return PullResult(self.users(), None, api_calls=self.api_calls)
        if obj not in OBJECT_TYPES:
            model = CrmContact if obj == "leads" else CrmCompany
            return PullResult(empty(model), None, notes=["HubSpot has no Lead object"])
        object_type = OBJECT_TYPES[obj]
        calls_before = self.api_calls
        modified = self.settings.modified_property[obj]
        rows_by_id: dict[str, dict[str, Any]] = {}
        pages, notes = 0, []
        if since is None and until is None:
            for properties in self._property_chunks(object_type):
                chunk, chunk_pages = self._list(object_type, properties, archived=False)
                pages += chunk_pages
                for row in chunk:
                    merged = rows_by_id.setdefault(row["id"], {"id": row["id"], "archived": False, "properties": {}})
                    merged["properties"].update(row["properties"])
                    merged["updated_at"] = row["updated_at"]
        else:
            # Search takes its properties in the body, so one query carries all of them.
            names = [p["name"] for p in self._property_defs(object_type)]
            found, search_pages, queries = self._search_window(
                object_type, names, modified, since, until or datetime.now(timezone.utc))
            pages += search_pages
            rows_by_id.update((row["id"], {**row, "archived": False}) for row in found)
            if queries > 1:
                notes.append(f"window walked in {queries} queries, each restarting at the last timestamp seen "
                             f"(search pages by offset and stops at {SEARCH_CAP:,} results)")
            archived, archived_pages = self._list(object_type, ["hs_object_id"], archived=True)
            pages += archived_pages
            low = pd.Timestamp(since) if since is not None else None
            high = pd.Timestamp(until) if until is not None else None
            for row in archived:
                at = pd.Timestamp(row["archived_at"]) if row.get("archived_at") else None
                if at is not None and (low is None or at >= low) and (high is None or at < high):
                    rows_by_id[row["id"]] = {"id": row["id"], "archived": True, "properties": row["properties"],
                                             "updated_at": row["archived_at"]}
        records = _canonical(obj, list(rows_by_id.values()), self.settings)
        cursor = records["last_modified"].max() if len(records) else None
        return PullResult(records, None if cursor is None or pd.isna(cursor) else cursor.to_pydatetime(),
                          api_calls=self.api_calls - calls_before, pages=pages, notes=notes)

    def latest_change(self, obj: CrmObject, since: datetime | None) -> datetime | None:
        if obj not in OBJECT_TYPES:
            return None  # HubSpot has no Lead object
        modified = self.settings.modified_property[obj]
        filters = [_filter(modified, "GT", since)] if since is not None else []
        page = self._search(OBJECT_TYPES[obj], filters, modified, [modified], limit=1, direction="DESCENDING")
        return _modified(_plain(page["results"][0]), modified) if page["results"] else None

    def _list(self, object_type: str, properties: list[str], archived: bool) -> tuple[list[dict[str, Any]], int]:
        basic = getattr(self.api.crm, object_type).basic_api
        rows, pages, after = [], 0, None
        reading = Reading(self.progress, f"{object_type}{' (archived)' if archived else ''}", every=PROGRESS_EVERY)
        while True:
            page = self._json(basic.get_page, limit=LIST_PAGE, after=after, properties=properties, archived=archived)
            pages += 1
            rows.extend(_plain(r) for r in page["results"])
            reading.page(len(rows), pages)
            after = _next(page)
            if not after:
                return rows, pages

    def _search(self, object_type: str, filters: list[dict[str, Any]], sort: str, properties: list[str],
                after: str | None = None, limit: int = SEARCH_PAGE, direction: str = "ASCENDING") -> dict[str, Any]:
        # Engagements live under crm.objects in the client; contacts and companies under crm.
        search = (getattr(self.api.crm, object_type, None) or getattr(self.api.crm.objects, object_type)).search_api
        request = PublicObjectSearchRequest(
            filter_groups=[{"filters": filters}] if filters else [], sorts=[{"propertyName": sort, "direction": direction}],
            properties=properties, limit=limit, after=after)
        # Search has its own per-second limit and sends no rate-limit headers: pace it here (an
        # activity push may search from several threads).
        with self._search_lock:
            wait = self._last_search + 1 / self.settings.search_calls_per_second - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last_search = time.monotonic()
        return self._json(search.do_search, search=True, public_object_search_request=request)

    def _search_window(self, object_type: str, properties: list[str], modified: str, since: datetime | None,
                       until: datetime) -> tuple[list[dict[str, Any]], int, int]:
        """Everything modified in [since, until): (rows, pages, queries started)."""
        low = since or datetime(2000, 1, 1, tzinfo=timezone.utc)
        found: dict[str, dict[str, Any]] = {}
        pages = queries = 0
        while low < until:
            page = self._search(object_type, [_filter(modified, "GTE", low), _filter(modified, "LT", until)],
                                modified, properties)
            pages += 1
            queries += 1
            rows = [_plain(r) for r in page["results"]]
            found.update((row["id"], row) for row in rows)
            if pages % PROGRESS_EVERY == 0:
                self.progress(f"{object_type}: {len(found):,} records modified since {low:%Y-%m-%d %H:%M} "
                              f"found in {pages} pages")
            if _next(page) is None:
                break
            last = _modified(rows[-1], modified)
            if last <= low:
                # A whole page shares one instant: walk that instant by id, then move past it.
                instant_rows, instant_pages = self._search_instant(object_type, properties, modified, low)
                found.update((row["id"], row) for row in instant_rows)
                pages += instant_pages
                low += ONE_MS
            else:
                low = last
        return list(found.values()), pages, queries

    def _search_instant(self, object_type: str, properties: list[str], modified: str,
                        instant: datetime) -> tuple[list[dict[str, Any]], int]:
        rows: list[dict[str, Any]] = []
        pages, last_id = 0, "0"
        while True:
            page = self._search(object_type, [_filter(modified, "EQ", instant),
                                              {"propertyName": "hs_object_id", "operator": "GT", "value": last_id}],
                                "hs_object_id", properties)
            pages += 1
            rows.extend(_plain(r) for r in page["results"])
            if _next(page) is None:
                return rows, pages
            last_id = rows[-1]["id"]

    # --- push -------------------------------------------------------------------------------
    @property
    def enginy_id_field(self) -> str:
        """The CRM field holding Enginy's id on records the push created (creates upsert on it)."""
        return self.settings.enginy_id_property

    def push(self, obj: CrmObject, writes: list[Write]) -> list[WriteResult]:
        """Batches of 100, ``parallel_batches`` calls at once: creates upsert on the unique Enginy
        id property, updates by record id. HubSpot refuses a whole batch for one bad input, so a
        refused batch is halved until the inputs at fault stand alone and are rejected with
        HubSpot's message."""
        if obj not in OBJECT_TYPES:
            return [WriteResult(w.write_id, "rejected", error=f"HubSpot has no {obj} object") for w in writes]
        batch_api = getattr(self.api.crm, OBJECT_TYPES[obj]).batch_api
        batches = [(action, group[start:start + LIST_PAGE])
                   for action in ("create", "update") for group in [[w for w in writes if w.action == action]]
                   for start in range(0, len(group), LIST_PAGE)]
        results = push_in_parallel(batches, lambda job: self._push_batch(batch_api, *job),
                                   self.settings.parallel_batches,
                                   lambda sent: self.progress(f"{obj}: {sent:,} of {len(writes):,} writes sent"),
                                   f"hubspot-{obj}")
        if obj == "contacts":
            self._relink(writes, results)
        return results

    def _relink(self, writes: list[Write], results: list[WriteResult]) -> None:
        """Additional company links and removed previous primaries, once the contacts exist."""
        crm_ids = {r.write_id: r.crm_id for r in results if r.status in ("created", "updated")}
        add = [{"from": {"id": crm_ids[w.write_id]}, "to": {"id": w.company_id}} for w in writes
               if w.write_id in crm_ids and w.company_id and w.company_link == "additional"]
        remove = [{"from": {"id": crm_ids[w.write_id]}, "to": [{"id": w.unlink_company_id}]} for w in writes
                  if w.write_id in crm_ids and w.unlink_company_id]
        batch = self.api.crm.associations.v4.batch_api
        for start in range(0, len(add), LIST_PAGE):
            part = add[start:start + LIST_PAGE]
            self._call(lambda: batch.create_default("contacts", "companies", {"inputs": part}))
        for start in range(0, len(remove), LIST_PAGE):
            part = remove[start:start + LIST_PAGE]
            self._call(lambda: batch.archive("contacts", "companies", {"inputs": part}))

    def _push_batch(self, batch_api: Any, action: str, batch: list[Write]) -> list[WriteResult]:
        key = self.settings.enginy_id_property
        try:
            if action == "create":
                answer = self._json(batch_api.upsert, batch_input_simple_public_object_batch_input_upsert={"inputs": [
                    {"idProperty": key, "id": w.enginy_id, "properties": {**_links(w), key: w.enginy_id}}
                    for w in batch]})
                by_key = {(r.get("properties") or {}).get(key): r for r in answer["results"]}
                return [WriteResult(w.write_id, "created" if by_key[w.enginy_id].get("new") else "updated",
                                    str(by_key[w.enginy_id]["id"])) if w.enginy_id in by_key
                        else WriteResult(w.write_id, "failed", error="HubSpot did not answer for this input")
                        for w in batch]
            answer = self._json(batch_api.update, batch_input_simple_public_object_batch_input={"inputs": [
                {"id": w.crm_id, "properties": _links(w)} for w in batch]})
            done = {str(r["id"]) for r in answer["results"]}
            return [WriteResult(w.write_id, "updated", w.crm_id) if w.crm_id in done
                    else WriteResult(w.write_id, "rejected", error="the record no longer exists in HubSpot",
                                     error_code="OBJECT_NOT_FOUND") for w in batch]
        except HubSpotApiError as error:
            if error.status in (401, 403):
                raise
            if len(batch) == 1:
                return [WriteResult(batch[0].write_id, "rejected", error=error.message, error_code=error.category)]
            half = len(batch) // 2
            return self._push_batch(batch_api, action, batch[:half]) + self._push_batch(batch_api, action, batch[half:])
        except TransientCrmError as error:  # retries spent: leave the batch for the next run
            return [WriteResult(w.write_id, "failed", error=str(error)) for w in batch]

    # --- activities -------------------------------------------------------------------------
    def log_activities(self, activities: list[Activity]) -> list[WriteResult]:
        """Engagements created in batches of 100 with their contact association inline,
        ``parallel_batches`` calls at once. They have no upsert, so each carries its key in
        ``activity_id_property`` and a create whose answer was lost is looked up before it is sent
        again (``_find_engagements``)."""
        parts = [(object_type, group[start:start + LIST_PAGE])
                 for object_type in sorted(set(ENGAGEMENTS.values()))
                 for group in [[a for a in activities if ENGAGEMENTS[a.kind] == object_type]]
                 for start in range(0, len(group), LIST_PAGE)]

        def log(object_type: str, part: list[Activity]) -> list[WriteResult]:
            return log_once(part, lambda batch: self._create_engagements(object_type, batch),
                            lambda keys: self._find_engagements(object_type, keys))

        # The parts group activities by engagement type: the answers go back in the activities' order.
        results = {r.write_id: r for r in push_in_parallel(
            parts, lambda part: log(*part), self.settings.parallel_batches,
            lambda sent: self.progress(f"{sent:,} of {len(activities):,} activities sent"), "hubspot-activities")}
        return [results[a.write_id] for a in activities]

    def _engagement(self, object_type: str, a: Activity) -> dict[str, Any]:
        properties = {"hs_timestamp": _millis(a.occurred_at), self.settings.activity_id_property: a.write_id}
        if object_type == "emails":
            properties |= {"hs_email_subject": a.subject, "hs_email_direction": "EMAIL", "hs_email_status": "SENT"}
            if a.description:
                properties["hs_email_text"] = a.description
        else:
            properties |= {"hs_task_subject": a.subject, "hs_task_status": "COMPLETED",
                           "hs_task_type": TASK_TYPES[a.step_type]}
            if a.description:
                properties["hs_task_body"] = a.description
        if a.owner_id:
            properties["hubspot_owner_id"] = a.owner_id
        return {"properties": properties, "associations": [{"to": {"id": a.record_id}, "types": [
            {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": TO_CONTACT[object_type]}]}]}

    def _create_engagements(self, object_type: str, batch: list[Activity]) -> list[WriteResult]:
        """One attempt (log_once decides what to send again). HubSpot refuses a whole batch for
        one bad input: a refused batch is halved until the inputs at fault stand alone."""
        if any(a.record_object != "contacts" for a in batch):
            return [WriteResult(a.write_id, "rejected", error="HubSpot has no Lead object") for a in batch]
        batch_api = getattr(self.api.crm.objects, object_type).batch_api
        key = self.settings.activity_id_property
        try:
            answer = self._send_create(batch_api, [self._engagement(object_type, a) for a in batch])
        except HubSpotApiError as error:
            if error.status in (401, 403):
                raise
            if len(batch) == 1:
                return [WriteResult(batch[0].write_id, "rejected", error=error.message, error_code=error.category)]
            half = len(batch) // 2
            return (self._create_engagements(object_type, batch[:half])
                    + self._create_engagements(object_type, batch[half:]))
        made = {(r.get("properties") or {}).get(key): str(r["id"]) for r in answer["results"]}
        return [WriteResult(a.write_id, "created", made[a.write_id]) if a.write_id in made
                else WriteResult(a.write_id, "failed", error="HubSpot did not answer for this input") for a in batch]

    def _send_create(self, batch_api: Any, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        try:
            return self._json(batch_api.create, attempts=1,
                              batch_input_simple_public_object_batch_input_for_create={"inputs": inputs})
        finally:  # answered or not, it may have written: a search for what it wrote waits from here
            self._last_create = time.monotonic()

    def _find_engagements(self, object_type: str, keys: list[str]) -> dict[str, str]:
        """{key: engagement id} for the keys HubSpot holds, 100 keys a call. HubSpot's search
        trails its writes by seconds, so a search right after a lost create finds nothing and the
        activity would be sent twice: a key property with unique values is read by batch read
        (``idProperty``), which sees a write at once; any other key is searched for only once
        ``search_lag_seconds`` have passed since this client's last create — from now when it
        sent none (the doubt is an earlier run's, and when that run wrote is not known)."""
        key = self.settings.activity_id_property
        unique = any(p["name"] == key and p.get("has_unique_value") for p in self._property_defs(object_type))
        if not unique:
            since = self._last_create if self._last_create is not None else time.monotonic()
            wait = since + self.settings.search_lag_seconds - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        found: dict[str, str] = {}
        for start in range(0, len(keys), IN_VALUES):
            part = keys[start:start + IN_VALUES]
            found |= (self._read_engagements(object_type, key, part) if unique
                      else self._search_engagements(object_type, key, part))
        return found

    def _read_engagements(self, object_type: str, key: str, keys: list[str]) -> dict[str, str]:
        batch_api = getattr(self.api.crm.objects, object_type).batch_api
        request = BatchReadInputSimplePublicObjectId(id_property=key, inputs=[{"id": k} for k in keys],
                                                     properties=[key], properties_with_history=[])
        # Keys HubSpot does not hold come back as errors of a 207, not as a failure.
        answer = self._json(batch_api.read, batch_read_input_simple_public_object_id=request)
        return {(r.get("properties") or {}).get(key): str(r["id"]) for r in answer["results"]}

    def _search_engagements(self, object_type: str, key: str, keys: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        after = None
        while True:  # a key logged twice before (by hand, or an older version) is more than one result
            page = self._search(object_type, [{"propertyName": key, "operator": "IN", "values": keys}],
                                "hs_object_id", [key], after=after)
            found.update(((r.get("properties") or {}).get(key), str(r["id"])) for r in page["results"])
            after = _next(page)
            if after is None:
                return found

    def users(self) -> pd.DataFrame:
        owners, after = [], None
        while True:
            page = self._call(lambda: self.api.crm.owners.owners_api.get_page(limit=100, after=after))
            owners.extend(o.to_dict() for o in page.results)
            after = page.paging.next.after if page.paging and page.paging.next else None
            if not after:
                break
        return CrmUser.validate(pd.DataFrame({
            "crm_id": [str(o["id"]) for o in owners], "email": [o.get("email") for o in owners],
            "first_name": [o.get("first_name") for o in owners], "last_name": [o.get("last_name") for o in owners],
            "is_active": [not o.get("archived", False) for o in owners],
            "raw": [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in o.items()} for o in owners]}))


def _links(write: Write) -> dict[str, Any]:
    """The write's properties with its owner and primary company (HubSpot moves the primary
    company association when associatedcompanyid is written)."""
    properties = {k: ("" if v is None else v) for k, v in write.fields.items()}
    if write.owner_id:
        properties["hubspot_owner_id"] = write.owner_id
    if write.company_id and write.company_link == "primary":
        properties["associatedcompanyid"] = write.company_id
    return properties


def _millis(value: datetime) -> str:
    return str(int(pd.Timestamp(value).timestamp() * 1000))


def _filter(name: str, operator: str, value: datetime) -> dict[str, str]:
    return {"propertyName": name, "operator": operator, "value": _millis(value)}


def _modified(row: dict[str, Any], name: str) -> datetime:
    return pd.Timestamp(row["properties"].get(name) or row["updated_at"]).to_pydatetime()


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    """A record as HubSpot's JSON has it; its times as the ISO text HubSpot sent."""
    return {"id": str(record["id"]), "properties": record.get("properties") or {},
            "updated_at": record.get("updatedAt"), "archived_at": record.get("archivedAt")}


def _next(page: dict[str, Any]) -> str | None:
    """The cursor of the page after ``page``, if there is one."""
    return ((page.get("paging") or {}).get("next") or {}).get("after")


def _canonical(obj: CrmObject, rows: list[dict[str, Any]], settings: "HubSpotResource") -> pd.DataFrame:
    props = [r["properties"] for r in rows]

    def col(name: str) -> list[Any]:
        return [p.get(name) or None for p in props]

    common = {
        "crm_id": [r["id"] for r in rows], "owner_id": col("hubspot_owner_id"),
        "last_modified": pd.to_datetime([r["updated_at"] for r in rows], utc=True, format="ISO8601"),
        "is_deleted": [bool(r["archived"]) for r in rows], "raw": props,
    }
    if obj == "companies":
        return CrmCompany.validate(pd.DataFrame({
            **common, "name": col("name"), "domain": col("domain"),
            "linkedin_url": col(settings.company_linkedin_property)}))
    return CrmContact.validate(pd.DataFrame({
        **common, "first_name": col("firstname"), "last_name": col("lastname"), "company_name": col("company"),
        "email": col("email"), "linkedin_url": col(settings.linkedin_property), "phone": col("phone"),
        "job_title": col("jobtitle"), "account_id": col("associatedcompanyid")}))


class HubSpotResource(CrmResource):
    """A HubSpot account through a private app's access token."""

    access_token: str = Field(description="the private app's token; bind with EnvVar")
    host: str = "https://api.hubapi.com"
    ca_bundle: str = Field("", description="CA file to trust (a local sandbox); empty: the system's")
    linkedin_property: str = Field("hs_linkedin_url", description="contact property with the LinkedIn URL")
    company_linkedin_property: str = Field("linkedin_company_page", description="company property with the LinkedIn page")
    enginy_id_property: str = Field("enginy_id", description="unique property holding Enginy's id; creates "
                                                             "upsert on it")
    activity_id_property: str = Field("enginy_activity_id", description="engagement property holding the "
                                                                       "Enginy event a logged activity came from")
    search_calls_per_second: float = Field(4.0, gt=0, description="pace of search calls; HubSpot allows 5 a second")
    parallel_batches: int = Field(4, ge=1, le=10, description="batch calls of a push sent at once; a private app "
                                                              "may make 190 calls per 10 s (100 on Free and "
                                                              "Starter), and a 429 is waited out")
    calls_per_ten_seconds: int = Field(190, ge=1, description="the portal's burst limit (190 for a private app on "
                                                              "Professional and Enterprise, 100 on Free and Starter): "
                                                              "calls other than search are paced under it")
    search_lag_seconds: float = Field(
        10.0, ge=0, description="how long after a write HubSpot's search may still miss it (documented as "
                                "seconds): an activity whose create got no answer is searched for only this "
                                "long after it, unless its key property has unique values (then it is read by key)")
    modified_property: dict[str, str] = Field(
        default_factory=lambda: {"contacts": "lastmodifieddate", "companies": "hs_lastmodifieddate"},
        description="the last-modified property searched per object")

    def client(self) -> HubSpotClient:
        return HubSpotClient(self)
