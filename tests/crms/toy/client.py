"""Toybook's client, on the shared REST client (crms/wire/rest.py): all a CRM needs to pass the
conformance suite."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from crm_pipelines.canonical import CrmContact, CrmUser, empty
from crm_pipelines.crms.base import CrmField, CrmObject, CrmResource, PullResult
from crm_pipelines.crms.wire.rest import ApiKey, RestClient, RestError
from crm_pipelines.export.writes import Write, WriteResult

NAMES = {"given_name": "first_name", "surname": "last_name", "email": "email", "title": "job_title"}


class ToybookClient:
    crm = "toybook"
    enginy_id_field = "enginy_id"

    def __init__(self, api_key: str, base_url: str) -> None:
        self.rest = RestClient(base_url, ApiKey("x-toybook-key", api_key), name="Toybook")
        self.progress = lambda message: None

    def pull(self, obj: CrmObject, since: datetime | None, until: datetime | None,
             state: dict[str, Any] | None = None) -> PullResult:
        if obj != "contacts":
            return PullResult(empty(CrmContact), None)
        rows = self.rest.request("GET", "people", params={"modified_after": since.isoformat()} if since else None)
        frame = pd.DataFrame([{**{canonical: row.get(name) for name, canonical in NAMES.items()},
                               "crm_id": row["id"], "company_name": None, "linkedin_url": None, "phone": None,
                               "owner_id": None, "account_id": None, "last_modified": pd.Timestamp(row["modified"]),
                               "is_deleted": row["deleted"], "raw": row} for row in rows])
        if until is not None and len(frame):
            frame = frame[frame["last_modified"] < pd.Timestamp(until)]
        records = CrmContact.validate(frame) if len(frame) else empty(CrmContact)
        cursor = records["last_modified"].max() if len(records) else None
        return PullResult(records, cursor.to_pydatetime() if cursor is not None else None, api_calls=1)

    def latest_change(self, obj: CrmObject, since: datetime | None) -> datetime | None:
        params = {"latest": "1", **({"modified_after": since.isoformat()} if since else {})}
        rows = self.rest.request("GET", "people", params=params)
        return pd.Timestamp(rows[0]["modified"]).to_pydatetime() if rows else None

    def describe(self, obj: CrmObject) -> list[CrmField]:
        return [CrmField(f["name"], f["name"], "string", True, True, required=f["required"])
                for f in self.rest.request("GET", "fields")]

    def users(self) -> pd.DataFrame:
        return empty(CrmUser)

    def push(self, obj: CrmObject, writes: list[Write]) -> list[WriteResult]:
        results = []
        for write in writes:
            try:
                if write.action == "create":  # an upsert on the Enginy id: safe to send again
                    answer = self.rest.request("POST", "people", json={**write.fields, "enginy_id": write.enginy_id},
                                               idempotent=True)
                else:
                    answer = self.rest.request("PATCH", f"people/{write.crm_id}", json=write.fields)
            except RestError as error:
                results.append(WriteResult(write.write_id, "rejected", write.crm_id, error.message))
                continue
            created = write.action == "create" and self.rest.last_status == 201
            results.append(WriteResult(write.write_id, "created" if created else "updated", answer["id"]))
        return results


class ToybookResource(CrmResource):
    api_key: str
    base_url: str

    def client(self) -> ToybookClient:
        return ToybookClient(self.api_key, self.base_url)
