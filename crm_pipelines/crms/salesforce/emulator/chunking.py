"""PK chunking of Bulk API 2.0 query jobs, as a real org does it and as it stops doing it.

A real org splits a big query job into chunks by record Id ranges and runs them in parallel, so
the results come back chunk by chunk in no promised order — not sorted by Id, let alone by
SystemModstamp. ``ORDER BY`` and ``LIMIT`` turn chunking off; the query then runs as one piece,
takes longer, and on a big object fails with a query timeout
(developer.salesforce.com/docs/platform/api-asynch/guide/bulk-api-2-0-troubleshoot-query-timeouts.html).

The sandbox plays both: a chunked job answers its chunks last first (reverse Id ranges), so a
connector that takes the last row for the newest one is wrong here as it would be on an org; an
unchunked job over more rows than ``bulk_unchunked_row_limit`` fails as the org's would time out.
Settings: bulk_pk_chunk_size (records an Id-range chunk holds) and bulk_unchunked_row_limit (the
rows an unchunked query job can read before it times out; the limit is low on purpose — the
connector pulls through Bulk API 2.0 only past 10,000 records, and any ordered bulk pull of that
size is the one that times out on a customer's biggest org).
"""

from __future__ import annotations

from typing import Any

from crm_pipelines.crms.salesforce.emulator import soql
from crm_pipelines.sandbox.store import Record

TIMEOUT_MESSAGE = ("QUERY_TIMEOUT: Your query request was running for too long. ORDER BY and LIMIT disable "
                   "PK chunking for Bulk API 2.0 queries; remove them or add filter criteria")


def chunked(query: soql.Query) -> bool:
    """Whether the org can PK-chunk the query: not with ORDER BY or LIMIT."""
    return not query.order and query.limit is None


def in_chunk_order(rows: list[Record], chunk_size: int) -> list[Record]:
    """The rows as the chunks' results arrive: Id ranges of ``chunk_size``, the last range first."""
    by_id = sorted(rows, key=lambda r: r.id)
    size = max(int(chunk_size), 1)
    chunks = [by_id[start:start + size] for start in range(0, len(by_id), size)]
    return [row for chunk in reversed(chunks) for row in chunk]


def timeout(query: soql.Query, rows: list[Any], limit: int) -> str | None:
    """The job's errorMessage when an unchunked query reads more rows than the org can in time."""
    if chunked(query) or len(rows) <= int(limit):
        return None
    return TIMEOUT_MESSAGE
