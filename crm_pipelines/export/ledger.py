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
# job_id: the bulk job a write was handed to, recorded before its data is uploaded, so a run that
# was killed while the job ran reads the job's results instead of sending the writes again.
LEDGER_COLUMNS = ["write_id", "object", "enginy_id", "action", "crm_id", "status", "error", "error_code",
                  "attempts", "updated_at", "job_id"]
# Outcomes that end a write; "sent" (no answer recorded: the push died) and "failed" (retries
# spent) are sent again by the next run.
FINAL = ("created", "updated", "rejected")


def empty_ledger() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in LEDGER_COLUMNS}).astype({"attempts": "int64"})


# The batch columns a write is made of: its intent (the write id's digest) and how it is sent.
WRITE_COLUMNS = ("batch_id", "enginy_id", "action", "crm_id", "fields", "owner_id", "company_crm_id",
                 "company_link", "unlink_company_id")


def _write_rows(batch: pd.DataFrame) -> list[dict[str, Any]]:
    """The batch's rows as dicts of the columns a write is made of, None where a value is empty (a
    table read back from the warehouse says NaN). Built a column at a time: pandas' to_dict of a
    whole batch boxed every value of every column, most of the cost of a million-row push's
    planning."""
    columns = {name: [None if is_empty(v) else v for v in batch[name].tolist()]
               for name in WRITE_COLUMNS if name in batch}
    return [dict(zip(columns, values)) for values in zip(*columns.values())]


def write_id(obj: str, row: dict[str, Any]) -> str:
    """The digest of a write's intent; ``row`` as _write_rows gives it."""
    intent = {"batch": row.get("batch_id"), "object": obj, "enginy_id": row.get("enginy_id"),
              "action": row.get("action"), "crm_id": row.get("crm_id"), "fields": row.get("fields") or {},
              "owner_id": row.get("owner_id"), "company_crm_id": row.get("company_crm_id"),
              "company_link": row.get("company_link"), "unlink_company_id": row.get("unlink_company_id")}
    return hashlib.sha256(json.dumps(intent, sort_keys=True, default=str).encode()).hexdigest()[:32]


def write_ids(obj: str, batch: pd.DataFrame) -> list[str | None]:
    """Each batch row's write id, None for a skip or a rejection (nothing is written)."""
    return [write_id(obj, row) if row["action"] in ("create", "update") else None for row in _write_rows(batch)]


def writes_to_send(obj: str, batch: pd.DataFrame, ledger: pd.DataFrame, allow_duplicates: bool = False,
                   ids: list[str | None] | None = None) -> list[Write]:
    """The batch's creates and updates that the ledger does not hold as done; ``ids``: the rows'
    write ids when the caller has them already (see write_ids)."""
    done = set(ledger.loc[ledger["status"].isin(FINAL), "write_id"]) if len(ledger) else set()
    ids = write_ids(obj, batch) if ids is None else ids
    writes = []
    for row, wid in zip(_write_rows(batch), ids):
        if wid is None or wid in done:
            continue
        fields = {k: v for k, v in (row.get("fields") or {}).items() if not (isinstance(v, float) and v != v)}
        writes.append(Write(wid, row["action"], str(row["enginy_id"]), fields,
                            crm_id=row.get("crm_id"), owner_id=row.get("owner_id"),
                            company_id=row.get("company_crm_id"), company_link=row.get("company_link") or "primary",
                            unlink_company_id=row.get("unlink_company_id"), allow_duplicates=allow_duplicates))
    return writes


# The ledger tables' columns as SQL types (both warehouses read them): the warehouse keeps them keyed
# by write id, so each chunk's rows are upserted rather than the table rewritten.
LEDGER_SQL_TYPES = {"write_id": "VARCHAR", "object": "VARCHAR", "enginy_id": "VARCHAR", "action": "VARCHAR",
                    "crm_id": "VARCHAR", "status": "VARCHAR", "error": "VARCHAR", "error_code": "VARCHAR",
                    "attempts": "BIGINT", "updated_at": "TIMESTAMP WITH TIME ZONE", "job_id": "VARCHAR"}


class Ledger:
    """A ledger held by write id while a push runs: recording a chunk costs what the chunk touches,
    and each change comes back as just the rows it changed, for the warehouse to upsert — not the
    whole ledger again, which made a push slow down as it grew."""

    def __init__(self, frame: pd.DataFrame | None = None) -> None:
        frame = empty_ledger() if frame is None else frame.reindex(columns=LEDGER_COLUMNS)
        records = frame[LEDGER_COLUMNS].astype(object).where(frame[LEDGER_COLUMNS].notna(), None)
        self._rows: dict[str, dict[str, Any]] = {row["write_id"]: row for row in records.to_dict("records")}

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, write_id: str) -> dict[str, Any] | None:
        return self._rows.get(write_id)

    def mark_sent(self, obj: str, writes: Iterable[Write]) -> pd.DataFrame:
        """Record writes as sent, before the call that sends them; returns the rows changed."""
        now = datetime.now(timezone.utc)
        return self._put([{"write_id": w.write_id, "object": obj, "enginy_id": w.enginy_id, "action": w.action,
                           "crm_id": w.crm_id, "status": "sent", "error": None, "error_code": None,
                           "attempts": int((self._rows.get(w.write_id) or {}).get("attempts") or 0) + 1,
                           "updated_at": now, "job_id": None} for w in writes])

    def mark_job(self, job_id: str, writes: Iterable[Write]) -> pd.DataFrame:
        """Record the bulk job that writes sent (and not answered yet) were handed to, before its
        data is uploaded; returns the rows changed."""
        now = datetime.now(timezone.utc)
        return self._put([{**self._rows[w.write_id], "job_id": job_id, "updated_at": now} for w in writes])

    def in_jobs(self, writes: Iterable[Write]) -> dict[str, list[Write]]:
        """The writes an earlier run handed to a bulk job and never heard the answer of, by job."""
        jobs: dict[str, list[Write]] = {}
        for w in writes:
            row = self._rows.get(w.write_id) or {}
            if row.get("status") == "sent" and row.get("job_id"):
                jobs.setdefault(row["job_id"], []).append(w)
        return jobs

    def record(self, results: Iterable[WriteResult]) -> pd.DataFrame:
        """Record the CRM's answers; returns the rows changed."""
        now = datetime.now(timezone.utc)
        changed = []
        for r in results:
            base = self._rows.get(r.write_id) or {"attempts": 0}
            changed.append({**base, "write_id": r.write_id, "status": r.status,
                            "crm_id": r.crm_id or base.get("crm_id"), "error": r.error, "error_code": r.error_code,
                            "updated_at": now})
        return self._put(changed)

    def _put(self, rows: list[dict[str, Any]]) -> pd.DataFrame:
        for row in rows:
            self._rows[row["write_id"]] = row
        return _frame(rows)

    def frame(self) -> pd.DataFrame:
        return _frame(list(self._rows.values()))


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    if not rows:
        return empty_ledger()
    return pd.DataFrame(rows, columns=LEDGER_COLUMNS).astype({"attempts": "int64"})
