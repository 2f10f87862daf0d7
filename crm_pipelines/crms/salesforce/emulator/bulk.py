"""Bulk API 2.0: ingest jobs (insert, update, upsert, delete from CSV) and query jobs (CSV pages).

Jobs run synchronously: an ingest job is processed when its state is set to UploadComplete and
a query job when it is created, so a client polling the job sees JobComplete on its first
poll and tests never wait on the sandbox.
"""

from __future__ import annotations

import base64
import csv
import io
import secrets
from datetime import datetime, timezone
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crm_pipelines.sandbox.app import SandboxContext
from crm_pipelines.crms.salesforce.emulator import chunking
from crm_pipelines.crms.salesforce.emulator.common import (
    SalesforceError, api, error_shape, json_body, setting, state, version_of,
)
from crm_pipelines.crms.salesforce.emulator.rest import run_soql
from crm_pipelines.crms.salesforce.emulator.schema import CRM, INTEGRATION_USER_ID, canonical_object
from crm_pipelines.crms.salesforce.emulator.values import format_datetime
from crm_pipelines.crms.salesforce.emulator.writes import Batch, RecordError, delete, error

J = "/services/data/{version}/jobs"
DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
INGEST_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
DEFAULT_MAX_RECORDS = 50_000


def _job_id() -> str:
    return "7505g" + "".join(secrets.choice("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(13))


def _now() -> str:
    return format_datetime(datetime.now(timezone.utc))


def _public(job: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in job.items() if not k.startswith("_")}


def _polled(ctx: SandboxContext, job: dict[str, Any]) -> dict[str, Any]:
    """Job info for a poll: a finished job shows InProgress for its first ``bulk_polls_in_progress``
    polls (setting, default 0), so connectors' polling loops can be exercised."""
    if job["state"] == "JobComplete":
        seen = job.setdefault("_polls", 0)
        job["_polls"] = seen + 1
        if seen < int(setting(ctx, "bulk_polls_in_progress") or 0):
            return {**_public(job), "state": "InProgress"}
    return _public(job)


def _job(ctx: SandboxContext, request: Request, kind: str) -> dict[str, Any]:
    with state(ctx).lock:
        job = state(ctx).jobs.get(request.path_params["job_id"])
    if job is None or job["_kind"] != kind:
        raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
    return job


def _csv_text(rows: list[list[str]], delimiter: str, line_ending: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=line_ending, quoting=csv.QUOTE_ALL)
    writer.writerows(rows)
    return out.getvalue()


def _csv_response(text: str, headers: dict[str, str] | None = None) -> Response:
    return Response(text, media_type="text/csv", headers=headers or {})


def _invalid_job(message: str) -> SalesforceError:
    return SalesforceError(400, "INVALIDJOB", f"InvalidJob : {message}")


# --- Ingest ------------------------------------------------------------------------------------

def ingest_jobs_handler(ctx: SandboxContext):
    async def create(request: Request) -> Response:
        if request.method == "GET":
            with state(ctx).lock:
                jobs = [_public(j) for j in state(ctx).jobs.values() if j["_kind"] == "ingest"]
            return JSONResponse({"done": True, "records": jobs, "nextRecordsUrl": None})
        body = await json_body(request)
        obj = canonical_object(str(body.get("object", "")))
        operation = body.get("operation")
        if obj is None:
            raise _invalid_job(f"Unable to find object: {body.get('object')}")
        if operation not in INGEST_OPERATIONS:
            raise _invalid_job(f"Invalid operation: {operation}")
        external = body.get("externalIdFieldName")
        if operation == "upsert" and not external:
            raise _invalid_job(f"External ID was blank for {obj}. An External ID must be specified for upsert.")
        delimiter = body.get("columnDelimiter", "COMMA")
        line_ending = body.get("lineEnding", "LF")
        if delimiter not in DELIMITERS or line_ending not in LINE_ENDINGS:
            raise _invalid_job("Invalid columnDelimiter or lineEnding")
        version = version_of(request)
        job_id = _job_id()
        job = {
            "id": job_id, "operation": operation, "object": obj, "createdById": INTEGRATION_USER_ID,
            "createdDate": _now(), "systemModstamp": _now(), "state": "Open", "concurrencyMode": "Parallel",
            "contentType": "CSV", "apiVersion": float(version), "jobType": "V2Ingest",
            "contentUrl": f"services/data/v{version}/jobs/ingest/{job_id}/batches",
            "lineEnding": line_ending, "columnDelimiter": delimiter,
            "_kind": "ingest", "_version": version, "_data": [], "_success": [], "_failed": [], "_unprocessed": [],
            "_header": None,
        }
        if external:
            job["externalIdFieldName"] = external
        with state(ctx).lock:
            state(ctx).jobs[job_id] = job
        return JSONResponse(_public(job))
    return create


def ingest_job_handler(ctx: SandboxContext):
    async def job_info(request: Request) -> Response:
        job = _job(ctx, request, "ingest")
        if request.method == "DELETE":
            with state(ctx).lock:
                state(ctx).jobs.pop(job["id"], None)
            return Response(status_code=204)
        if request.method == "PATCH":
            wanted = (await json_body(request)).get("state")
            if wanted == "UploadComplete" and job["state"] == "Open":
                job["state"] = "UploadComplete"
                answer = _public(job)
                _process(ctx, job, request)
                return JSONResponse(answer)
            if wanted == "Aborted" and job["state"] in ("Open", "UploadComplete", "InProgress"):
                job["state"] = "Aborted"
                job["_unprocessed"] = _rows(job)
                return JSONResponse(_public(job))
            raise SalesforceError(400, "INVALIDJOBSTATE", f"Job {job['id']} cannot change to state {wanted} from "
                                  f"{job['state']}")
        return JSONResponse(_polled(ctx, job))
    return job_info


def batches_handler(ctx: SandboxContext):
    async def upload(request: Request) -> Response:
        job = _job(ctx, request, "ingest")
        if job["state"] != "Open":
            raise SalesforceError(400, "INVALIDJOBSTATE", "Job is not in Open state; data can no longer be uploaded")
        text = (await request.body()).decode("utf-8-sig")
        if not text.strip():
            raise SalesforceError(400, "INVALIDJOB", "InvalidJob : the uploaded CSV is empty")
        job["_data"].append(text)
        rows = list(csv.reader(io.StringIO(text), delimiter=DELIMITERS[job["columnDelimiter"]]))
        ctx.stats.count_records(CRM, request.method, request.state.endpoint, max(len(rows) - 1, 0))
        return Response(status_code=201)
    return upload


def _rows(job: dict[str, Any]) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for text in job["_data"]:
        reader = csv.DictReader(io.StringIO(text), delimiter=DELIMITERS[job["columnDelimiter"]])
        if job["_header"] is None:
            job["_header"] = list(reader.fieldnames or [])
        rows.extend(reader)
    return rows


def _process(ctx: SandboxContext, job: dict[str, Any], request: Request) -> None:
    rows = _rows(job)
    obj, op = job["object"], job["operation"]
    batch = Batch(ctx, obj, job["_version"], request_id=request.state.request_id, bulk=True)
    ok: list[tuple[Any, dict[str, str]]] = []
    for row in rows:
        row = {k: v for k, v in row.items() if k is not None}
        try:
            if op == "insert":
                ok.append((batch.plan_create(row), row))
            elif op == "update":
                ok.append((batch.plan_update(row.get("Id", ""), row), row))
            elif op == "upsert":
                ext = job["externalIdFieldName"]
                value = next((v for k, v in row.items() if k.lower() == ext.lower()), "")
                if ext.lower() == "id":
                    planned = (batch.plan_update(value, row) if value
                               else batch.plan_create({k: v for k, v in row.items() if k.lower() != "id"}))
                elif not value:
                    raise RecordError(error("MISSING_ARGUMENT", f"{ext} not specified", []))
                else:
                    planned = batch.plan_upsert(ext, value, row)
                ok.append((planned, row))
            else:
                if set(row) != {"Id"}:
                    raise RecordError(error("INVALID_FIELD", "The delete batch must contain only Id", []))
                delete(ctx, obj, row["Id"], request.state.request_id)
                ok.append((row["Id"], row))
        except RecordError as exc:
            e = exc.errors[0]
            job["_failed"].append((row.get("Id", ""), f"{e['statusCode']}:{e['message']}:{','.join(e['fields'])} --",
                                   row))
    batch.commit()
    for planned, row in ok:
        if isinstance(planned, str):
            job["_success"].append((planned, "false", row))
        else:
            job["_success"].append((planned.record_id, "true" if planned.created else "false", row))
    job.update({
        "state": "JobComplete", "systemModstamp": _now(), "numberRecordsProcessed": len(rows),
        "numberRecordsFailed": len(job["_failed"]), "retries": 0, "totalProcessingTime": 50,
        "apiActiveProcessingTime": 40, "apexProcessingTime": 0,
    })


def results_handler(ctx: SandboxContext, kind: str):
    async def results(request: Request) -> Response:
        job = _job(ctx, request, "ingest")
        header = job["_header"] or []
        d, le = DELIMITERS[job["columnDelimiter"]], LINE_ENDINGS[job["lineEnding"]]
        if kind == "unprocessed":
            rows = [header] + [[r.get(h, "") for h in header] for r in job["_unprocessed"]]
        else:
            first, second = ("sf__Id", "sf__Created") if kind == "successful" else ("sf__Id", "sf__Error")
            source = job["_success"] if kind == "successful" else job["_failed"]
            rows = [[first, second, *header]] + [[a, b, *[row.get(h, "") for h in header]] for a, b, row in source]
        ctx.stats.count_records(CRM, request.method, request.state.endpoint, len(rows) - 1)
        return _csv_response(_csv_text(rows, d, le))
    return results


# --- Query -------------------------------------------------------------------------------------

def query_jobs_handler(ctx: SandboxContext):
    async def create(request: Request) -> Response:
        if request.method == "GET":
            with state(ctx).lock:
                jobs = [_public(j) for j in state(ctx).jobs.values() if j["_kind"] == "query"]
            return JSONResponse({"done": True, "records": jobs, "nextRecordsUrl": None})
        body = await json_body(request)
        operation = body.get("operation", "query")
        if operation not in ("query", "queryAll"):
            raise _invalid_job(f"Invalid operation: {operation}")
        text = body.get("query")
        if not text:
            raise SalesforceError(400, "INVALIDJOB", "InvalidJob : a query is required")
        version = version_of(request)
        plan, reader, rows = run_soql(ctx, version, text, operation == "queryAll")
        if plan.query.is_count or plan.query.offset:
            raise SalesforceError(400, "API_ERROR", "COUNT() and OFFSET are not supported by Bulk API 2.0 queries")
        delimiter = body.get("columnDelimiter", "COMMA")
        line_ending = body.get("lineEnding", "LF")
        if delimiter not in DELIMITERS or line_ending not in LINE_ENDINGS:
            raise _invalid_job("Invalid columnDelimiter or lineEnding")
        job_id = _job_id()
        job = {
            "id": job_id, "operation": operation, "object": plan.query.object, "createdById": INTEGRATION_USER_ID,
            "createdDate": _now(), "systemModstamp": _now(), "state": "UploadComplete",
            "concurrencyMode": "Parallel", "contentType": "CSV", "apiVersion": float(version),
            "lineEnding": line_ending, "columnDelimiter": delimiter,
            "_kind": "query", "_columns": plan.columns,
        }
        answer = _public(job)
        # The job is accepted either way; a query the org cannot chunk fails while it runs.
        failure = chunking.timeout(plan.query, rows, setting(ctx, "bulk_unchunked_row_limit"))
        if failure is not None:
            job.update({"state": "Failed", "jobType": "V2Query", "errorMessage": failure,
                        "numberRecordsProcessed": 0, "retries": 0, "totalProcessingTime": 120_000,
                        "isPkChunkingSupported": True, "_cells": []})
        else:
            if chunking.chunked(plan.query):
                rows = chunking.in_chunk_order(rows, setting(ctx, "bulk_pk_chunk_size"))
            job.update({"state": "JobComplete", "jobType": "V2Query", "numberRecordsProcessed": len(rows),
                        "retries": 0, "totalProcessingTime": 40, "isPkChunkingSupported": True,
                        "_cells": [reader.to_csv_cells(plan, r) for r in rows]})
        with state(ctx).lock:
            state(ctx).jobs[job_id] = job
        return JSONResponse(answer)
    return create


def query_job_handler(ctx: SandboxContext):
    async def job_info(request: Request) -> Response:
        job = _job(ctx, request, "query")
        if request.method == "DELETE":
            with state(ctx).lock:
                state(ctx).jobs.pop(job["id"], None)
            return Response(status_code=204)
        if request.method == "PATCH":
            wanted = (await json_body(request)).get("state")
            if wanted == "Aborted" and job["state"] != "JobComplete":
                job["state"] = "Aborted"
                return JSONResponse(_public(job))
            raise SalesforceError(400, "INVALIDJOBSTATE", f"Job {job['id']} cannot change to state {wanted}")
        return JSONResponse(_polled(ctx, job))
    return job_info


def _locator(offset: int) -> str:
    return base64.b64encode(str(offset).encode()).decode().rstrip("=")


def _offset(locator: str) -> int | None:
    try:
        return int(base64.b64decode(locator + "=" * (-len(locator) % 4)).decode())
    except ValueError:
        return None


def query_results_handler(ctx: SandboxContext):
    async def results(request: Request) -> Response:
        job = _job(ctx, request, "query")
        if job["state"] != "JobComplete":
            raise SalesforceError(400, "INVALIDJOBSTATE", "Job is not complete")
        raw_max = request.query_params.get("maxRecords", str(DEFAULT_MAX_RECORDS))
        if not raw_max.isdigit() or int(raw_max) < 1:
            raise SalesforceError(400, "INVALIDREQUEST", "maxRecords must be a positive integer")
        size = int(raw_max)
        start = 0
        if request.query_params.get("locator"):
            start = _offset(request.query_params["locator"])
            if start is None:
                raise SalesforceError(400, "INVALIDLOCATOR", "Invalid locator")
        cells = job["_cells"]
        page = cells[start:start + size]
        end = start + len(page)
        text = _csv_text([job["_columns"], *page], DELIMITERS[job["columnDelimiter"]], LINE_ENDINGS[job["lineEnding"]])
        ctx.stats.count_records(CRM, request.method, request.state.endpoint, len(page))
        return _csv_response(text, {"Sforce-Locator": _locator(end) if end < len(cells) else "null",
                                    "Sforce-NumberOfRecords": str(len(page))})
    return results


def routes(ctx: SandboxContext) -> list[Route]:
    def r(path: str, handler, methods: list[str]) -> Route:
        return ctx.route(CRM, path, api(ctx, handler), methods, error_shape)

    return [
        r(J + "/ingest", ingest_jobs_handler(ctx), ["POST", "GET"]),
        r(J + "/ingest/{job_id}", ingest_job_handler(ctx), ["GET", "PATCH", "DELETE"]),
        r(J + "/ingest/{job_id}/batches", batches_handler(ctx), ["PUT"]),
        r(J + "/ingest/{job_id}/successfulResults", results_handler(ctx, "successful"), ["GET"]),
        r(J + "/ingest/{job_id}/failedResults", results_handler(ctx, "failed"), ["GET"]),
        r(J + "/ingest/{job_id}/unprocessedrecords", results_handler(ctx, "unprocessed"), ["GET"]),
        r(J + "/ingest/{job_id}/unprocessedRecords", results_handler(ctx, "unprocessed"), ["GET"]),
        r(J + "/query", query_jobs_handler(ctx), ["POST", "GET"]),
        r(J + "/query/{job_id}", query_job_handler(ctx), ["GET", "PATCH", "DELETE"]),
        r(J + "/query/{job_id}/results", query_results_handler(ctx), ["GET"]),
    ]
