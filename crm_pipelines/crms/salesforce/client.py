"""Salesforce through simple-salesforce: OAuth token, SOQL over REST, Bulk API 2.0 for big pulls.

simple-salesforce builds login URLs from ``domain`` as https://{domain}.salesforce.com, which
is right for orgs but leaves no room for a custom login host, so the OAuth token is fetched
here (client credentials, or the username-password flow) and the client is built from the
instance URL the token answer names. Pulls select every field the org describes, split into
several queries when a wide object would exceed the request URI limit, and read deletions
through queryAll (IsDeleted) in the same window.
"""

import csv
import io
from datetime import datetime
from typing import Any, Callable, Iterator, TypeVar
from urllib.parse import quote

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import requests
from pydantic import Field
from simple_salesforce import Salesforce
from simple_salesforce.bulk2 import MAX_INGEST_JOB_FILE_SIZE, JobState, Operation
from simple_salesforce.exceptions import (
    SalesforceError, SalesforceExpiredSession, SalesforceOperationError, SalesforceResourceNotFound,
)

from crm_pipelines.canonical import CrmCompany, CrmContact, CrmUser
from crm_pipelines.export.writes import Activity
from crm_pipelines.crms.wire.activity_writes import clip, log_once
from crm_pipelines.crms.base import (
    PROGRESS_EVERY, CrmField, CrmObject, CrmResource, Progress, PullResult, Write, WriteResult,
)
from crm_pipelines.crms.wire.query_literals import soql_string
from crm_pipelines.crms.wire.retries import (
    TRANSIENT_ERRORS, TRANSIENT_STATUSES, TransientCrmError, retry_after_seconds, with_retries,
)
from crm_pipelines.frames import to_json
from crm_pipelines.progress import Reading

T = TypeVar("T")
P = TypeVar("P")  # what a pull makes of one page of records
W = TypeVar("W", Write, Activity)  # what a Bulk API 2.0 ingest job carries
# A bulk job's answer for one row: status, CRM id, error message, error code (WriteResult's fields).
Answer = tuple[str, str | None, str | None, str | None]

SOBJECTS = {"contacts": "Contact", "companies": "Account", "leads": "Lead", "users": "User"}
# Salesforce refuses request URIs over 16,384 bytes; keep each query's URL well below.
MAX_QUERY_URL = 14_000
# sObject Collections take at most 200 records a call.
COLLECTION_LIMIT = 200
# Writes handed to the bulk path at once: uploaded as jobs under Bulk API 2.0's size limit, and the
# push saves its ledger after them.
BULK_JOB_WRITES = 100_000
# simple-salesforce sleeps this long before its first poll of a Bulk API 2.0 job, then this plus
# e^n ms before the n-th (so about every 2 s after ten polls). A job a few thousand rows long is
# often done within the first second; a poll is one cheap call.
BULK_POLL_SECONDS = 0.2
# A job's CSV, with room for the encoding's overhead under the limit simple-salesforce checks.
MAX_JOB_BYTES = MAX_INGEST_JOB_FILE_SIZE - 1024 * 1024
# Activity keys per look-up query: 300 quoted keys of ~40 characters keep its URL under MAX_QUERY_URL.
LOOKUP_KEYS = 300
# Task fields' lengths: longer values are cut rather than refused.
SUBJECT_LENGTH, DESCRIPTION_LENGTH = 255, 32_000
# TaskSubtype per activity kind, where the org's picklist has it (else a plain Task).
TASK_SUBTYPES = {"email": "Email", "call": "Call", "linkedin": "LinkedIn"}
# Field types a SOQL SELECT cannot list on an API pull (compound fields repeat their parts).
_UNSELECTABLE = {"address", "location", "base64"}
_RELATIONSHIPS = {"Contact": ["Account.Name"]}


class SalesforceAuthError(RuntimeError):
    """The org refused the integration's credentials."""


class SalesforceClient:
    """The CrmClient for one Salesforce org."""

    crm = "salesforce"

    def __init__(self, settings: "SalesforceResource") -> None:
        self.settings = settings
        self.api_calls = 0
        self.progress: Progress = lambda message: None
        self.session = requests.Session()
        self.session.hooks["response"].append(self._count)
        self._sf: Salesforce | None = None
        self._describe_cache: dict[str, dict[str, Any]] = {}

    def _count(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.api_calls += 1

    # --- auth -------------------------------------------------------------------------------
    def _login(self) -> Salesforce:
        s = self.settings
        form = {"client_id": s.client_id, "client_secret": s.client_secret}
        if s.username:
            form |= {"grant_type": "password", "username": s.username, "password": s.password + s.security_token}
        else:
            form |= {"grant_type": "client_credentials"}
        response = self.session.post(f"{s.login_host}/services/oauth2/token", data=form, timeout=60)
        if response.status_code in TRANSIENT_STATUSES:  # throttled or down: the call is tried again
            raise TransientCrmError(response.status_code, f"Salesforce's login answered {response.status_code}",
                                    retry_after_seconds(response.headers.get("Retry-After")))
        if response.status_code != 200:
            try:
                body = response.json()
            except ValueError:
                body = None
            reason = (f"{body.get('error')}: {body.get('error_description')}" if isinstance(body, dict)
                      else response.text[:200])
            raise SalesforceAuthError(f"Salesforce refused the integration's credentials at {s.login_host} "
                                      f"({response.status_code} {reason}) — check the connected app and user")
        token = response.json()
        return Salesforce(instance_url=token["instance_url"], session_id=token["access_token"],
                          version=s.api_version, session=self.session)

    @property
    def sf(self) -> Salesforce:
        if self._sf is None:
            self._sf = self._login()
        return self._sf

    def _call(self, fn: Callable[[Salesforce], T], attempts: int = 6) -> T:
        def attempt() -> T:
            try:
                return fn(self.sf)
            except SalesforceExpiredSession:
                self._sf = self._login()
                return fn(self.sf)
            except SalesforceError as exc:
                if exc.status in TRANSIENT_STATUSES:
                    raise TransientCrmError(exc.status, f"Salesforce answered {exc.status}") from exc
                raise

        return with_retries(attempt, attempts=attempts)

    # --- CrmClient --------------------------------------------------------------------------
    def describe_raw(self, sobject: str) -> dict[str, Any]:
        if sobject not in self._describe_cache:
            self._describe_cache[sobject] = self._call(lambda sf: getattr(sf, sobject).describe())
        return self._describe_cache[sobject]

    def describe(self, obj: CrmObject) -> list[CrmField]:
        fields = []
        for f in self.describe_raw(SOBJECTS[obj])["fields"]:
            picklist = [p for p in f.get("picklistValues") or [] if p.get("active", True)]
            fields.append(CrmField(
                name=f["name"], label=f.get("label", f["name"]), type=f["type"],
                createable=bool(f.get("createable")), updateable=bool(f.get("updateable")),
                required=bool(f.get("createable")) and not f.get("nillable", True) and not f.get("defaultedOnCreate"),
                options=tuple(p["value"] for p in picklist), option_labels=tuple(p.get("label") or "" for p in picklist),
                unique=bool(f.get("unique")), external_id=bool(f.get("externalId")),
                length=f.get("length") or None))  # 0 for the fields that hold no text
        return fields

    def _field_chunks(self, sobject: str, where: str) -> list[list[str]]:
        """Field lists whose queries each fit the URI limit; every chunk carries the keys."""
        keys = ["Id", "SystemModstamp"] + (["IsDeleted"] if sobject != "User" else [])
        names = [f["name"] for f in self.describe_raw(sobject)["fields"]
                 if f["type"] not in _UNSELECTABLE and f["name"] not in keys]
        names += _RELATIONSHIPS.get(sobject, [])
        chunks: list[list[str]] = []
        current = list(keys)
        for name in names:
            candidate = current + [name]
            if len(quote(_soql(sobject, candidate, where))) > MAX_QUERY_URL and len(current) > len(keys):
                chunks.append(current)
                candidate = keys + [name]
            current = candidate
        chunks.append(current)
        return chunks

    def pull(self, obj: CrmObject, since: datetime | None, until: datetime | None,
             state: dict[str, Any] | None = None) -> PullResult:
        sobject = SOBJECTS[obj]
        calls_before = self.api_calls
        clauses = []
        if since is not None:
            clauses.append(f"SystemModstamp >= {_soql_datetime(since)}")
        if until is not None:
            clauses.append(f"SystemModstamp < {_soql_datetime(until)}")
        where = " AND ".join(clauses)
        deleted_too = sobject != "User"
        chunks = self._field_chunks(sobject, where)
        # The first REST page says how many records match; past the threshold the rest goes
        # through Bulk API 2.0, at the cost of that one page (no separate COUNT call).
        first = self._call(lambda sf: sf.query(_soql(sobject, chunks[0], where), include_deleted=deleted_too))
        count = first["totalSize"]
        bulk = count > self.settings.bulk_threshold
        # One query's pages become canonical frames as they arrive, so a million records are never
        # all held as dicts (3-4 KB each); fields split over several queries merge by Id first.
        merging = len(chunks) > 1
        convert = (lambda rows: rows) if merging else (lambda rows: _canonical(obj, rows, self.settings))
        convert_csv = _csv_rows if merging else (lambda text: _canonical_csv(obj, text, self.settings))
        rows_by_id: dict[str, dict[str, Any]] = {}
        parts: list[pd.DataFrame] = []
        pages = 1 if bulk else 0  # a REST read counts the first page itself, as it resumes from it
        for i, fields in enumerate(chunks):
            if bulk:
                # No ORDER BY: it turns PK chunking off, and the big pulls that use bulk then time out.
                chunk_parts, chunk_pages = self._bulk_rows(sobject, _soql(sobject, fields, where, order=False),
                                                           deleted_too, convert_csv, count)
            else:
                chunk_parts, chunk_pages = self._rest_rows(sobject, _soql(sobject, fields, where), deleted_too, convert,
                                                           first if i == 0 else None)
            pages += chunk_pages
            if not merging:
                parts = chunk_parts
                continue
            for row in (row for part in chunk_parts for row in part):
                rows_by_id.setdefault(row["Id"], {}).update(row)
        if merging:
            records = _canonical(obj, list(rows_by_id.values()), self.settings)
        else:
            # A record changed while the pages were read comes twice: its newer version stays.
            records = pd.concat(parts, ignore_index=True).drop_duplicates("crm_id", keep="last")
            records = records.reset_index(drop=True)
        if bulk and "last_modified" in records:
            # Bulk results come chunk by chunk in no promised order: put them in the order REST gives.
            records = records.sort_values(["last_modified", "crm_id"], kind="stable").reset_index(drop=True)
        # The cursor is the greatest modstamp held, never the last row's: only REST is ordered.
        cursor = records["last_modified"].max() if len(records) and "last_modified" in records else None
        return PullResult(records, None if cursor is None or pd.isna(cursor) else cursor.to_pydatetime(),
                          api_calls=self.api_calls - calls_before, pages=pages,
                          notes=[f"Bulk API 2.0 ({count:,} records)"] if bulk else [])

    def _rest_rows(self, sobject: str, soql: str, deleted_too: bool, convert: Callable[[list[dict[str, Any]]], P],
                   first: dict[str, Any] | None = None) -> tuple[list[P], int]:
        """Every page of a REST query, each as ``convert`` makes it of the page's flattened records."""
        def read() -> tuple[list[P], int]:
            pages, read_so_far, parts = 0, 0, []
            result = first if first is not None else self.sf.query(soql, include_deleted=deleted_too)
            reading = Reading(self.progress, sobject, result["totalSize"], PROGRESS_EVERY)
            while True:
                pages += 1
                parts.append(convert([_flatten(r) for r in result["records"]]))
                read_so_far += len(result["records"])
                reading.page(read_so_far, pages)
                if result.get("done", True):
                    return parts, pages
                result = self.sf.query_more(result["nextRecordsUrl"], identifier_is_url=True,
                                            include_deleted=deleted_too)

        return self._call(lambda sf: read())

    def _bulk_rows(self, sobject: str, soql: str, deleted_too: bool, convert: Callable[[str], P],
                   total: int | None) -> tuple[list[P], int]:
        """Every result set of a Bulk API 2.0 query, each as ``convert`` makes it of its CSV text;
        ``total``: about how many there are, for the progress lines."""
        def read() -> tuple[list[P], int]:
            job = getattr(self.sf.bulk2, sobject)
            pages, read_so_far, parts = 0, 0, []
            reading = Reading(self.progress, f"{sobject} (Bulk API 2.0)", total)
            # simple-salesforce sleeps `wait` seconds before it polls the job first; 5 s by default.
            query = job.query_all if deleted_too else job.query
            for text in query(soql, wait=BULK_POLL_SECONDS):
                pages += 1
                parts.append(convert(text))
                read_so_far += len(parts[-1])
                reading.page(read_so_far, pages)
            return parts, pages

        return self._call(lambda sf: read())

    def latest_change(self, obj: CrmObject, since: datetime | None) -> datetime | None:
        sobject = SOBJECTS[obj]
        where = f" WHERE SystemModstamp > {_soql_datetime(since)}" if since is not None else ""
        soql = f"SELECT Id, SystemModstamp FROM {sobject}{where} ORDER BY SystemModstamp DESC LIMIT 1"
        # queryAll: a deletion moves SystemModstamp too, and the sync must hear of it.
        rows = self._call(lambda sf: sf.query(soql, include_deleted=sobject != "User"))["records"]
        return pd.Timestamp(rows[0]["SystemModstamp"]).to_pydatetime() if rows else None

    def users(self) -> pd.DataFrame:
        return self.pull("users", None, None).records

    def _bulk_push(self, sobject: str, action: str, group: list[Write],
                   job_started: Callable[[str, list[Write]], None] | None) -> list[WriteResult]:
        """Bulk API 2.0 ingest: creates upsert on the external id field, updates by Id; one job per
        part of the data under the job's size limit. Each job's id goes to ``job_started`` before
        its data is uploaded, so a killed push is resumed from the job (bulk_job_results)."""
        key = self._bulk_key(action)
        # Bulk API 2.0 CSV: "#N/A" clears a field, an empty cell leaves it as it is.
        records = [{**{k: "#N/A" if v is None else v for k, v in _links(w, sobject).items()},
                    key: w.enginy_id if action == "create" else w.crm_id} for w in group]
        results: list[WriteResult] = []
        for part, data in _job_parts(group, _JobRows(records)):
            try:
                results.extend(self._call(lambda sf: self._run_ingest_job(sf, sobject, action, part, data,
                                                                          job_started)))
            except TRANSIENT_ERRORS as error:
                results.extend(WriteResult(w.write_id, "failed", error=str(error)) for w in part)
        return results

    def _bulk_key(self, action: str) -> str:
        return self.settings.external_id_field if action == "create" else "Id"

    def _run_ingest_job(self, sf: Salesforce, sobject: str, action: str, writes: list[Write], data: str,
                        job_started: Callable[[str, list[Write]], None] | None) -> list[WriteResult]:
        # SFBulk2Type.upsert creates, uploads and waits in one call; the job id must be recorded
        # between creating the job and uploading its data, so the same steps are taken one by one
        # through simple-salesforce's Bulk 2.0 client (pinned, 1.12).
        jobs = getattr(sf.bulk2, sobject)._client
        key = self._bulk_key(action)
        job = jobs.create_job(Operation.upsert if action == "create" else Operation.update,
                              external_id_field=key if action == "create" else None)
        if job_started is not None:
            job_started(job["id"], writes)
        jobs.upload_job_data(job["id"], data)
        jobs.close_job(job["id"])
        jobs.wait_for_job(job["id"], False, wait=BULK_POLL_SECONDS)
        answers = self._job_answers(sf, sobject, job["id"], key)
        return [_answered(w, answers.get(w.enginy_id if action == "create" else w.crm_id))
                or WriteResult(w.write_id, "failed", error="Bulk API 2.0 reported nothing for this row")
                for w in writes]

    def _job_answers(self, sf: Salesforce, sobject: str, job_id: str, key: str) -> dict[str, Answer]:
        """A finished ingest job's answers by the key its rows were sent with, read a column at a
        time by Arrow (a dict per row of a million-row result set took seconds)."""
        job = getattr(sf.bulk2, sobject)
        answers: dict[str, Answer] = {}
        done = _csv_columns(job.get_successful_records(job_id), (key, "sf__Created", "sf__Id"))
        answers.update((k, ("created" if created == "true" else "updated", crm_id, None, None))
                       for k, created, crm_id in zip(*done))
        keys, errors = _csv_columns(job.get_failed_records(job_id), (key, "sf__Error"))
        for k, error in zip(keys, errors):
            # sf__Error is "CODE:message:fields --": told as sObject Collections' errors are.
            code, _, rest = (error or "").partition(":")
            message = (rest.rpartition(":")[0] or rest).strip()
            answers[k] = ("rejected", None, f"{code}: {message}" if message else code, code or None)
        return answers

    def bulk_job_results(self, obj: CrmObject, job_id: str, writes: list[Write]) -> list[WriteResult]:
        """What an ingest job a killed push left behind says of its writes (all one action). A job
        still open is aborted first, so that its data can never land after the writes are sent
        again; a job still running is waited for. Writes the job has no answer for (never uploaded,
        unprocessed, or the job is gone) are left out: the push sends them again."""
        sobject, key = SOBJECTS[obj], self._bulk_key(writes[0].action)

        def read(sf: Salesforce) -> dict[str, Answer]:
            jobs = getattr(sf.bulk2, sobject)._client
            try:
                state = jobs.get_job(job_id, False)["state"]
            except SalesforceResourceNotFound:
                return {}
            if state == JobState.open:
                jobs.abort_job(job_id, False)
                return {}
            if state in (JobState.upload_complete, JobState.in_progress):
                try:
                    jobs.wait_for_job(job_id, False, wait=BULK_POLL_SECONDS)
                except SalesforceOperationError:
                    pass  # failed or aborted while it ran: the rows it did process have answers
            return self._job_answers(sf, sobject, job_id, key)

        answers = self._call(read)
        return [r for w in writes
                if (r := _answered(w, answers.get(w.enginy_id if w.action == "create" else w.crm_id))) is not None]

    @property
    def enginy_id_field(self) -> str:
        """The CRM field holding Enginy's id on records the push created (creates upsert on it)."""
        return self.settings.external_id_field

    def writes_per_push(self, pending: int) -> int:
        """A Bulk API 2.0 job's worth when more than bulk_push_threshold writes are pending; one
        sObject Collections call's worth otherwise."""
        return BULK_JOB_WRITES if pending > self.settings.bulk_push_threshold else COLLECTION_LIMIT

    def push(self, obj: CrmObject, writes: list[Write],
             job_started: Callable[[str, list[Write]], None] | None = None) -> list[WriteResult]:
        """sObject Collections of 200: creates upsert on the external id field, updates by Id;
        more than bulk_push_threshold writes of one action go through Bulk API 2.0 jobs, each
        job's id handed to ``job_started`` before its data is uploaded. A record refused by
        duplicate rules comes back rejected with DUPLICATES_DETECTED; the caller may send it
        again with allow_duplicates."""
        sobject = SOBJECTS[obj]
        results: list[WriteResult] = []
        groups: dict[tuple[str, bool], list[Write]] = {}
        for write in writes:
            groups.setdefault((write.action, write.allow_duplicates), []).append(write)
        for (action, allow), group in groups.items():
            if len(group) > self.settings.bulk_push_threshold and not allow:
                results.extend(self._bulk_push(sobject, action, group, job_started))
                self.progress(f"{sobject}: {len(results):,} of {len(writes):,} writes sent")
                continue
            headers = {"Sforce-Duplicate-Rule-Header": "allowSave=true"} if allow else {}
            for start in range(0, len(group), COLLECTION_LIMIT):
                batch = group[start:start + COLLECTION_LIMIT]
                if action == "create":
                    records = [{"attributes": {"type": sobject}, **_links(w, sobject),
                                self.settings.external_id_field: w.enginy_id} for w in batch]
                    path = f"composite/sobjects/{sobject}/{self.settings.external_id_field}"
                else:
                    records = [{"attributes": {"type": sobject}, **_links(w, sobject), "Id": w.crm_id} for w in batch]
                    path = "composite/sobjects"
                body = {"allOrNone": False, "records": records}
                try:
                    answers = self._call(lambda sf: sf.restful(path, method="PATCH", json=body, headers=headers))
                except TRANSIENT_ERRORS as error:
                    # Retries spent: the next run sends these again (creates upsert, so safely).
                    results.extend(WriteResult(w.write_id, "failed", error=str(error)) for w in batch)
                    continue
                results.extend(_write_result(w, a) for w, a in zip(batch, answers))
                self.progress(f"{sobject}: {len(results):,} of {len(writes):,} writes sent")
        return results

    # --- activities -------------------------------------------------------------------------
    def activities_per_push(self, pending: int) -> int:
        """A Bulk API 2.0 job's worth when more than bulk_push_threshold activities are pending (a
        ledger save per job, not two per 200 Tasks); one sObject Collections call's worth otherwise."""
        return self.writes_per_push(pending)

    def log_activities(self, activities: list[Activity]) -> list[WriteResult]:
        """Completed Tasks on the contact or lead (WhoId): one Bulk API 2.0 insert job above
        bulk_push_threshold, sObject Collections of 200 otherwise. Tasks have no upsert, so each
        carries its key in ``activity_id_field`` and a create whose answer was lost is looked up
        before it is sent again."""
        if len(activities) > self.settings.bulk_push_threshold:
            results = log_once(activities, self._bulk_create_tasks, self._find_tasks)
            self.progress(f"Task: {len(results):,} activities sent through Bulk API 2.0")
            return results
        results: list[WriteResult] = []
        for start in range(0, len(activities), COLLECTION_LIMIT):
            part = activities[start:start + COLLECTION_LIMIT]
            results.extend(log_once(part, self._create_tasks, self._find_tasks))
            self.progress(f"Task: {len(results):,} of {len(activities):,} activities sent")
        return results

    def _task_picklist(self, name: str) -> set[str]:
        field = next((f for f in self.describe_raw("Task")["fields"] if f["name"] == name), {})
        return {p["value"] for p in field.get("picklistValues") or [] if p.get("active", True)}

    def _tasks(self, activities: list[Activity]) -> list[dict[str, Any]]:
        """The Task records, with their Enginy keys, as both write paths send them."""
        subtypes, types = self._task_picklist("TaskSubtype"), self._task_picklist("Type")
        records = []
        for a in activities:
            subtype = TASK_SUBTYPES[a.kind]
            task = {"WhoId": a.record_id, "Status": "Completed",
                    "Subject": clip(a.subject, SUBJECT_LENGTH), "ActivityDate": a.occurred_at.date().isoformat(),
                    "TaskSubtype": subtype if subtype in subtypes else "Task",
                    self.settings.activity_id_field: a.write_id}
            if subtype in types:
                task["Type"] = subtype
            if a.description:
                task["Description"] = clip(a.description, DESCRIPTION_LENGTH)
            if a.owner_id:
                task["OwnerId"] = a.owner_id
            records.append(task)
        return records

    def _create_tasks(self, activities: list[Activity]) -> list[WriteResult]:
        body = {"allOrNone": False, "records": [{"attributes": {"type": "Task"}, **task}
                                                 for task in self._tasks(activities)]}
        answers = self._call(lambda sf: sf.restful("composite/sobjects", method="POST", json=body), attempts=1)
        return [_write_result(Write(a.write_id, "create", a.write_id, {}), answer)
                for a, answer in zip(activities, answers)]

    def _bulk_create_tasks(self, activities: list[Activity]) -> list[WriteResult]:
        """Bulk API 2.0 insert jobs, the CSV made here in parts a job takes, as record writes are
        (simple-salesforce's insert rewrites and splits the CSV a line at a time in Python); one
        attempt, as log_once looks the Tasks up before any resend."""
        key = self.settings.activity_id_field
        rows = _JobRows(self._tasks(activities))

        def run(sf: Salesforce) -> dict[str, Answer]:
            jobs = sf.bulk2.Task._client
            by_key: dict[str, Answer] = {}
            for _, data in _job_parts(activities, rows):
                job = jobs.create_job(Operation.insert)
                jobs.upload_job_data(job["id"], data)
                jobs.close_job(job["id"])
                jobs.wait_for_job(job["id"], False, wait=BULK_POLL_SECONDS)
                by_key.update(self._job_answers(sf, "Task", job["id"], key))
            return by_key

        by_key = self._call(run, attempts=1)
        nothing = "Bulk API 2.0 reported nothing for this Task"
        return [_answered(a, by_key.get(a.write_id)) or WriteResult(a.write_id, "failed", error=nothing)
                for a in activities]

    def _find_tasks(self, keys: list[str]) -> dict[str, str]:
        field = self.settings.activity_id_field
        found: dict[str, str] = {}
        # A job's worth of keys in doubt after a killed bulk insert: IN lists a SOQL statement holds.
        for start in range(0, len(keys), LOOKUP_KEYS):
            part = ", ".join(map(soql_string, keys[start:start + LOOKUP_KEYS]))
            # queryAll: a Task someone deleted in the CRM was logged; it is not logged again.
            soql = f"SELECT Id, {field} FROM Task WHERE {field} IN ({part})"
            rows = self._call(lambda sf: sf.query_all(soql, include_deleted=True))["records"]
            found.update((r[field], r["Id"]) for r in rows)
        return found


def _links(write: Write, sobject: str) -> dict[str, Any]:
    """The write's fields with its owner and (for a contact) its account."""
    fields = dict(write.fields)
    if write.owner_id:
        fields["OwnerId"] = write.owner_id
    # A contact has one account: the batch asks for an additional link only where the contact has
    # none yet (one_company_per_contact), so any link asked for is the account to set.
    if write.company_id and sobject == "Contact":
        fields["AccountId"] = write.company_id
    return fields


class _JobRows:
    """Records as the rows of a Bulk API 2.0 CSV: a column per field any record has, by name; an
    empty cell where a record lacks the field (it is left as it is). Written by the csv module
    (pandas' DataFrame and to_csv of a million records took seconds), a record at a time: read a
    column at a time, each of a million dicts was fetched from memory again for every column."""

    def __init__(self, records: list[dict[str, Any]], names: list[str] | None = None) -> None:
        self.records = records
        self.names = sorted(set().union(*records)) if names is None else names

    def __len__(self) -> int:
        return len(self.records)

    def part(self, start: int, stop: int) -> "_JobRows":
        return _JobRows(self.records[start:stop], self.names)

    def csv(self) -> str:
        out, names = io.StringIO(), self.names
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(names)
        # Values as the csv module writes them (str of each): 120 stays "120", where a pandas
        # column with a gap would have made it "120.0".
        writer.writerows([record.get(name, "") for name in names] for record in self.records)
        return out.getvalue()


def _job_parts(writes: list[W], rows: _JobRows) -> Iterator[tuple[list[W], str]]:
    """The writes (or activities) and their CSV in parts a Bulk API 2.0 job takes: halved until each fits."""
    data = rows.csv()
    if len(data.encode()) <= MAX_JOB_BYTES or len(writes) == 1:
        yield writes, data
        return
    half = len(writes) // 2
    yield from _job_parts(writes[:half], rows.part(0, half))
    yield from _job_parts(writes[half:], rows.part(half, len(rows)))


def _csv_columns(text: str, names: tuple[str, ...]) -> list[list[str | None]]:
    """These columns of a Bulk API 2.0 result set (CSV), as text; an empty result set has no rows."""
    if not text.strip():
        return [[] for _ in names]
    table = pa_csv.read_csv(io.BytesIO(text.encode()), convert_options=pa_csv.ConvertOptions(
        column_types={name: pa.string() for name in names}, include_columns=list(names),
        include_missing_columns=True))
    return [table.column(name).to_pylist() for name in names]


def _answered(write: Write | Activity, answer: Answer | None) -> WriteResult | None:
    """A job's answer for the row it was sent as, as this write's (or activity's) result."""
    return None if answer is None else WriteResult(write.write_id, *answer)


def _write_result(write: Write, answer: dict[str, Any]) -> WriteResult:
    if answer.get("success"):
        created = answer.get("created", write.action == "create")
        return WriteResult(write.write_id, "created" if created else "updated", answer.get("id"))
    errors = answer.get("errors") or [{}]
    code = errors[0].get("statusCode")
    message = "; ".join(f"{e.get('statusCode')}: {e.get('message')}" for e in errors)
    return WriteResult(write.write_id, "rejected", None, message, code)


def _soql_datetime(value: datetime) -> str:
    # A datetime literal, not a quoted value: nothing from users is ever spliced into SOQL.
    return pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _soql(sobject: str, fields: list[str], where: str, order: bool = True) -> str:
    soql = f"SELECT {', '.join(fields)} FROM {sobject}"
    if where:
        soql += f" WHERE {where}"
    if order:
        soql += " ORDER BY SystemModstamp, Id"
    return soql


def _flatten(record: dict[str, Any]) -> dict[str, Any]:
    """A REST record with relationship objects flattened to dotted names (Account.Name)."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if key == "attributes":
            continue
        if isinstance(value, dict):
            for sub, sub_value in value.items():
                if sub != "attributes":
                    flat[f"{key}.{sub}"] = sub_value
        else:
            flat[key] = value
    return flat


def _csv_rows(text: str) -> list[dict[str, Any]]:
    """A Bulk API 2.0 result set's rows (CSV: every value text, an empty cell none)."""
    return [{k: (v if v != "" else None) for k, v in r.items()} for r in csv.DictReader(io.StringIO(text))]


def _canonical_csv(obj: CrmObject, text: str, settings: "SalesforceResource") -> pd.DataFrame:
    """A Bulk API 2.0 result set as _canonical makes its rows, read a column at a time by Arrow and
    its CRM fields made JSON text by DuckDB: a dict per row was most of a big pull's own time."""
    if not text.strip():
        return _canonical(obj, [], settings)
    header = next(csv.reader(io.StringIO(text.partition("\n")[0])))
    table = pa_csv.read_csv(io.BytesIO(text.encode()), convert_options=pa_csv.ConvertOptions(
        column_types={name: pa.string() for name in header}, strings_can_be_null=True,
        quoted_strings_can_be_null=True, null_values=[""]))
    with duckdb.connect() as connection:
        connection.register("page", table)
        # Each row as one JSON object of its columns, in their order — the text to_json makes of a row's dict.
        raw = connection.sql("SELECT to_json(page) AS raw FROM page").to_arrow_table().column("raw")
    return _canonical_frame(obj, table.to_pandas(), raw.to_pandas(), settings)


def _canonical(obj: CrmObject, rows: list[dict[str, Any]], settings: "SalesforceResource") -> pd.DataFrame:
    # The CRM's fields as the JSON text the warehouse keeps: the page's dicts can go at once.
    return _canonical_frame(obj, pd.DataFrame(rows), [to_json(r) for r in rows], settings)


def _canonical_frame(obj: CrmObject, frame: pd.DataFrame, raw: list[str] | pd.Series,
                     settings: "SalesforceResource") -> pd.DataFrame:
    """The canonical frame of a page's records (``frame``: a column per Salesforce field) and their
    CRM fields as JSON text (``raw``)."""
    def col(name: str) -> pd.Series | None:
        return frame[name] if name in frame else None

    n = len(frame)
    if obj == "users":
        return CrmUser.validate(pd.DataFrame({
            "crm_id": col("Id"), "email": col("Email"), "first_name": col("FirstName"), "last_name": col("LastName"),
            "is_active": col("IsActive").map(lambda v: v in (True, "true", "True")) if n else [],
            "raw": raw}))
    deleted = col("IsDeleted")
    common = {
        "crm_id": col("Id"), "owner_id": col("OwnerId"),
        "last_modified": pd.to_datetime(col("SystemModstamp"), utc=True) if n else pd.Series(dtype="datetime64[us, UTC]"),
        "is_deleted": deleted.map(lambda v: v in (True, "true", "True")) if deleted is not None else [False] * n,
        "raw": raw,
    }
    if obj == "companies":
        out = pd.DataFrame({**common, "name": col("Name"), "domain": col("Website"),
                            "linkedin_url": col(settings.company_linkedin_field)})
        return CrmCompany.validate(out.reindex(columns=list(CrmCompany.to_schema().columns)))
    out = pd.DataFrame({
        **common, "first_name": col("FirstName"), "last_name": col("LastName"),
        "company_name": col("Company") if obj == "leads" else col("Account.Name"),
        "email": col("Email"), "linkedin_url": col(settings.linkedin_field), "phone": col("Phone"),
        "job_title": col("Title"), "account_id": None if obj == "leads" else col("AccountId")})
    return CrmContact.validate(out.reindex(columns=list(CrmContact.to_schema().columns)))


class SalesforceResource(CrmResource):
    """A Salesforce org through a connected app (OAuth client credentials or username-password)."""

    domain: str = Field("login", description="login (production orgs) or test (sandbox orgs)")
    login_url: str = Field("", description="overrides domain: the host that issues tokens, e.g. a My Domain URL")
    client_id: str = Field(description="the connected app's consumer key")
    client_secret: str = Field(description="the connected app's consumer secret; bind with EnvVar")
    username: str = Field("", description="for the username-password flow; empty: client credentials")
    password: str = Field("", description="bind with EnvVar")
    security_token: str = Field("", description="bind with EnvVar")
    api_version: str = "59.0"
    bulk_threshold: int = Field(10_000, description="pulls above this many records use Bulk API 2.0")
    external_id_field: str = Field("Enginy_Id__c", description="the external id field creates upsert on")
    bulk_push_threshold: int = Field(10_000, description="pushes of more writes than this use Bulk API 2.0")
    activity_id_field: str = Field("Enginy_Activity_Id__c", description="Task text field holding the Enginy "
                                                                        "event a logged activity came from")
    linkedin_field: str = Field("LinkedIn_Profile__c", description="Contact/Lead field holding the LinkedIn URL")
    company_linkedin_field: str = Field("LinkedIn_Company_Page__c", description="Account field with the LinkedIn page")

    @property
    def login_host(self) -> str:
        return (self.login_url or f"https://{self.domain}.salesforce.com").rstrip("/")

    def client(self) -> SalesforceClient:
        return SalesforceClient(self)
