"""Push one export batch through a CRM client, chunk by chunk, with the ledger saved before and
after every chunk: whatever happens between two saves, the next run knows what to send again.
A save is the chunk's rows only (the warehouse upserts them), so a chunk costs the same at the
end of a million-row push as at its start."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any, Callable, Collection

import pandas as pd

from crm_pipelines.export.in_doubt import settled
from crm_pipelines.export.ledger import FINAL, Ledger, entries, write_ids, writes_to_send
from crm_pipelines.export.writes import Write, WriteResult
from crm_pipelines.progress import pace

DUPLICATE_CODES = ("DUPLICATES_DETECTED",)


def pushed_batches(as_leads: bool) -> tuple[tuple[str, str], ...]:
    """What a push writes, in order, each object with the batch it is sent from: companies first (the
    people are linked to them), then the people — as contacts, or as leads when the push is launched
    with ``as_leads``. The other people batch is not pushed."""
    people = ("leads", "lead_export_batch") if as_leads else ("contacts", "contact_export_batch")
    return ("companies", "company_export_batch"), people


@dataclass
class PushOutcome:
    ledger: pd.DataFrame
    counts: dict[str, int]  # created / updated / rejected / failed in this run
    sent: int  # writes sent in this run (a write sent twice counts twice)
    already_done: int  # writes of the batch an earlier run finished


def run_push(push: Callable[..., list[WriteResult]], obj: str, batch: pd.DataFrame, ledger: pd.DataFrame,
             save: Callable[[pd.DataFrame], None], chunk: int | Callable[[int], int],
             save_anyway_on_duplicates: bool = False, log: Callable[[str], None] = lambda message: None,
             ids: list[str | None] | None = None,
             resume: Callable[[str, list[Write]], list[WriteResult]] | None = None,
             existed: Collection[str] = ()) -> PushOutcome:
    """Send the batch's writes the ledger does not hold as done; ``save`` persists the ledger's
    changed rows (an upsert by write id); the outcome carries the ledger it was given (the whole
    ledger, or the entries of this batch's writes) with this push's changes.
    ``chunk``: writes per call of ``push``, or what it is given how many are pending (a CRM with a
    bulk API takes a whole job's worth when there are enough). ``ids``: the batch rows' write ids,
    when the caller computed them to read just their ledger entries (see ledger.write_ids).

    ``resume``, for a CRM whose big pushes run as bulk jobs: ``push`` is then called with a second
    argument, to call with a job's id and its writes before their data is uploaded (the ledger
    records it), and ``resume(job_id, writes)`` answers the writes of a job an earlier run left in
    flight from that job's results — only writes it has no answer for are sent again.

    A create the CRM answers "updated" is recorded created unless its record ``existed`` (the
    Enginy ids an earlier write of ours finished on): our own send whose answer was lost made it
    (export/in_doubt.py).

    Records a CRM refuses as duplicates are rejected for review, or — when the integration
    says to create on a duplicate warning — sent once more with the CRM's allow-save flag.
    """
    writes = writes_to_send(obj, batch, ledger, ids=ids)
    wanted = int(batch["action"].isin(["create", "update"]).sum())
    already_done = wanted - len(writes)
    counts: Counter[str] = Counter()
    sent = 0
    book = Ledger(ledger)
    extra: tuple[Any, ...] = ()
    if resume is not None:
        writes = _resume_jobs(resume, obj, writes, book, save, counts, log, existed)
        extra = (lambda job_id, part: save(book.mark_job(job_id, part)),)
    chunk = chunk(len(writes)) if callable(chunk) else chunk
    started = time.monotonic()
    for start in range(0, len(writes), chunk):
        part = writes[start:start + chunk]
        save(book.mark_sent(obj, part))
        results = push(part, *extra)
        sent += len(part)
        if save_anyway_on_duplicates:
            again = {r.write_id for r in results if r.status == "rejected" and r.error_code in DUPLICATE_CODES}
            if again:
                retry = [replace(w, allow_duplicates=True) for w in part if w.write_id in again]
                retried = {r.write_id: r for r in push(retry, *extra)}
                sent += len(retry)
                results = [retried.get(r.write_id, r) for r in results]
        results = settled(part, results, existed)
        save(book.record(results))
        counts.update(r.status for r in results)
        log(f"{obj}: chunk {start // chunk + 1} of {-(-len(writes) // chunk)}: "
            + ", ".join(f"{n} {status}" for status, n in sorted(Counter(r.status for r in results).items()))
            + f" — {pace(start + len(part), len(writes), started)}")
    return PushOutcome(book.frame(), dict(counts), sent, already_done)


def _resume_jobs(resume: Callable[[str, list[Write]], list[WriteResult]], obj: str, writes: list[Write],
                 book: Ledger, save: Callable[[pd.DataFrame], None], counts: Counter[str],
                 log: Callable[[str], None], existed: Collection[str]) -> list[Write]:
    """Record what the bulk jobs an earlier run left in flight say of their writes; the writes
    still to send."""
    answered: set[str] = set()
    for job_id, group in book.in_jobs(writes).items():
        results = settled(group, [r for r in resume(job_id, group) if r.status in FINAL], existed)
        save(book.record(results))
        counts.update(r.status for r in results)
        answered.update(r.write_id for r in results)
        log(f"{obj}: bulk job {job_id}, left by an earlier run, answered {len(results):,} of its "
            f"{len(group):,} writes; the rest are sent again")
    return [w for w in writes if w.write_id not in answered]


def outcomes(batch: pd.DataFrame, obj: str, ledger: pd.DataFrame, ids: list[str | None] | None = None) -> pd.DataFrame:
    """Every batch row with how it ended: created / updated / skipped / rejected / failed / pending."""
    columns = ["enginy_id", "action", "status", "crm_id", "reason"]
    if batch.empty:
        return pd.DataFrame(columns=columns)
    frame = batch.reindex(columns=["enginy_id", "action", "crm_id", "reason"]).reset_index(drop=True)
    written = frame["action"].isin(["create", "update"])
    ids = pd.Series(write_ids(obj, batch) if ids is None else ids, dtype=object)
    entry = entries(ledger, ids.where(written, None))
    held = entry["status"].notna().to_numpy()
    status = entry["status"].where(entry["status"].isin(FINAL + ("failed",)), "pending").to_numpy()
    return pd.DataFrame({
        "enginy_id": frame["enginy_id"],
        "action": frame["action"],
        "status": frame["action"].map({"skip": "skipped", "reject": "rejected"}).where(~written, status),
        "crm_id": frame["crm_id"].where(~(written & held), entry["crm_id"].to_numpy()),
        "reason": frame["reason"].where(~written, entry["error"].to_numpy()),
    }, columns=columns)
