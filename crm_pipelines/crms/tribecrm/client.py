"""TribeCRM through its OData REST API and an API key (crm_pipelines.crms.wire.rest).

Persons (``Relation_Person``) are our contacts and organizations (``Relation_Organization``) our
companies. A person works at an organization through an employment — a
``Relationship_Person_Contact_Standard`` whose ``Relation`` is the organization — which also
holds the job title: a contact's ``account_id`` and ``JobTitle`` come from its most recently
changed employment, and a job title is written there (for a contact at no organization it cannot
be written). Users are the account's employees. Custom fields are named by their API names
(``_`` + GUID, as TribeCRM's Configuration shows them); the Enginy id field is found by its label.

Pulls filter on the modification date and follow ``@odata.nextLink``. TribeCRM deletes records
for good and lists no deletions, so an incremental pull also lists every id still there
(``$select=ID``): snapshot records missing from it are marked deleted (``PullResult.live_ids``).

Push: one record a call with no upsert, so a create first looks the Enginy id up and updates what
it finds; a create whose answer was lost is looked up again rather than sent again
(rest.create_once). Employments are created the same way, found by person and organization.
"""

import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from typing import Any, Iterator

import pandas as pd
from pydantic import Field

from crm_pipelines.canonical import CrmCompany, CrmContact, CrmUser, empty
from crm_pipelines.crms.base import (
    PROGRESS_EVERY, CrmField, CrmObject, CrmResource, Progress, PullResult, Write, WriteResult, push_one_by_one,
)
from crm_pipelines.crms.wire.rest import ApiKey, NextLinkPaging, RestClient, RestError, create_once
from crm_pipelines.crms.wire.query_literals import odata_string
from crm_pipelines.crms.wire.retries import TransientCrmError
from crm_pipelines.progress import Reading

PERSON, ORGANIZATION = "Relation_Person", "Relation_Organization"
EMPLOYMENT, EMPLOYEE = "Relationship_Person_Contact_Standard", "Relationship_Person_Contact_Employee"
ENTITY_SETS = {"contacts": PERSON, "companies": ORGANIZATION}
# A contact's fields that live on its employment rather than on the person.
EMPLOYMENT_FIELDS = ("JobTitle", "Department")
SYSTEM = ("ID", "DateCreated", "DateModified")
# OData types → the type names crm_pipelines.export.values knows.
TYPES = {"Edm.String": "string", "Edm.Int32": "integer", "Edm.Int64": "integer", "Edm.Double": "double",
         "Edm.Decimal": "double", "Edm.Boolean": "boolean", "Edm.DateTimeOffset": "datetime", "Edm.Date": "date",
         "Edm.Guid": "id"}
IDS_A_FILTER = 20  # ids OR-ed into one $filter, well under URL limits
_EDM = "{http://docs.oasis-open.org/odata/ns/edm}"


def _time(value: Any) -> pd.Timestamp | None:
    if not value:
        return None
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def odata_time(value: datetime) -> str:
    """An OData v4 DateTimeOffset literal (unquoted), in UTC to the millisecond."""
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _ids_filter(name: str, ids: list[str]) -> str:
    # Ids are GUIDs the CRM gave us; anything else would be a malformed filter, so refuse it.
    for value in ids:
        if not all(c in "0123456789abcdefABCDEF-" for c in value):
            raise ValueError(f"{value!r} is not a TribeCRM id")
    return " or ".join(f"{name} eq {value}" for value in ids)


class TribeCrmClient:
    """The CrmClient for one TribeCRM account."""

    crm = "tribecrm"

    def __init__(self, settings: "TribeCrmResource") -> None:
        self.settings = settings
        self.rest = RestClient(settings.base_url, ApiKey("Authorization", settings.api_key, prefix="Bearer "),
                               verify=settings.ca_bundle or None, name="TribeCRM")
        self.progress: Progress = lambda message: None
        self._metadata: dict[str, list[dict[str, Any]]] | None = None

    # --- fields -----------------------------------------------------------------------------
    def _properties(self, entity_set: str) -> list[dict[str, Any]]:
        """The entity's properties from the service's $metadata (read once per client)."""
        if self._metadata is None:
            root = ET.fromstring(self.rest.request("GET", "$metadata"))
            self._metadata = {
                t.get("Name"): [{"name": p.get("Name"), "type": p.get("Type"), "required": p.get("Nullable") == "false",
                                 "label": next((a.get("String") for a in p.iter(f"{_EDM}Annotation")
                                                if a.get("Term") == "Core.Description"), None)}
                                for p in t.iter(f"{_EDM}Property")]
                for t in root.iter(f"{_EDM}EntityType")}
        return self._metadata.get(entity_set, [])

    def describe(self, obj: CrmObject) -> list[CrmField]:
        if obj not in ENTITY_SETS:
            raise LookupError(f"TribeCRM has no {obj} object")
        props = self._properties(ENTITY_SETS[obj])
        if obj == "contacts":
            props = props + [p for p in self._properties(EMPLOYMENT) if p["name"] in EMPLOYMENT_FIELDS]
        enginy = self.enginy_id_field
        return [CrmField(name=p["name"], label=p["label"] or p["name"], type=TYPES.get(p["type"], "string"),
                         createable=p["name"] not in SYSTEM, updateable=p["name"] not in SYSTEM,
                         required=p["required"] and p["name"] != "ID", unique=p["name"] in ("ID", enginy),
                         external_id=p["name"] == enginy) for p in props]

    @property
    def enginy_id_field(self) -> str:
        """The API name of the custom field labelled ``enginy_id_label`` (creates look it up)."""
        for entity_set in (PERSON, ORGANIZATION):
            found = next((p["name"] for p in self._properties(entity_set)
                          if p["label"] == self.settings.enginy_id_label), None)
            if found:
                return found
        raise LookupError(f"TribeCRM has no custom field labelled {self.settings.enginy_id_label!r} on persons "
                          "and organizations: create it (Configuration → Relations → Fields) or set enginy_id_label")

    # --- pulls ------------------------------------------------------------------------------
    def _list(self, entity_set: str, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        reading, read = Reading(self.progress, entity_set, every=PROGRESS_EVERY), 0
        for n, page in enumerate(self.rest.pages(entity_set, NextLinkPaging(records="value"), params), start=1):
            read += len(page.records)
            reading.page(read, n)
            yield page.records

    def _window(self, since: datetime | None, until: datetime | None) -> str | None:
        field = self.settings.modified_field
        parts = ([f"{field} ge {odata_time(since)}"] if since else []) + (
            [f"{field} lt {odata_time(until)}"] if until else [])
        return " and ".join(parts) or None

    def _rows(self, entity_set: str, where: str | None, **params: Any) -> tuple[list[dict[str, Any]], int]:
        query = {"$orderby": f"{self.settings.modified_field} asc", **params}
        if where:
            query["$filter"] = where
        rows, pages = [], 0
        for pages, records in enumerate(self._list(entity_set, query), start=1):
            rows.extend(records)
        return rows, pages

    def _by_ids(self, entity_set: str, name: str, ids: list[str], **params: Any) -> tuple[list[dict[str, Any]], int]:
        rows, pages = [], 0
        for start in range(0, len(ids), IDS_A_FILTER):
            found, more = self._rows(entity_set, _ids_filter(name, ids[start:start + IDS_A_FILTER]), **params)
            rows, pages = rows + found, pages + more
        return rows, pages

    def pull(self, obj: CrmObject, since: datetime | None, until: datetime | None,
             state: dict[str, Any] | None = None) -> PullResult:
        calls_before = self.rest.api_calls
        if obj == "users":
            return PullResult(self.users(), None, api_calls=self.rest.api_calls - calls_before, pages=1)
        if obj not in ENTITY_SETS:
            return PullResult(empty(CrmContact), None)
        where = self._window(since, until)
        rows, pages = self._rows(ENTITY_SETS[obj], where)
        employments: list[dict[str, Any]] = []
        if obj == "contacts":
            employments, more = self._employments(rows, where, since is None and until is None)
            pages += more
        live = None
        if since is not None and until is None:  # an incremental pull: what is still there
            ids, more = self._rows(ENTITY_SETS[obj], None, **{"$select": "ID"})
            live, pages = {str(r["ID"]) for r in ids}, pages + more
        records = self._canonical(obj, rows, employments, since)
        cursor = records["last_modified"].max() if len(records) else None
        return PullResult(records, None if cursor is None or pd.isna(cursor) else cursor.to_pydatetime(),
                          api_calls=self.rest.api_calls - calls_before, pages=pages, live_ids=live)

    def _employments(self, persons: list[dict[str, Any]], where: str | None,
                     everything: bool) -> tuple[list[dict[str, Any]], int]:
        """The employments of the pulled persons and those changed in the window; a changed
        employment brings its person into the pull."""
        expand = {"$expand": "Person($select=ID),Relation($select=ID)",
                  "$select": ",".join(("ID", self.settings.modified_field) + EMPLOYMENT_FIELDS)}
        if everything:
            return self._rows(EMPLOYMENT, None, **expand)
        ids = [str(p["ID"]) for p in persons]
        clauses = [f"({_ids_filter('Person/ID', ids[i:i + IDS_A_FILTER])})" for i in range(0, len(ids), IDS_A_FILTER)]
        if where:  # the changed employments ride along with the first clause: one call fewer
            clauses = [" or ".join([f"({where})"] + clauses[:1])] + clauses[1:]
        rows, pages = [], 0
        for clause in clauses:
            found, more = self._rows(EMPLOYMENT, clause, **expand)
            rows, pages = rows + found, pages + more
        missing = sorted({_person_of(e) for e in rows} - set(ids) - {None})
        if missing:
            # Persons whose only change is an employment: that employment is their newest, the
            # one their contact takes, so their other employments need not be read.
            found, more = self._by_ids(PERSON, "ID", missing)
            persons.extend(found)
            pages += more
        unique = {str(e["ID"]): e for e in rows}
        return list(unique.values()), pages

    def _canonical(self, obj: str, rows: list[dict[str, Any]], employments: list[dict[str, Any]],
                   since: datetime | None) -> pd.DataFrame:
        model = CrmCompany if obj == "companies" else CrmContact
        modified = self.settings.modified_field
        rows = list({str(r["ID"]): r for r in rows}.values())
        if not rows:
            return empty(model)
        raw = [{k: v for k, v in r.items() if not k.startswith("@") and k not in ("_Type", "_Name")} for r in rows]

        def col(name: str) -> list[Any]:
            return [r.get(name) or None for r in raw]

        common = {"crm_id": [str(r["ID"]) for r in raw], "owner_id": [None] * len(raw),
                  "last_modified": pd.to_datetime(col(modified), utc=True), "is_deleted": [False] * len(raw)}
        if obj == "companies":
            return CrmCompany.validate(pd.DataFrame({
                **common, "raw": raw, "name": col("Name"), "domain": col(self.settings.website_field),
                "linkedin_url": col(self.settings.linkedin_field)}))
        latest: dict[str, dict[str, Any]] = {}
        for e in sorted(employments, key=lambda e: (_time(e.get(modified)) or pd.Timestamp.min.tz_localize("UTC"))):
            if _person_of(e):
                latest[_person_of(e)] = e  # the most recently changed employment wins
        works = [latest.get(str(r["ID"]), {}) for r in raw]
        for r, e in zip(raw, works):
            r.update({name: e.get(name) for name in EMPLOYMENT_FIELDS})
        stamps = [max(t for t in (_time(r.get(modified)), _time(e.get(modified))) if t is not None)
                  for r, e in zip(raw, works)]
        return CrmContact.validate(pd.DataFrame({
            **common, "last_modified": pd.to_datetime(stamps, utc=True), "raw": raw,
            "first_name": col("FirstName"), "last_name": col("LastName"), "company_name": None,
            "email": col("EmailAddress"), "linkedin_url": col(self.settings.linkedin_field),
            "phone": col("PhoneNumber"), "job_title": col("JobTitle"),
            "account_id": [str((e.get("Relation") or {}).get("ID") or "") or None for e in works]}))

    def latest_change(self, obj: CrmObject, since: datetime | None) -> datetime | None:
        if obj not in ENTITY_SETS:
            return None
        modified = self.settings.modified_field
        params = {"$orderby": f"{modified} desc", "$top": 1, "$select": f"ID,{modified}"}
        if since is not None:
            params["$filter"] = f"{modified} gt {odata_time(since)}"
        latest = []
        for entity_set in (ENTITY_SETS[obj],) + ((EMPLOYMENT,) if obj == "contacts" else ()):
            rows = self.rest.request("GET", entity_set, params=params).get("value") or []
            latest += [_time(rows[0][modified])] if rows else []
        return max(latest).to_pydatetime() if latest else None

    def users(self) -> pd.DataFrame:
        rows, _ = self._rows(EMPLOYEE, None, **{"$expand": "Person($select=FirstName,LastName,EmailAddress)"})
        people = [r.get("Person") or {} for r in rows]
        return CrmUser.validate(pd.DataFrame({
            "crm_id": [str(r["ID"]) for r in rows],
            "email": [r.get("EmailAddress") or p.get("EmailAddress") for r, p in zip(rows, people)],
            "first_name": [p.get("FirstName") for p in people], "last_name": [p.get("LastName") for p in people],
            "is_active": [r.get("IsActive") is not False for r in rows], "raw": rows}))

    @property
    def api_calls(self) -> int:
        return self.rest.api_calls

    # --- push -------------------------------------------------------------------------------
    def push(self, obj: CrmObject, writes: list[Write]) -> list[WriteResult]:
        """One call a write (two for a contact whose employment changes), ``parallel_writes`` at once."""
        if obj not in ENTITY_SETS:
            return [WriteResult(w.write_id, "rejected", error=f"TribeCRM has no {obj} object") for w in writes]
        return push_one_by_one(obj, writes, lambda write: self._push_one(obj, write), self.progress,
                               self.settings.parallel_writes)

    def _push_one(self, obj: str, write: Write) -> WriteResult:
        entity_set = ENTITY_SETS[obj]
        values = {k: v for k, v in write.fields.items() if k not in EMPLOYMENT_FIELDS}
        work = {k: v for k, v in write.fields.items() if k in EMPLOYMENT_FIELDS}
        try:
            if write.action == "update":
                crm_id, created = str(write.crm_id), False
                if values:
                    self.rest.request("PATCH", f"{entity_set}({crm_id})", json=values)
            else:
                enginy = self.enginy_id_field
                crm_id, created = create_once(
                    lambda: self._find(entity_set, f"{enginy} eq {odata_string(write.enginy_id)}"),
                    lambda: str(self.rest.request("POST", entity_set, json={**values, enginy: write.enginy_id})["ID"]),
                    lambda found: self.rest.request("PATCH", f"{entity_set}({found})", json=values) if values else None)
            if obj == "contacts":
                self._employ(crm_id, write, work)
            return WriteResult(write.write_id, "created" if created else "updated", crm_id)
        except (ValueError, LookupError) as error:
            return WriteResult(write.write_id, "rejected", error=str(error))
        except RestError as error:
            if error.status in (401, 403):
                raise
            if error.status in (404, 410):
                return WriteResult(write.write_id, "rejected", error="the record no longer exists in TribeCRM",
                                   error_code="NOT_FOUND")
            body = error.body.get("error") if isinstance(error.body, dict) else None
            message = body.get("message") if isinstance(body, dict) else error.message
            code = body.get("code") if isinstance(body, dict) else str(error.status)
            return WriteResult(write.write_id, "rejected", error=message, error_code=code)
        except TransientCrmError as error:  # retries spent: the next run sends it again
            return WriteResult(write.write_id, "failed", error=str(error))

    def _find(self, entity_set: str, where: str) -> str | None:
        rows = self.rest.request("GET", entity_set, params={"$filter": where, "$select": "ID", "$top": 1}
                                 ).get("value") or []
        return str(rows[0]["ID"]) if rows else None

    def _employ(self, person: str, write: Write, work: dict[str, Any]) -> None:
        """The person's employment at the write's company (created once), with the job title;
        the one at the company it replaces ends."""
        if write.unlink_company_id and write.unlink_company_id != write.company_id:
            gone = self._find(EMPLOYMENT, f"{_ids_filter('Person/ID', [person])} and "
                                          f"{_ids_filter('Relation/ID', [write.unlink_company_id])}")
            if gone:
                self.rest.request("DELETE", f"{EMPLOYMENT}({gone})")
        company = write.company_id
        if company is None:
            if not work:
                return
            # No company named: the job title goes to the employment the person has, if any.
            found = self._find(EMPLOYMENT, _ids_filter("Person/ID", [person]))
            if found:
                self.rest.request("PATCH", f"{EMPLOYMENT}({found})", json=work)
            return
        where = f"{_ids_filter('Person/ID', [person])} and {_ids_filter('Relation/ID', [company])}"
        create_once(lambda: self._find(EMPLOYMENT, where),
                    lambda: str(self.rest.request("POST", EMPLOYMENT, json={
                        "Person": {"ID": person}, "Relation": {"ID": company}, **work})["ID"]),
                    lambda found: self.rest.request("PATCH", f"{EMPLOYMENT}({found})", json=work) if work else None)


def _person_of(employment: dict[str, Any]) -> str | None:
    person = employment.get("Person") or {}
    return str(person["ID"]) if person.get("ID") else None


class TribeCrmResource(CrmResource):
    """A TribeCRM account through an API key."""

    api_key: str = Field(description="the API key, sent as a bearer token; bind with EnvVar")
    base_url: str = Field("https://api.tribecrm.nl/v1/odata", description="the OData service root")
    ca_bundle: str = Field("", description="CA file to trust (a local sandbox); empty: the system's")
    enginy_id_label: str = Field("Enginy Id", description="label of the custom field holding Enginy's id on persons "
                                                          "and organizations")
    linkedin_field: str = Field("LinkedIn", description="the field with the LinkedIn URL")
    website_field: str = Field("Website", description="the organization field with the website or domain")
    modified_field: str = Field("DateModified", description="the modification date every pull filters on")
    parallel_writes: int = Field(4, ge=1, le=16, description="write calls at once during a push (one record a call)")

    def client(self) -> TribeCrmClient:
        return TribeCrmClient(self)
