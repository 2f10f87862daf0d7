"""Writes in doubt, told truthfully: a create whose answer was lost, and the writes a stopped push
left without an answer.

A create is in doubt from the moment the ledger records it sent: the CRM may write it and the
answer never arrive (a dropped connection, a killed run). Creates are upserts on the Enginy id, so
the send that follows — a retry, the next attempt, the next run — finds the record and the CRM
answers "updated". The batch made it a create because the snapshot held no record of that Enginy
id; the ledger says whether an earlier write of ours finished on it. When neither knew a record,
the one the CRM updated is the one our own unanswered send created: the write is created.

A push killed mid-batch leaves its writes "sent" (no answer) or "failed" (retries spent). The same
batch pushed again sends them again; a new batch (new write ids) has writes of its own for the
same records, and once those end, the old entries are superseded by them — no entry waits forever.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Collection

import numpy as np
import pandas as pd

from crm_pipelines.export.writes import Write, WriteResult
from crm_pipelines.frames import is_in

# Entries without a final answer: no answer recorded (the push died) or retries spent.
UNANSWERED = ("sent", "failed")
SUPERSEDED = "superseded"
# Batch rows that have ended (crm_push_results' statuses): their record's older writes are settled.
ENDED = ("created", "updated", "skipped", "rejected")


def settled(writes: list[Write], results: list[WriteResult], existed: Collection[str]) -> list[WriteResult]:
    """The CRM's answers to ``writes``, with a create answered "updated" told as created unless its
    record ``existed`` (Enginy ids an earlier write of ours finished on). One chunk at a time."""
    creates = {w.write_id for w in writes if w.action == "create" and w.enginy_id not in existed}
    return [replace(r, status="created") if r.status == "updated" and r.write_id in creates else r for r in results]


def records_written(entries: pd.DataFrame, ids: list[str | None]) -> pd.Index:
    """The Enginy ids that ledger ``entries`` (write_id, enginy_id, status) of writes other than
    the batch's (``ids``) show a record of ours existed for: a write of theirs ended created or
    updated."""
    done = entries["status"].isin(["created", "updated"]) & ~is_in(entries["write_id"], ids)
    return pd.Index(entries.loc[done, "enginy_id"].astype(str).unique())


def superseded(entries: pd.DataFrame, ids: list[str | None], ended: pd.DataFrame, batch_id: str,
               carried: Collection[str] = ()) -> pd.DataFrame:
    """The ledger rows that settle the unanswered ``entries`` of writes other than the batch's
    (``ids``: the same batch pushed again sends its own) whose record this batch has ended
    (``ended``: crm_push_results' rows — enginy_id, action, status, crm_id): each superseded, with
    the CRM record the batch ended it at, and why. Entries of records the batch did not end (not
    in it, or its write failed) wait for a batch that does.

    A create sent without an answer whose record the new batch found by the Enginy id it carries
    (``carried``: matched by our own id) landed: only our push writes that id, and the batch that
    sent the create had found no record for it. That entry is created, not superseded."""
    open_ = entries[entries["status"].isin(UNANSWERED) & ~is_in(entries["write_id"], ids)]
    done = ended[ended["status"].isin(ENDED)].drop_duplicates("enginy_id", keep="last")
    rows = open_[["write_id", "enginy_id", "crm_id", "status", "action"]].rename(
        columns={"action": "old_action"}).merge(
        done[["enginy_id", "action", "status", "crm_id"]].astype({"enginy_id": str}).rename(
            columns={"action": "new_action", "status": "new_status", "crm_id": "new_crm_id"}),
        on="enginy_id")
    if rows.empty:
        return pd.DataFrame(columns=["write_id", "status", "crm_id", "error", "updated_at"])
    was = rows["status"].map({"sent": "no answer was recorded (the push was stopped)",
                              "failed": "its retries ran out"})
    landed = (rows["old_action"].eq("create") & rows["status"].eq("sent") & rows["new_crm_id"].notna()
              & is_in(rows["enginy_id"].astype(str), list(carried))).to_numpy(bool)
    why = (was + f"; superseded by batch {batch_id}, whose " + rows["new_action"].astype(str)
           + " of this record ended " + rows["new_status"].astype(str))
    why[landed] = f"its answer was lost; batch {batch_id} found the record it created by the Enginy id it carries"
    return pd.DataFrame({
        "write_id": rows["write_id"].to_numpy(object),
        "status": np.where(landed, "created", SUPERSEDED).astype(object),
        "crm_id": rows["new_crm_id"].where(rows["new_crm_id"].notna(), rows["crm_id"]).to_numpy(object),
        "error": why.to_numpy(object),
        "updated_at": pd.Timestamp.now(tz="UTC")})
