"""Two in-house CRMs, as a customer of the Custom CRM (beta) might run them, each described only
by a YAML file in crm_pipelines/crms/custom/examples/ — no adapter code of their own:

- ``northwind`` (northwind.py): JSON under /northwind/api, ``X-Api-Key``, cursor paging
  (``meta.next_cursor``), camelCase fields, ISO times, archived records, POST create + PATCH
  update, lookup by ``?enginyId=``, ``X-RateLimit-*`` headers with an epoch reset.
- ``oldbook`` (oldbook.py): JSON under /oldbook/v1, ``Authorization: Token …``, page-number
  paging (``?page=&per_page=``, ``total_pages``), snake_case fields with other names, epoch-second
  times, ``status: deleted``, PUT upsert at /contacts/external/{enginy_id} and PUT update.

This module holds what they share: the API-key check, a fixed rate-limit window and errors.
"""

from __future__ import annotations

import json
import math
import threading
import time
from datetime import datetime
from typing import Any

import pandas as pd
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from crm_pipelines.sandbox.app import SandboxContext


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class Window:
    """``limit`` calls per ``seconds``; a reset sandbox starts a fresh window."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started, self.used, self.generation = 0.0, 0, -1

    def admit(self, ctx: SandboxContext, limit: int | None, seconds: float) -> tuple[bool, int, float]:
        """(admitted, calls left, epoch seconds of the reset)."""
        with self.lock:
            now = time.monotonic()
            if self.generation != ctx.store.generation or now - self.started >= seconds:
                self.started, self.used, self.generation = now, 0, ctx.store.generation
            if limit is None:
                return True, 0, 0.0
            admitted = self.used < limit
            self.used += admitted
            return admitted, limit - self.used, time.time() + self.started + seconds - now


async def json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except json.JSONDecodeError:
        raise ApiError(400, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


def text(value: Any) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    value = str(value).strip()
    return value or None


def error_response(status: int, message: str, shape: str) -> Response:
    """``shape``: the key the API puts its message under."""
    return JSONResponse({shape: message}, status_code=status)


def when(value: Any) -> datetime | None:
    """A seed timestamp as an aware UTC datetime."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    stamp = pd.Timestamp(value)
    return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp).to_pydatetime()


def custom_crm_environment(crm: str, prefix: str, api_key: str, sandbox) -> dict[str, str]:
    """The variables that connect the Custom CRM, through its example API description
    crms/custom/examples/<crm>.yaml, to the in-house CRM ``crm`` of the sandbox."""
    from crm_pipelines.crms.custom.api import EXAMPLE_APIS, load_api

    api_file = EXAMPLE_APIS / f"{crm}.yaml"
    return {"CUSTOM_CRM_API_FILE": str(api_file), "CUSTOM_CRM_BASE_URL": sandbox.base_url + prefix,
            load_api(api_file).auth.env: api_key, "CUSTOM_CRM_CA_BUNDLE": str(sandbox.tls.ca_bundle.resolve())}
