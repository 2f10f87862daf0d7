"""Creating activities at most once in CRMs whose activities have no upsert (Salesforce Tasks,
HubSpot engagements): a create is never sent again blindly. When its answer may have been lost
(a dropped connection, a 5xx: the CRM may have written), the activities are looked up by their
key first and only those the CRM does not hold are sent again."""

import random
import time
from typing import Callable

from crm_pipelines.export.writes import Activity
from crm_pipelines.export.writes import WriteResult
from crm_pipelines.crms.wire.retries import TRANSIENT_ERRORS, TransientCrmError

# Find: activity keys → {key: CRM activity id} for those the CRM holds. Create: one attempt, no
# retry of its own; one result per activity.
Find = Callable[[list[str]], dict[str, str]]
Create = Callable[[list[Activity]], list[WriteResult]]


def _written_maybe(error: Exception) -> bool:
    # A 429 is refused before anything is written; every other transient failure may hide a write.
    return not (isinstance(error, TransientCrmError) and error.status == 429)


def _pause(error: Exception, attempt: int) -> float:
    if isinstance(error, TransientCrmError) and error.retry_after is not None:
        return min(error.retry_after, 120.0)
    return min(30.0, 0.2 * 2 ** attempt) * random.uniform(0.5, 1.0)


def log_once(activities: list[Activity], create: Create, find: Find, attempts: int = 6) -> list[WriteResult]:
    """Create ``activities`` (one chunk at the CRM's ceiling); each lands once or ends failed."""
    results: dict[str, WriteResult] = {}
    pending = list(activities)
    doubtful = {a.write_id for a in activities if a.in_doubt}
    error: Exception | None = None
    for attempt in range(attempts):
        if doubtful:
            try:
                found = find(sorted(doubtful & {a.write_id for a in pending}))
            except TRANSIENT_ERRORS as exc:  # cannot tell what landed: send nothing, try next run
                error = exc
                break
            results.update((key, WriteResult(key, "created", crm_id)) for key, crm_id in found.items())
            pending = [a for a in pending if a.write_id not in found]
            doubtful.clear()
        if not pending:
            break
        try:
            results.update((r.write_id, r) for r in create(pending))
            pending = []
            break
        except TRANSIENT_ERRORS as exc:
            error = exc
            if _written_maybe(exc):
                doubtful = {a.write_id for a in pending}
            if attempt + 1 < attempts:
                time.sleep(_pause(exc, attempt))
    for a in pending:  # attempts spent: the ledger keeps them in doubt for the next run
        results[a.write_id] = WriteResult(a.write_id, "failed", error=str(error))
    return [results[a.write_id] for a in activities]


def clip(text: str | None, limit: int) -> str | None:
    """A value cut to the CRM field's length, marked as cut."""
    if text is None or len(text) <= limit:
        return text
    return text[:limit - 1] + "…"
