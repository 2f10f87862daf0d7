"""``POST /api/data/v9.2/$batch``: multipart/mixed requests with change sets (OData 4.0 §11.7).

Operations run in order. A change set is one transaction: its writes go to an ``Overlay`` and
reach the store only if all of them succeed; when one fails, the answer for that change set is
the single failing operation's error, and nothing of it is kept. Like Dataverse, processing
stops at the first failure unless the request says ``Prefer: odata.continue-on-error``.
``$n`` (a Content-ID of an earlier operation in the same change set) stands for the URL of the
row that operation wrote, in request URLs and in ``@odata.bind`` values.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qsl, urlsplit

from starlette.responses import Response

from crm_pipelines.sandbox.app import SandboxContext

from .calls import API, Answer, Call
from .records import BAD_QUERY, Data, ODataError, Overlay

# Runs one operation of the batch: webapi.dispatch, handed in by the route that serves $batch.
Dispatch = Callable[[SandboxContext, Data, Call], Answer]

MAX_OPERATIONS = 1000


@dataclass
class Part:
    call: Call
    content_id: str | None


@dataclass
class ChangeSet:
    parts: list[Part] = field(default_factory=list)


def _boundary(content_type: str) -> str:
    match = re.search(r'boundary="?([^";]+)"?', content_type or "")
    if not match:
        raise ODataError(400, BAD_QUERY, "The batch request must have a multipart/mixed "
                                         "Content-Type with a boundary.")
    return match.group(1)


def _split(text: str, boundary: str) -> list[str]:
    """The body parts between ``--boundary`` delimiters (preamble and epilogue dropped)."""
    pieces = re.split(r"(?:^|\r?\n)--" + re.escape(boundary) + r"(--)?[ \t]*(?:\r?\n|$)", text)
    # re.split with one group yields: preamble, close-marker, part, close-marker, part, …
    parts = []
    for i in range(2, len(pieces), 2):
        if pieces[i - 1] == "--":
            break
        parts.append(pieces[i])
    return parts


def _headers_and_rest(text: str) -> tuple[dict[str, str], str]:
    """MIME/HTTP header lines up to the first blank line, and what follows it."""
    match = re.search(r"(?:^|\r?\n)\r?\n", text)
    head, rest = (text, "") if match is None else (text[:match.start()], text[match.end():])
    headers = {}
    for line in re.split(r"\r?\n", head):
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers, rest


def _operation(text: str, ctx_api: str) -> Part:
    mime, http = _headers_and_rest(text)
    request_line, _, remainder = http.lstrip("\r\n").partition("\n")
    words = request_line.strip().split()
    if len(words) < 2:
        raise ODataError(400, BAD_QUERY, f"Bad request line in batch part: '{request_line.strip()}'.")
    method, url = words[0].upper(), words[1]
    headers, body = _headers_and_rest(remainder)
    split = urlsplit(url)
    path = split.path
    if path.startswith(ctx_api):
        path = path[len(ctx_api):]
    path = path.split(API, 1)[-1].lstrip("/")
    call = Call(method, path, dict(parse_qsl(split.query, keep_blank_values=True)), headers,
                body.rstrip("\r\n").encode("utf-8"))
    return Part(call, mime.get("content-id"))


def parse(body: bytes, content_type: str, api: str) -> list[Part | ChangeSet]:
    text = body.decode("utf-8")
    items: list[Part | ChangeSet] = []
    for raw in _split(text, _boundary(content_type)):
        mime, rest = _headers_and_rest(raw)
        if mime.get("content-type", "").lower().startswith("multipart/mixed"):
            changeset = ChangeSet()
            for inner in _split(rest, _boundary(mime["content-type"])):
                part = _operation(inner, api)
                if part.call.method == "GET":
                    raise ODataError(400, BAD_QUERY, "A change set cannot contain GET requests.")
                changeset.parts.append(part)
            items.append(changeset)
        else:
            items.append(_operation(raw, api))
    count = sum(len(i.parts) if isinstance(i, ChangeSet) else 1 for i in items)
    if count > MAX_OPERATIONS:
        raise ODataError(400, BAD_QUERY, f"The batch contains {count} requests; the maximum "
                                         f"number of requests in a batch is {MAX_OPERATIONS}.")
    return items


def _http(status: int, headers: dict[str, str], body: object) -> str:
    reason = HTTPStatus(status).phrase
    lines = [f"HTTP/1.1 {status} {reason}"]
    payload = ""
    if body is not None:
        headers = {**headers, "Content-Type": "application/json; odata.metadata=minimal"}
        payload = json.dumps(body)
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return "\r\n".join(lines) + "\r\n\r\n" + payload


def _envelope(http: str, content_id: str | None = None) -> str:
    head = "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
    if content_id is not None:
        head += f"Content-ID: {content_id}\r\n"
    return head + "\r\n" + http + "\r\n"


def _run(ctx: SandboxContext, data: Data, part: Part, outer: Call,
         content_ids: dict[str, str], dispatch: Dispatch) -> Answer:
    call = part.call
    call.content_ids = content_ids
    call.request_id = outer.request_id
    if call.path.startswith("$"):  # "$1" or "$1/…": the row an earlier operation wrote
        ref, _, tail = call.path.partition("/")
        if ref not in content_ids:
            raise ODataError(400, BAD_QUERY, f"Unknown Content-ID reference '{ref}'.")
        call.path = content_ids[ref].split(API, 1)[-1].lstrip("/") + (f"/{tail}" if tail else "")
    if call.path == "$batch":
        raise ODataError(400, BAD_QUERY, "A batch request cannot contain another batch request.")
    return dispatch(ctx, data, call)


def execute_batch(ctx: SandboxContext, outer: Call, dispatch: Dispatch) -> tuple[Response, int]:
    api = ctx.base_url + API
    items = parse(outer.body, outer.headers.get("content-type", ""), api)
    continue_on_error = "odata.continue-on-error" in outer.prefer()
    boundary = f"batchresponse_{uuid.uuid4()}"
    chunks: list[str] = []
    written = 0
    base = Data(ctx)
    for item in items:
        if isinstance(item, Part):
            try:
                answer = _run(ctx, base, item, outer, {}, dispatch)
                chunks.append(_envelope(_http(answer.status, answer.headers, answer.body),
                                        item.content_id))
                written += answer.records
                continue
            except ODataError as error:
                chunks.append(_envelope(_http(error.status, {"OData-Version": "4.0", **error.headers},
                                              error.body()), item.content_id))
                if continue_on_error:
                    continue
                break
        overlay, content_ids, answers = Overlay(base), {}, []
        failed: tuple[Part, ODataError] | None = None
        for part in item.parts:
            try:
                answer = _run(ctx, overlay, part, outer, content_ids, dispatch)
            except ODataError as error:
                failed = (part, error)
                break
            if part.content_id is not None and answer.location:
                content_ids[f"${part.content_id}"] = answer.location
            answers.append((part, answer))
        if failed is not None:
            # The change set's answer is the failing operation alone; its Content-ID tells the
            # client which row was refused.
            part, error = failed
            chunks.append(_envelope(_http(error.status, {"OData-Version": "4.0", **error.headers},
                                          error.body()), part.content_id))
            if continue_on_error:
                continue
            break
        overlay.commit()
        written += sum(a.records for _, a in answers)
        inner = f"changesetresponse_{uuid.uuid4()}"
        body = "".join(f"--{inner}\r\n" + _envelope(_http(a.status, a.headers, a.body), p.content_id)
                       for p, a in answers) + f"--{inner}--\r\n"
        chunks.append(f"Content-Type: multipart/mixed; boundary={inner}\r\n\r\n{body}")
    payload = "".join(f"--{boundary}\r\n{chunk}" for chunk in chunks) + f"--{boundary}--\r\n"
    headers = {"OData-Version": "4.0"}
    if continue_on_error:
        headers["Preference-Applied"] = "odata.continue-on-error"
    return Response(payload.encode("utf-8"), status_code=200, headers=headers,
                    media_type=f"multipart/mixed; boundary={boundary}"), written
