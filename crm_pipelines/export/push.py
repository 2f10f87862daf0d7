"""Push one export batch through a CRM client, chunk by chunk, with the ledger saved before and
after every chunk: whatever happens between two saves, the next run knows what to send again."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import Callable

import pandas as pd

from crm_pipelines.export.ledger import FINAL, mark_sent, record_results, write_id, writes_to_send
from crm_pipelines.export.writes import Write, WriteResult

DUPLICATE_CODES = ("DUPLICATES_DETECTED",)


@dataclass
class PushOutcome:
    ledger: pd.DataFrame
    counts: dict[str, int]  # created / updated / rejected / failed in this run
    sent: int  # writes sent in this run (a write sent twice counts twice)
    already_done: int  # writes of the batch an earlier run finished


def run_push(push: Callable[[list[Write]], list[WriteResult]], obj: str, batch: pd.DataFrame, ledger: pd.DataFrame,
             save: Callable[[pd.DataFrame], None], chunk: int | Callable[[int], int],
             save_anyway_on_duplicates: bool = False, log: Callable[[str], None] = lambda message: None) -> PushOutcome:
    """Send the batch's writes the ledger does not hold as done; ``save`` persists the ledger.
    ``chunk``: writes per call of ``push``, or what it is given how many are pending (a CRM with a
    bulk API takes a whole job's worth when there are enough).

    Records a CRM refuses as duplicates are rejected for review, or — when the integration
    says to create on a duplicate warning — sent once more with the CRM's allow-save flag.
    """
    writes = writes_to_send(obj, batch, ledger)
    chunk = chunk(len(writes)) if callable(chunk) else chunk
    wanted = int(batch["action"].isin(["create", "update"]).sum())
    counts: Counter[str] = Counter()
    sent = 0
    for start in range(0, len(writes), chunk):
        part = writes[start:start + chunk]
        ledger = mark_sent(ledger, obj, part)
        save(ledger)
        results = push(part)
        sent += len(part)
        if save_anyway_on_duplicates:
            again = {r.write_id for r in results if r.status == "rejected" and r.error_code in DUPLICATE_CODES}
            if again:
                retry = [replace(w, allow_duplicates=True) for w in part if w.write_id in again]
                retried = {r.write_id: r for r in push(retry)}
                sent += len(retry)
                results = [retried.get(r.write_id, r) for r in results]
        ledger = record_results(ledger, results)
        save(ledger)
        counts.update(r.status for r in results)
        log(f"{obj}: chunk {start // chunk + 1} of {-(-len(writes) // chunk)}: "
            + ", ".join(f"{n} {status}" for status, n in sorted(Counter(r.status for r in results).items())))
    return PushOutcome(ledger, dict(counts), sent, wanted - len(writes))


def outcomes(batch: pd.DataFrame, obj: str, ledger: pd.DataFrame) -> pd.DataFrame:
    """Every batch row with how it ended: created / updated / skipped / rejected / failed / pending."""
    by_id = ledger.set_index("write_id") if len(ledger) else None
    rows = []
    for row in batch.to_dict("records"):
        if row["action"] in ("skip", "reject"):
            status = "skipped" if row["action"] == "skip" else "rejected"
            rows.append({"enginy_id": row["enginy_id"], "action": row["action"], "status": status,
                         "crm_id": row.get("crm_id"), "reason": row.get("reason")})
            continue
        wid = write_id(obj, row)
        entry = by_id.loc[wid] if by_id is not None and wid in by_id.index else None
        status = entry["status"] if entry is not None else "pending"
        rows.append({"enginy_id": row["enginy_id"], "action": row["action"],
                     "status": status if status in FINAL + ("failed",) else "pending",
                     "crm_id": entry["crm_id"] if entry is not None else row.get("crm_id"),
                     "reason": entry["error"] if entry is not None else None})
    return pd.DataFrame(rows, columns=["enginy_id", "action", "status", "crm_id", "reason"])
