"""The Custom CRM (beta) adapter: any REST API an API description (custom_api.py) describes,
spoken through crm_pipelines.crms.wire.rest, so paging, retries and rate limits are the same
code as for Pipedrive, Zoho and TribeCRM.

Records are shown under our field names (the description's left-hand side) in ``raw`` and in
``describe``, so the integration config maps ``first_name`` whatever the API calls it. Pulls
send the modified-since parameter when the API has one and filter the window here as well;
deletions are the records the description's ``deleted`` marks. Creates upsert on the Enginy id
where the API can (a PUT to a path holding it), else look the Enginy id up first
(rest.create_once), so a create is never made twice.
"""

import os
from datetime import datetime, timezone
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import Field

from crm_pipelines.canonical import CrmCompany, CrmContact, CrmUser, empty
from crm_pipelines.crms.base import (
    PROGRESS_EVERY, CrmField, CrmObject, CrmResource, Progress, PullResult, Write, WriteResult, push_one_by_one,
)
from crm_pipelines.crms.custom.api import API_FILE_ENV, ENGINY_ID, CustomCrmApi, ObjectApi, load_api
from crm_pipelines.crms.wire.rest import RestClient, RestError, create_once, dig
from crm_pipelines.crms.wire.retries import TransientCrmError
from crm_pipelines.progress import Reading


class CustomCrmClient:
    """The CrmClient for one API described in YAML."""

    crm = "custom"

    def __init__(self, api: CustomCrmApi, key: str, ca_bundle: str = "", base_url: str = "") -> None:
        self.api = api
        self.rest = RestClient(base_url or api.base_url, api.auth.auth(key),
                               api.rate_limit.headers() if api.rate_limit else None, verify=ca_bundle or None,
                               name=api.name)
        self.progress: Progress = lambda message: None

    def _object(self, obj: str) -> ObjectApi:
        spec = self.api.objects().get(obj)
        if spec is None:
            raise LookupError(f"{self.api.name} has no {obj} in its API description")
        return spec

    # --- pulls ------------------------------------------------------------------------------
    def pull(self, obj: CrmObject, since: datetime | None, until: datetime | None,
             state: dict[str, Any] | None = None) -> PullResult:
        calls_before = self.rest.api_calls
        if obj == "users":
            return PullResult(self.users(), None, api_calls=self.rest.api_calls - calls_before)
        if obj not in self.api.objects():
            model = CrmCompany if obj == "companies" else CrmContact
            return PullResult(empty(model), None, notes=[f"{self.api.name} describes no {obj}"])
        spec = self._object(obj)
        rows, pages = self._list(obj, spec, since)
        low, high = _stamp(since), _stamp(until)
        rows = [r for r in rows if (low is None or _modified(spec, r) >= low)
                and (high is None or _modified(spec, r) < high)]
        records = self._canonical(obj, spec, rows)
        cursor = records["last_modified"].max() if len(records) else None
        return PullResult(records, None if cursor is None or pd.isna(cursor) else cursor.to_pydatetime(),
                          api_calls=self.rest.api_calls - calls_before, pages=pages)

    def _list(self, obj: str, spec: ObjectApi, since: datetime | None,
              extra: dict[str, str] | None = None) -> tuple[list[dict[str, Any]], int]:
        params: dict[str, Any] = dict(extra or {})
        if since is not None and spec.modified_since_param:
            params[spec.modified_since_param] = _format(spec, since)
        if spec.deleted is not None and spec.deleted.include_param:
            params[spec.deleted.include_param] = spec.deleted.include_value
        rows: list[dict[str, Any]] = []
        pages = 0
        reading = Reading(self.progress, obj, every=PROGRESS_EVERY)
        for pages, page in enumerate(self.rest.pages(spec.path, self.api.paging.paging(), params), start=1):
            rows.extend(page.records)
            reading.page(len(rows), pages)
        return rows, pages

    def _canonical(self, obj: str, spec: ObjectApi, rows: list[dict[str, Any]]) -> pd.DataFrame:
        model = CrmCompany if obj == "companies" else CrmContact
        if not rows:
            return empty(model)
        ours = [{name: _blank(dig(row, spec.api_name(name))) for name in spec.fields} for row in rows]

        def col(name: str) -> list[Any]:
            return [None if (v := o.get(name)) is None else str(v) for o in ours]

        common = {"crm_id": [str(dig(r, spec.id_field)) for r in rows], "owner_id": col("owner_id"),
                  "last_modified": pd.to_datetime([_modified(spec, r) for r in rows], utc=True),
                  "is_deleted": [spec.deleted is not None and dig(r, spec.deleted.field) == spec.deleted.value
                                 for r in rows],
                  "raw": ours}
        if obj == "companies":
            return CrmCompany.validate(pd.DataFrame({
                **common, "name": col("name"), "domain": col("domain"), "linkedin_url": col("linkedin_url")}))
        return CrmContact.validate(pd.DataFrame({
            **common, **{name: col(name) for name in ("first_name", "last_name", "company_name", "email",
                                                      "linkedin_url", "phone", "job_title")},
            "account_id": col("company_id")}))

    def latest_change(self, obj: CrmObject, since: datetime | None) -> datetime | None:
        spec = self.api.objects().get(obj)
        if spec is None:
            return None
        if spec.newest_first:
            # One row, newest first, when the API can sort; else a list since the cursor.
            first = self.api.paging.model_copy(update={"limit": 1}).paging().first(dict(spec.newest_first), None)
            rows = dig(self.rest.request("GET", spec.path, params=first.params), self.api.paging.records) or []
        else:
            rows, _ = self._list(obj, spec, since)
        stamps = [_modified(spec, r) for r in rows]
        latest = max(stamps) if stamps else None
        return latest.to_pydatetime() if latest is not None and (since is None or latest > _stamp(since)) else None

    def describe(self, obj: CrmObject) -> list[CrmField]:
        spec = self._object(obj)
        return [CrmField(name=name, label=spec.spec(name).api, type=spec.spec(name).type,
                         createable=not spec.spec(name).read_only, updateable=not spec.spec(name).read_only,
                         options=tuple(spec.spec(name).options), option_labels=tuple(spec.spec(name).options),
                         unique=name == ENGINY_ID, external_id=name == ENGINY_ID)
                for name in spec.fields]

    def users(self) -> pd.DataFrame:
        users = self.api.users
        if users is None:
            return empty(CrmUser)
        rows = [r for page in self.rest.pages(users.path, self.api.paging.paging()) for r in page.records]
        return CrmUser.validate(pd.DataFrame({
            "crm_id": [str(dig(r, users.id_field)) for r in rows], "email": [dig(r, users.email_field) for r in rows],
            "first_name": [dig(r, users.first_name_field) for r in rows],
            "last_name": [dig(r, users.last_name_field) for r in rows],
            "is_active": [bool(dig(r, users.active_field)) if users.active_field else True for r in rows],
            "raw": rows}))

    # --- push -------------------------------------------------------------------------------
    @property
    def enginy_id_field(self) -> str:
        return ENGINY_ID

    def push(self, obj: CrmObject, writes: list[Write]) -> list[WriteResult]:
        """One call a write, ``parallel_writes`` (from the description) at once: the description
        names one-record endpoints only."""
        if obj not in self.api.objects():
            return [WriteResult(w.write_id, "rejected", error=f"{self.api.name} describes no {obj}") for w in writes]
        spec = self._object(obj)
        return push_one_by_one(obj, writes, lambda write: self._push_one(obj, spec, write), self.progress,
                               self.api.parallel_writes)

    def _push_one(self, obj: str, spec: ObjectApi, write: Write) -> WriteResult:
        try:
            if write.action == "update":
                self._send(spec, "update", self._body(obj, spec, write, creating=False), record_id=write.crm_id)
                return WriteResult(write.write_id, "updated", write.crm_id)
            body = self._body(obj, spec, write, creating=True)
            if spec.upserts:
                record = self._send(spec, "create", body, enginy_id=write.enginy_id)
                created = self.rest.last_status == 201
                return WriteResult(write.write_id, "created" if created else "updated",
                                   str(dig(record, spec.id_field)))
            crm_id, created = create_once(
                lambda: self._find(spec, write.enginy_id),
                lambda: str(dig(self._send(spec, "create", body), spec.id_field)),
                lambda found: self._send(spec, "update", self._body(obj, spec, write, creating=False), record_id=found))
            return WriteResult(write.write_id, "created" if created else "updated", crm_id)
        except ValueError as error:  # a field the description does not name
            return WriteResult(write.write_id, "rejected", error=str(error))
        except RestError as error:
            if error.status in (401, 403):
                raise
            if error.status in (404, 410):
                return WriteResult(write.write_id, "rejected", error=f"the record no longer exists in {self.api.name}",
                                   error_code="NOT_FOUND")
            return WriteResult(write.write_id, "rejected", error=error.message, error_code=str(error.status))
        except TransientCrmError as error:  # retries spent: the next run sends it again
            return WriteResult(write.write_id, "failed", error=str(error))

    def _send(self, spec: ObjectApi, which: str, body: dict[str, Any], record_id: str | None = None,
              enginy_id: str | None = None) -> Any:
        endpoint = spec.create if which == "create" else spec.update
        path = endpoint.path.replace("{id}", str(record_id)).replace("{enginy_id}", str(enginy_id))
        answer = self.rest.request(endpoint.method, path, json={endpoint.body_key: body} if endpoint.body_key else body,
                                   idempotent=endpoint.method != "POST")
        return dig(answer, endpoint.record)

    def _find(self, spec: ObjectApi, enginy_id: str) -> str | None:
        answer = self.rest.request("GET", spec.path, params={spec.find_by_enginy_id: enginy_id})
        wanted = spec.api_name(ENGINY_ID)
        rows = [r for r in dig(answer, self.api.paging.records) or [] if str(dig(r, wanted)) == enginy_id]
        return str(dig(rows[0], spec.id_field)) if rows else None

    def _body(self, obj: str, spec: ObjectApi, write: Write, creating: bool) -> dict[str, Any]:
        values = dict(write.fields)
        if creating:
            values[ENGINY_ID] = write.enginy_id
        if write.owner_id and "owner_id" in spec.fields:
            values["owner_id"] = write.owner_id
        if write.company_id and obj != "companies" and "company_id" in spec.fields:
            values["company_id"] = write.company_id
        unknown = sorted(set(values) - set(spec.fields))
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not a field of {self.api.name} {obj} in its API description")
        return {spec.api_name(name): value for name, value in values.items()}


def _blank(value: Any) -> Any:
    return None if value == "" else value


def _stamp(value: Any) -> pd.Timestamp | None:
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _modified(spec: ObjectApi, row: dict[str, Any]) -> pd.Timestamp:
    value = dig(row, spec.modified_field)
    if spec.modified_format == "epoch_seconds":
        return pd.Timestamp(float(value), unit="s", tz="UTC")
    if spec.modified_format == "epoch_ms":
        return pd.Timestamp(float(value), unit="ms", tz="UTC")
    return _stamp(value)


def _format(spec: ObjectApi, value: datetime) -> str:
    """A time as the API writes its modification times."""
    stamp = _stamp(value)
    if spec.modified_format == "epoch_seconds":
        return str(int(stamp.timestamp()))
    if spec.modified_format == "epoch_ms":
        return str(int(stamp.timestamp() * 1000))
    return stamp.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class CustomCrmResource(CrmResource):
    """A CRM reached through the REST API its description file describes."""

    api_file: str = Field(description="the YAML describing the API (CUSTOM_CRM_API_FILE)")
    api_key: str = Field(description="the API key; bound with EnvVar to the variable the description names")
    ca_bundle: str = Field("", description="CA file to trust (a local sandbox); empty: the system's")
    base_url: str = Field("", description="where the API is, when not where its description says (another "
                                          "environment, a local sandbox); empty: the description's base_url")

    def client(self) -> CustomCrmClient:
        return CustomCrmClient(load_api(self.api_file), self.api_key, self.ca_bundle, self.base_url)


# Optional variables of the Custom CRM, beside CUSTOM_CRM_API_FILE and the key's own variable.
OPTIONAL_ENV = {"ca_bundle": "CUSTOM_CRM_CA_BUNDLE", "base_url": "CUSTOM_CRM_BASE_URL"}


def custom_crm_resource() -> CustomCrmResource:
    """The resource for the description CUSTOM_CRM_API_FILE names, its key bound to the variable
    the description names. The description is checked here, when the code location loads."""
    api = load_api(os.environ.get(API_FILE_ENV) or "")
    fields: dict[str, Any] = {"api_file": dg.EnvVar(API_FILE_ENV), "api_key": dg.EnvVar(api.auth.env)}
    fields.update({name: dg.EnvVar(var) for name, var in OPTIONAL_ENV.items() if os.environ.get(var)})
    return CustomCrmResource(**fields)
