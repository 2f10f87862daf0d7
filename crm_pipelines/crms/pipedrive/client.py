"""Pipedrive through its REST API and an API token (crm_pipelines.crms.wire.rest).

Persons are our contacts, organizations our companies, leads our leads. Custom fields travel
under 40-character hashed keys; this adapter shows them by their names everywhere (``raw``,
``describe``, the field mapping) and translates on the wire, so an integration config says
``crm_field: LinkedIn``, never ``crm_field: fb625d84…``.

Pulls: a first (or full) pull lists API v2 by id with its cursor; an incremental pull reads
API v1 ``recents`` since the cursor, which reports deleted records too (``active_flag: false``);
a bounded window (a backfill) lists API v2 with ``updated_since``/``updated_until``. Leads have
no such filter: they are listed newest first until the window is passed, and Pipedrive cannot
tell a deleted lead from one that never existed.

Push: Pipedrive writes one record a call and has no upsert, so a create first searches the
Enginy Id field, exactly, and updates what it finds — a create whose answer was lost is found
there on the retry instead of being made twice (rest.create_once).
"""

from datetime import datetime, timezone
from typing import Any, Iterator

import pandas as pd
from pydantic import Field

from crm_pipelines.canonical import CrmCompany, CrmContact, CrmUser, empty
from crm_pipelines.crms.base import (
    PROGRESS_EVERY, CrmField, CrmObject, CrmResource, Progress, PullResult, Write, WriteResult, push_one_by_one,
)
from crm_pipelines.crms.wire.rest import (
    ApiKey, CursorPaging, OffsetPaging, Page, RateLimitHeaders, RestClient, RestError, create_once,
)
from crm_pipelines.crms.wire.retries import TransientCrmError
from crm_pipelines.progress import Reading

# Our object → (Pipedrive entity path, its fields endpoint, the recents item name).
ENTITIES = {"contacts": ("persons", "personFields", "person"), "companies": ("organizations", "organizationFields",
                                                                             "organization"),
            "leads": ("leads", "leadFields", None)}
# Pipedrive field types → the type names crm_pipelines.export.values knows.
TYPES = {"varchar": "string", "varchar_auto": "string", "text": "textarea", "double": "double",
         "monetary": "currency", "int": "integer", "enum": "enumeration", "set": "multipicklist", "date": "date",
         "phone": "phone", "user": "owner", "org": "reference", "people": "reference", "address": "string"}
READ_ONLY = {"id", "add_time", "update_time"}
# Built-in fields a write sends at the top level of the body; the rest are custom fields.
TOP_LEVEL = {"contacts": {"name", "first_name", "last_name", "job_title", "owner_id", "org_id"},
             "companies": {"name", "address", "owner_id"},
             "leads": {"title", "owner_id", "person_id", "organization_id"}}


def _time(value: Any) -> pd.Timestamp | None:
    if not value:
        return None
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _primary(items: Any) -> str | None:
    """The primary value of a Pipedrive email or phone list."""
    values = [i for i in items or [] if isinstance(i, dict) and i.get("value")]
    chosen = next((i for i in values if i.get("primary")), values[0] if values else None)
    return chosen["value"] if chosen else None


def _ref(value: Any) -> str | None:
    """An id given as a number or, in API v1, as an object ({value, name} or {id, name})."""
    if isinstance(value, dict):
        value = value.get("value", value.get("id"))
    return None if value in (None, "") else str(value)


class PipedriveClient:
    """The CrmClient for one Pipedrive company account."""

    crm = "pipedrive"
    # A lead hangs on an organization (or a person): the export links it like a contact.
    leads_link_to_companies = True

    def __init__(self, settings: "PipedriveResource") -> None:
        self.settings = settings
        self.rest = RestClient(settings.base_url, ApiKey("x-api-token", settings.api_token),
                               RateLimitHeaders(reserve=settings.rate_limit_reserve),
                               verify=settings.ca_bundle or None, name="Pipedrive")
        self.progress: Progress = lambda message: None
        self._fields: dict[str, list[dict[str, Any]]] = {}

    # --- fields -----------------------------------------------------------------------------
    def _field_defs(self, obj: str) -> list[dict[str, Any]]:
        if obj not in self._fields:
            paging = OffsetPaging(limit=self.settings.page_size)
            self._fields[obj] = [f for page in self.rest.pages(f"/v1/{ENTITIES[obj][1]}", paging)
                                 for f in page.records]
        return self._fields[obj]

    def _custom_names(self, obj: str) -> dict[str, str]:
        """Hashed key → field name of the object's custom fields."""
        return {f["key"]: f["name"] for f in self._field_defs(obj) if len(f["key"]) == 40 and f.get("edit_flag")}

    def _custom_key(self, obj: str, name: str) -> str | None:
        return next((key for key, n in self._custom_names(obj).items() if n == name), None)

    def describe(self, obj: CrmObject) -> list[CrmField]:
        if obj not in ENTITIES:
            raise LookupError(f"Pipedrive has no {obj} object")
        custom = self._custom_names(obj)
        fields = []
        for f in self._field_defs(obj):
            name = custom.get(f["key"], f["key"])
            writable = f["key"] not in READ_ONLY and bool(f.get("bulk_edit_allowed", True))
            options = f.get("options") or []
            fields.append(CrmField(
                name=name, label=f.get("name") or name, type=TYPES.get(f.get("field_type"), "string"),
                createable=writable, updateable=writable, required=bool(f.get("mandatory_flag")),
                options=tuple(str(o["id"]) for o in options), option_labels=tuple(str(o["label"]) for o in options),
                unique=name == self.settings.enginy_id_name, external_id=name == self.settings.enginy_id_name))
        return fields

    # --- pulls ------------------------------------------------------------------------------
    def pull(self, obj: CrmObject, since: datetime | None, until: datetime | None,
             state: dict[str, Any] | None = None) -> PullResult:
        calls_before = self.rest.api_calls
        if obj == "users":
            return PullResult(self.users(), None, api_calls=self.rest.api_calls - calls_before, pages=1)
        if obj == "leads":
            rows, pages = self._leads(since, until)
        elif since is not None and until is None:
            rows, pages = self._recents(obj, since)
        else:
            params: dict[str, Any] = {"sort_by": "id" if since is None else "update_time"}
            if since is not None:
                params["updated_since"] = _rfc3339(since)
            if until is not None:
                params["updated_until"] = _rfc3339(until)
            rows, pages = self._collect(obj, self.rest.pages(f"/api/v2/{ENTITIES[obj][0]}",
                                                             CursorPaging(limit=self.settings.page_size), params))
        records = self._canonical(obj, rows)
        cursor = records["last_modified"].max() if len(records) else None
        return PullResult(records, None if cursor is None or pd.isna(cursor) else cursor.to_pydatetime(),
                          api_calls=self.rest.api_calls - calls_before, pages=pages)

    def _collect(self, obj: str, pages: Iterator[Page]) -> tuple[list[dict[str, Any]], int]:
        rows: list[dict[str, Any]] = []
        count = 0
        reading = Reading(self.progress, obj, every=PROGRESS_EVERY)
        for count, page in enumerate(pages, start=1):
            rows.extend(page.records)
            reading.page(len(rows), count)
        return rows, count

    def _recents(self, obj: str, since: datetime) -> tuple[list[dict[str, Any]], int]:
        """Changes since ``since``, deletions included, newest version of each record last."""
        item = ENTITIES[obj][2]
        params = {"items": item, "since_timestamp": since.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")}
        changes, pages = self._collect(obj, self.rest.pages("/v1/recents", OffsetPaging(limit=self.settings.page_size),
                                                            params))
        latest = {c["id"]: c["data"] for c in changes if c.get("item") == item and c.get("data")}
        return list(latest.values()), pages

    def _leads(self, since: datetime | None, until: datetime | None) -> tuple[list[dict[str, Any]], int]:
        rows: list[dict[str, Any]] = []
        pages = 0
        low, high = _time(since), _time(until)
        params = {"archived_status": "all", "sort": "update_time DESC"}
        for pages, page in enumerate(self.rest.pages("/v1/leads", OffsetPaging(limit=self.settings.page_size),
                                                     params), start=1):
            stamps = [_time(r.get("update_time")) for r in page.records]
            rows.extend(r for r, t in zip(page.records, stamps)
                        if (low is None or t >= low) and (high is None or t < high))
            if low is not None and stamps and stamps[-1] < low:
                break  # newest first: the rest is older than the window
        return rows, pages

    def _persons(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """Persons by id (the people behind leads), a hundred ids a call."""
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), 100):
            params = {"ids": ",".join(ids[start:start + 100])}
            for page in self.rest.pages("/api/v2/persons", CursorPaging(limit=100), params):
                found.update((str(p["id"]), p) for p in page.records)
        return found

    def _canonical(self, obj: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
        model = CrmCompany if obj == "companies" else CrmContact
        if not rows:
            return empty(model)
        custom = self._custom_names(obj)
        plain = [_plain(row, custom) for row in rows]
        if obj == "leads":
            people = self._persons(sorted({p["person_id"] for p in plain if p.get("person_id")}))
            person_names = self._custom_names("contacts")
            for p in plain:
                person = _plain(people[p["person_id"]], person_names) if p.get("person_id") in people else {}
                p.update({k: person.get(k) for k in ("first_name", "last_name", "email", "phone", "job_title",
                                                     self.settings.linkedin_field)})
                p["org_id"] = p.get("organization_id") or person.get("org_id")

        def col(name: str) -> list[Any]:
            return [p.get(name) for p in plain]

        common = {"crm_id": col("id"), "owner_id": col("owner_id"), "is_deleted": col("is_deleted"),
                  "last_modified": pd.to_datetime(col("update_time"), utc=True),
                  "raw": [{k: v for k, v in p.items() if k not in ("update_time", "is_deleted")} for p in plain]}
        if obj == "companies":
            return CrmCompany.validate(pd.DataFrame({
                **common, "name": col("name"), "domain": col(self.settings.website_field),
                "linkedin_url": col(self.settings.linkedin_field)}))
        return CrmContact.validate(pd.DataFrame({
            **common, "first_name": col("first_name"), "last_name": col("last_name"), "company_name": None,
            "email": col("email"), "linkedin_url": col(self.settings.linkedin_field), "phone": col("phone"),
            "job_title": col("job_title"), "account_id": col("org_id")}))

    def latest_change(self, obj: CrmObject, since: datetime | None) -> datetime | None:
        if obj == "leads":
            answer = self.rest.request("GET", "/v1/leads", params={"limit": 1, "sort": "update_time DESC",
                                                                  "archived_status": "all"})
        elif obj in ENTITIES:
            params: dict[str, Any] = {"limit": 1, "sort_by": "update_time", "sort_direction": "desc"}
            if since is not None:
                params["updated_since"] = _rfc3339(since)
            answer = self.rest.request("GET", f"/api/v2/{ENTITIES[obj][0]}", params=params)
        else:
            return None
        rows = answer.get("data") or []
        latest = _time(rows[0].get("update_time")) if rows else None
        # update_time has whole seconds, as has the cursor pulls leave: never report the cursor itself.
        return latest.to_pydatetime() if latest is not None and (since is None or latest > _time(since)) else None

    def users(self) -> pd.DataFrame:
        users = self.rest.request("GET", "/v1/users").get("data") or []
        names = [(u.get("name") or "").split(" ", 1) for u in users]
        return CrmUser.validate(pd.DataFrame({
            "crm_id": [str(u["id"]) for u in users], "email": [u.get("email") for u in users],
            "first_name": [n[0] or None for n in names], "last_name": [n[1] if len(n) > 1 else None for n in names],
            "is_active": [bool(u.get("active_flag", True)) for u in users], "raw": users}))

    # --- push -------------------------------------------------------------------------------
    @property
    def enginy_id_field(self) -> str:
        """The custom field (by name) holding Enginy's id; creates look it up before writing."""
        return self.settings.enginy_id_name

    def push(self, obj: CrmObject, writes: list[Write]) -> list[WriteResult]:
        """One call a write, ``parallel_writes`` at once, within the rate limit the answers report."""
        if obj not in ENTITIES:
            return [WriteResult(w.write_id, "rejected", error=f"Pipedrive has no {obj} object") for w in writes]
        return push_one_by_one(obj, writes, lambda write: self._push_one(obj, write), self.progress,
                               self.settings.parallel_writes)

    def _push_one(self, obj: str, write: Write) -> WriteResult:
        path = "/v1/leads" if obj == "leads" else f"/api/v2/{ENTITIES[obj][0]}"
        try:
            if write.action == "update":
                self.rest.request("PATCH", f"{path}/{write.crm_id}", json=self._body(obj, write, creating=False))
                return WriteResult(write.write_id, "updated", write.crm_id)
            crm_id, created = create_once(
                lambda: self._find_by_enginy_id(obj, write.enginy_id),
                lambda: str(self.rest.request("POST", path, json=self._body(obj, write, creating=True))["data"]["id"]),
                lambda found: self.rest.request("PATCH", f"{path}/{found}",
                                                json=self._body(obj, write, creating=False)))
            return WriteResult(write.write_id, "created" if created else "updated", crm_id)
        except ValueError as error:  # a field the object does not have, an id that is not a number
            return WriteResult(write.write_id, "rejected", error=str(error))
        except RestError as error:
            if error.status in (401, 403):
                raise
            if error.status in (404, 410):
                return WriteResult(write.write_id, "rejected", error="the record no longer exists in Pipedrive",
                                   error_code="NOT_FOUND")
            return WriteResult(write.write_id, "rejected", error=error.message, error_code=str(error.status))
        except TransientCrmError as error:  # retries spent: the next run sends it again
            return WriteResult(write.write_id, "failed", error=str(error))

    def _find_by_enginy_id(self, obj: str, enginy_id: str) -> str | None:
        if obj == "leads":
            key = self._custom_key("leads", self.settings.enginy_id_name)
            for page in self.rest.pages("/v1/leads", OffsetPaging(limit=self.settings.page_size),
                                        {"archived_status": "all"}):
                hit = next((r for r in page.records if key and r.get(key) == enginy_id), None)
                if hit is not None:
                    return str(hit["id"])
            return None
        answer = self.rest.request("GET", f"/api/v2/{ENTITIES[obj][0]}/search", params={
            "term": enginy_id, "fields": "custom_fields", "exact_match": "true", "limit": 2})
        items = (answer.get("data") or {}).get("items") or []
        return str(items[0]["item"]["id"]) if items else None

    def _body(self, obj: str, write: Write, creating: bool) -> dict[str, Any]:
        """The write as Pipedrive takes it: built-in fields at the top, custom ones by key."""
        custom_keys = {name: key for key, name in self._custom_names(obj).items()}
        values = dict(write.fields)
        if creating:
            values[self.settings.enginy_id_name] = write.enginy_id
        if write.owner_id:
            values["owner_id"] = write.owner_id
        if write.company_id and obj != "companies":
            values["organization_id" if obj == "leads" else "org_id"] = write.company_id
        if creating and obj == "contacts" and not values.get("name"):
            values["name"] = " ".join(str(values[k]) for k in ("first_name", "last_name") if values.get(k)) \
                or values.get("email") or write.enginy_id
        if creating and obj == "leads" and not values.get("title"):
            values["title"] = write.enginy_id
        body: dict[str, Any] = {}
        custom: dict[str, Any] = {}
        for name, value in values.items():
            if name in ("email", "phone") and obj == "contacts":
                body[f"{name}s"] = [{"value": value, "primary": True, "label": "work"}] if value else []
            elif name in TOP_LEVEL[obj]:
                body[name] = int(value) if name.endswith("_id") and value not in (None, "") else value
            elif name in custom_keys:
                custom[custom_keys[name]] = value
            else:
                raise ValueError(f"{name!r} is not a field of Pipedrive {obj}")
        if obj == "leads":
            return {**body, **custom}  # API v1: custom fields at the top level
        return {**body, "custom_fields": custom} if custom else body


def _rfc3339(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _plain(row: dict[str, Any], custom: dict[str, str]) -> dict[str, Any]:
    """A person, organization or lead from API v1 or v2 as one flat dict: built-in fields by key,
    custom fields by name."""
    values = dict(row.get("custom_fields") or {})  # API v2
    values.update({k: v for k, v in row.items() if k in custom})  # API v1 and leads
    plain = {
        "id": str(row["id"]), "name": row.get("name"), "title": row.get("title"),
        "first_name": row.get("first_name"), "last_name": row.get("last_name"),
        "email": _primary(row.get("emails", row.get("email"))), "phone": _primary(row.get("phones", row.get("phone"))),
        "job_title": row.get("job_title"), "owner_id": _ref(row.get("owner_id")), "org_id": _ref(row.get("org_id")),
        "person_id": _ref(row.get("person_id")), "organization_id": _ref(row.get("organization_id")),
        "update_time": _time(row.get("update_time")),
        "is_deleted": bool(row.get("is_deleted")) or row.get("active_flag") is False,
        **{name: values.get(key) for key, name in custom.items()},
    }
    return {k: (None if v == "" else v) for k, v in plain.items()}


class PipedriveResource(CrmResource):
    """A Pipedrive company account through a user's API token."""

    api_token: str = Field(description="the API token (Settings → Personal preferences → API); bind with EnvVar")
    base_url: str = Field("https://api.pipedrive.com", description="the API host, or the company domain "
                                                                   "https://<company>.pipedrive.com")
    ca_bundle: str = Field("", description="CA file to trust (a local sandbox); empty: the system's")
    enginy_id_name: str = Field("Enginy Id", description="name of the custom field holding Enginy's id on persons, "
                                                         "organizations and leads")
    linkedin_field: str = Field("LinkedIn", description="name of the custom field with the LinkedIn URL")
    website_field: str = Field("Website", description="name of the organization field with the website or domain")
    page_size: int = Field(500, ge=1, le=500, description="records a page (Pipedrive's ceiling is 500)")
    rate_limit_reserve: int = Field(0, ge=0, description="wait for the rate-limit window to reset when this many "
                                                         "calls or fewer are left in it")
    parallel_writes: int = Field(4, ge=1, le=16, description="write calls at once during a push (one record a "
                                                             "call); the rate-limit window is shared by all")

    def client(self) -> PipedriveClient:
        return PipedriveClient(self)
