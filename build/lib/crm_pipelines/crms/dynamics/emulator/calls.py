"""A Web API call and its answer as the handlers see them, apart from HTTP: what $batch and the
metadata handlers share with the Web API's routing (webapi.py)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from crm_pipelines.sandbox.app import SandboxContext

from . import records
from .records import ODataError

API = "/api/data/v9.2"
ODATA_HEADERS = {"OData-Version": "4.0"}


@dataclass
class Call:
    method: str
    path: str  # below /api/data/v9.2/, e.g. "contacts(…)" or "EntityDefinitions(…)/Attributes"
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    content_ids: dict[str, str] = field(default_factory=dict)  # "$1" → entity URL (in $batch)
    request_id: str | None = None

    def prefer(self) -> dict[str, str]:
        """``Prefer`` preferences by name; quoted values may hold commas."""
        pairs = re.findall(r'\s*([\w.\-]+)\s*(?:=\s*("[^"]*"|[^,]*))?\s*(?:,|$)',
                           self.headers.get("prefer", ""))
        return {name.lower(): value.strip().strip('"') for name, value in pairs}

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"{}")
        except ValueError:
            raise ODataError(400, records.BAD_PAYLOAD, "The request body is not valid JSON.") from None


@dataclass
class Answer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    records: int = 0  # rows returned or written, for the call accounting
    location: str | None = None  # the entity URL a write touched (for $batch Content-ID)


def api_url(ctx: SandboxContext) -> str:
    return ctx.base_url + API
