"""The write ledger: every intended write is recorded before it is sent and its outcome after,
so a push that crashes, is killed or runs out of retries can be run again and finish what is
left — nothing written twice (creates are upserts on the Enginy id), nothing forgotten.

A write's id is a digest of its intent (the batch it belongs to, object, record, action and what
it writes): pushing the same batch again skips what is done; a new batch is new writes, so a
value someone changed back in the CRM since is written again.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any, Iterable

import pandas as pd

from crm_pipelines.export.values import is_empty
from crm_pipelines.export.writes import Write, WriteResult

# The warehouse tables (and Dagster assets) the record push and the activity push keep their ledgers
# in; activities keep their own, so that the two pushes running at once never drop each other's entries.
EXPORT_LEDGER, ACTIVITY_LEDGER = "export_ledger", "activity_ledger"
LEDGER_COLUMNS = ["write_id", "object", "enginy_id", "action", "crm_id", "status", "error", "error_code",
                  "attempts", "updated_at"]
# Outcomes that end a write; "sent" (no answer recorded: the push died) and "failed" (retries
# spent) are sent again by the next run.
FINAL = ("created", "updated", "rejected")


def empty_ledger() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in LEDGER_COLUMNS}).astype({"attempts": "int64"})


def _value(row: dict[str, Any], name: str) -> Any:
    """A batch value, None where missing (a table read back from the warehouse says NaN)."""
    value = row.get(name)
    return None if is_empty(value) else value


def write_id(obj: str, row: dict[str, Any]) -> str:
    row = {k: _value(row, k) for k in row} if isinstance(row, dict) else row
    intent = {"batch": row.get("batch_id"), "object": obj, "enginy_id": row["enginy_id"], "action": row["action"], "crm_id": row.get("crm_id"),
              "fields": row.get("fields") or {}, "owner_id": row.get("owner_id"),
              "company_crm_id": row.get("company_crm_id"), "company_link": row.get("company_link"),
              "unlink_company_id": row.get("unlink_company_id")}
    return hashlib.sha256(json.dumps(intent, sort_keys=True, default=str).encode()).hexdigest()[:32]


def writes_to_send(obj: str, batch: pd.DataFrame, ledger: pd.DataFrame, allow_duplicates: bool = False) -> list[Write]:
    """The batch's creates and updates that the ledger does not hold as done."""
    done = set(ledger.loc[ledger["status"].isin(FINAL), "write_id"]) if len(ledger) else set()
    writes = []
    for row in batch.to_dict("records"):
        if row["action"] not in ("create", "update"):
            continue
        wid = write_id(obj, row)
        if wid in done:
            continue
        fields = {k: v for k, v in (row.get("fields") or {}).items() if not (isinstance(v, float) and v != v)}
        writes.append(Write(wid, row["action"], str(row["enginy_id"]), fields,
                            crm_id=_value(row, "crm_id"), owner_id=_value(row, "owner_id"),
                            company_id=_value(row, "company_crm_id"),
                            company_link=_value(row, "company_link") or "primary",
                            unlink_company_id=_value(row, "unlink_company_id"), allow_duplicates=allow_duplicates))
    return writes


def mark_sent(ledger: pd.DataFrame, obj: str, writes: Iterable[Write]) -> pd.DataFrame:
    """Record writes as sent, before the call that sends them."""
    now = datetime.now(timezone.utc)
    rows = {w.write_id: {"write_id": w.write_id, "object": obj, "enginy_id": w.enginy_id, "action": w.action,
                         "crm_id": w.crm_id, "status": "sent", "error": None, "error_code": None,
                         "updated_at": now} for w in writes}
    return _upsert(ledger, rows, count_attempt=True)


def record_results(ledger: pd.DataFrame, results: Iterable[WriteResult]) -> pd.DataFrame:
    now = datetime.now(timezone.utc)
    known = ledger.set_index("write_id") if len(ledger) else None
    rows = {}
    for r in results:
        base = known.loc[r.write_id].to_dict() if known is not None and r.write_id in known.index else {}
        rows[r.write_id] = {**base, "write_id": r.write_id, "status": r.status,
                            "crm_id": r.crm_id or base.get("crm_id"), "error": r.error, "error_code": r.error_code,
                            "updated_at": now}
    return _upsert(ledger, rows, count_attempt=False)


def _upsert(ledger: pd.DataFrame, rows: dict[str, dict[str, Any]], count_attempt: bool) -> pd.DataFrame:
    if not rows:
        return ledger
    attempts = dict(zip(ledger["write_id"], ledger["attempts"])) if len(ledger) else {}
    for wid, row in rows.items():
        row["attempts"] = int(attempts.get(wid, 0)) + (1 if count_attempt else 0)
    kept = ledger[~ledger["write_id"].isin(rows)] if len(ledger) else ledger
    fresh = pd.DataFrame(list(rows.values()))[LEDGER_COLUMNS]
    return pd.concat([kept, fresh], ignore_index=True) if len(kept) else fresh.reset_index(drop=True)
