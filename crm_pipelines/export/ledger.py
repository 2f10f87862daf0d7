"""The write ledger: every intended write is recorded before it is sent and its outcome after,
so a push that crashes, is killed or runs out of retries can be run again and finish what is
left — nothing written twice (creates are upserts on the Enginy id), nothing forgotten.

A write's id is a digest of its intent (the batch it belongs to, object, record, action and what
it writes): pushing the same batch again skips what is done; a new batch is new writes, so a
value someone changed back in the CRM since is written again.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crm_pipelines.export.in_doubt import SUPERSEDED
from crm_pipelines.export.values import is_empty
from crm_pipelines.export.writes import Write, WriteResult
from crm_pipelines.frames import from_json, to_json

# The warehouse tables (and Dagster assets) the record push and the activity push keep their ledgers
# in; activities keep their own, so that the two pushes running at once never drop each other's entries.
EXPORT_LEDGER, ACTIVITY_LEDGER = "export_ledger", "activity_ledger"
# job_id: the bulk job a write was handed to, recorded before its data is uploaded, so a run that
# was killed while the job ran reads the job's results instead of sending the writes again.
LEDGER_COLUMNS = ["write_id", "object", "enginy_id", "action", "crm_id", "status", "error", "error_code",
                  "attempts", "updated_at", "job_id"]
# Outcomes that end a write; "sent" (no answer recorded: the push died) and "failed" (retries
# spent) are sent again by the next run of the same batch, or superseded by a newer batch's write
# of the same record once that ends (export/in_doubt.py).
FINAL = ("created", "updated", "rejected", SUPERSEDED)


def empty_ledger() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in LEDGER_COLUMNS}).astype({"attempts": "int64"})


# The batch columns a write is made of: its intent (the write id's digest) and how it is sent.
WRITE_COLUMNS = ("batch_id", "enginy_id", "action", "crm_id", "fields", "owner_id", "company_crm_id",
                 "company_link", "unlink_company_id")


def _write_columns(batch: pd.DataFrame) -> dict[str, list[Any]]:
    """The columns a write is made of, each a list, None where a value is empty (a table read back
    from the warehouse says NaN) or the batch has no such column. A column at a time: a dict per
    row (pandas' to_dict, or zipped by hand) was most of the cost of a million-row push's planning."""
    n = len(batch)
    return {name: _values(batch[name]) if name in batch else [None] * n for name in WRITE_COLUMNS}


def _values(column: pd.Series) -> list[Any]:
    """The column's values, None where empty (is_empty): text columns are tested whole."""
    if isinstance(column.dtype, pd.StringDtype):
        return _arrow_text(column).to_pylist()
    return [None if is_empty(v) else v for v in column.tolist()]


def _arrow_text(column: pd.Series) -> pa.Array:
    """A text column as Arrow, null where blank: tested by Arrow, not a Python string per value
    (a batch's fields are long JSON text)."""
    text = pa.array(column.array)
    return pc.if_else(pc.equal(pc.utf8_trim_whitespace(text), ""), pa.scalar(None, text.type), text)


# Each write's intent as one JSON object, hashed: the batch, object, record, action and what it
# writes — its fields as the JSON text the warehouse stores the batch with. A batch is pushed as
# the warehouse holds it, so the same batch gives the same text and the same ids on every run;
# hashing that text, rather than each row's fields parsed and dumped again with sorted keys,
# saved most of the ids' cost at a million rows.
_INTENT_DIGEST = """
SELECT CASE WHEN action IN ('create', 'update') THEN left(sha256(to_json({
    batch: batch_id, object: $object, enginy_id: enginy_id, action: action, crm_id: crm_id, fields: fields,
    owner_id: owner_id, company_crm_id: company_crm_id, company_link: company_link,
    unlink_company_id: unlink_company_id})), 32) END AS write_id
FROM intents
"""


def _intent(batch: pd.DataFrame, name: str) -> pa.Array:
    """A write column as the text its intent is hashed from: null where empty; the fields as JSON
    text, ``{}`` where there are none."""
    if name not in batch:
        text = pa.nulls(len(batch), pa.string())
    elif isinstance(batch[name].dtype, pd.StringDtype):
        text = _arrow_text(batch[name])
    else:
        text = pa.array([None if v is None else v if isinstance(v, str) else to_json(v) if name == "fields" else str(v)
                         for v in _values(batch[name])], pa.string())
    return pc.fill_null(text, "{}") if name == "fields" else text


def write_ids(obj: str, batch: pd.DataFrame) -> list[str | None]:
    """Each batch row's write id (a digest of its intent), None for a skip or a rejection (nothing
    is written). ``fields``: the JSON text read from the warehouse, or dicts (a batch not stored
    yet: made the text the warehouse would store). DuckDB hashes the whole batch at once; a
    json.dumps and a hash per row in Python took 13 s at a million rows."""
    if batch.empty:
        return []
    intents = pa.table({name: _intent(batch, name) for name in WRITE_COLUMNS})
    with duckdb.connect() as conn:
        conn.register("intents", intents)
        return conn.sql(_INTENT_DIGEST, params={"object": obj}).to_arrow_table().column(0).to_pylist()


def entries(ledger: pd.DataFrame, write_ids: Sequence[str | None]) -> pd.DataFrame:
    """The ledger's entry of each of ``write_ids`` (its last, where it holds a write twice) in
    their order, empty where it holds none. Looked up by Arrow: pandas' index over a million
    write ids took seconds to build and to look up."""
    held = pa.array(ledger["write_id"], from_pandas=True).cast(pa.large_string())
    wanted = pa.array(write_ids, pa.large_string(), from_pandas=True)
    # Reversed: a write's first place there is its last entry.
    at = pc.index_in(wanted, value_set=held[::-1]).fill_null(-1).to_numpy(zero_copy_only=False)
    return ledger.reset_index(drop=True).reindex(np.where(at >= 0, len(held) - 1 - at, -1)).reset_index(drop=True)


def writes_to_send(obj: str, batch: pd.DataFrame, ledger: pd.DataFrame, allow_duplicates: bool = False,
                   ids: list[str | None] | None = None) -> list[Write]:
    """The batch's creates and updates that the ledger does not hold as done; ``ids``: the rows'
    write ids when the caller has them already (see write_ids)."""
    done = set(ledger.loc[ledger["status"].isin(FINAL), "write_id"]) if len(ledger) else set()
    ids = write_ids(obj, batch) if ids is None else ids
    send = [i for i, wid in enumerate(ids) if wid is not None and wid not in done]
    # The write columns of the rows to send only: a resumed push or a run after a few changes reads
    # few, and no row copies the batch's other columns (its writeback and reasons).
    c = _write_columns(batch[[name for name in WRITE_COLUMNS if name in batch]].iloc[send])
    # The fields parsed from the stored batch's JSON text, for these rows only (JSON has no NaN to drop).
    return [Write(ids[i], action, str(enginy_id), from_json(fields) or {}, crm_id=crm_id, owner_id=owner_id,
                  company_id=company_crm_id, company_link=company_link or "primary",
                  unlink_company_id=unlink_company_id, allow_duplicates=allow_duplicates)
            for i, action, enginy_id, fields, crm_id, owner_id, company_crm_id, company_link, unlink_company_id
            in zip(send, c["action"], c["enginy_id"], c["fields"], c["crm_id"], c["owner_id"], c["company_crm_id"],
                   c["company_link"], c["unlink_company_id"])]


# The ledger tables' columns as SQL types (both warehouses read them): the warehouse keeps them keyed
# by write id, so each chunk's rows are upserted rather than the table rewritten.
LEDGER_SQL_TYPES = {"write_id": "VARCHAR", "object": "VARCHAR", "enginy_id": "VARCHAR", "action": "VARCHAR",
                    "crm_id": "VARCHAR", "status": "VARCHAR", "error": "VARCHAR", "error_code": "VARCHAR",
                    "attempts": "BIGINT", "updated_at": "TIMESTAMP WITH TIME ZONE", "job_id": "VARCHAR"}


class Ledger:
    """A ledger held by write id while a push runs: recording a chunk costs what the chunk touches,
    and each change comes back as just the rows it changed, for the warehouse to upsert — not the
    whole ledger again, which made a push slow down as it grew.

    Held a column at a time — each column an array, a write's entries at its row, found by one
    dict from write id to row — so a chunk's change is one look-up per write and an array
    assignment per column. (A dict per column, updated by write id, spent 7 s at a million
    writes growing and rehashing eleven dicts of a million keys.)"""

    def __init__(self, frame: pd.DataFrame | None = None) -> None:
        frame = empty_ledger() if frame is None else frame.reindex(columns=LEDGER_COLUMNS)
        # A write given twice (an old ledger): its last entry.
        frame = frame.drop_duplicates("write_id", keep="last")
        self._size = len(frame)
        self._rows: dict[str, int] = dict(zip(frame["write_id"].tolist(), range(self._size)))
        self._columns: dict[str, np.ndarray] = {
            c: frame[c].astype(object).where(frame[c].notna(), 0 if c == "attempts" else None)
            .to_numpy(object, copy=True) for c in LEDGER_COLUMNS}

    def __len__(self) -> int:
        return self._size

    def get(self, write_id: str) -> dict[str, Any] | None:
        row = self._rows.get(write_id)
        return None if row is None else {c: values[row] for c, values in self._columns.items()}

    def mark_sent(self, obj: str, writes: Iterable[Write]) -> pd.DataFrame:
        """Record writes as sent, before the call that sends them; returns the rows changed."""
        writes = list(writes)
        ids, n = [w.write_id for w in writes], len(writes)
        at, new = self._locate(ids)
        attempts = [int(a or 0) + 1 for a in self._columns["attempts"][at]]
        return self._put(ids, at, new, {
            "object": [obj] * n, "enginy_id": [w.enginy_id for w in writes], "action": [w.action for w in writes],
            "crm_id": [w.crm_id for w in writes], "status": ["sent"] * n, "error": [None] * n,
            "error_code": [None] * n, "attempts": attempts, "job_id": [None] * n})

    def mark_job(self, job_id: str, writes: Iterable[Write]) -> pd.DataFrame:
        """Record the bulk job that writes sent (and not answered yet) were handed to, before its
        data is uploaded; returns the rows changed."""
        ids = [w.write_id for w in writes]
        return self._put(ids, *self._locate(ids), {"job_id": [job_id] * len(ids)})

    def in_jobs(self, writes: Iterable[Write]) -> dict[str, list[Write]]:
        """The writes an earlier run handed to a bulk job and never heard the answer of, by job."""
        status, job = self._columns["status"], self._columns["job_id"]
        jobs: dict[str, list[Write]] = {}
        for w in writes:
            row = self._rows.get(w.write_id)
            if row is not None and status[row] == "sent" and job[row]:
                jobs.setdefault(job[row], []).append(w)
        return jobs

    def record(self, results: Iterable[WriteResult]) -> pd.DataFrame:
        """Record the CRM's answers; returns the rows changed."""
        results = list(results)
        ids = [r.write_id for r in results]
        at, new = self._locate(ids)
        held = self._columns["crm_id"][at]
        return self._put(ids, at, new, {"status": [r.status for r in results],
                                        "crm_id": [r.crm_id or h for r, h in zip(results, held)],
                                        "error": [r.error for r in results],
                                        "error_code": [r.error_code for r in results]})

    def _locate(self, ids: list[str]) -> tuple[np.ndarray, list[str]]:
        """The rows of these writes, and the writes new to the ledger (given rows of their own,
        empty but for their id)."""
        rows = self._rows
        try:  # an answer, a job: writes the ledger holds already
            return np.fromiter(map(rows.__getitem__, ids), np.int64, len(ids)), []
        except KeyError:
            pass
        new = [i for i in dict.fromkeys(ids) if i not in rows]
        if new:
            start, self._size = self._size, self._size + len(new)
            capacity = len(self._columns["write_id"])
            if self._size > capacity:
                # Grown by half again at least: a push adding a chunk at a time copies each column
                # a few times, not once per chunk.
                grown = max(self._size, capacity + capacity // 2, 1024)
                for c, values in self._columns.items():
                    more = np.full(grown - capacity, 0 if c == "attempts" else None, dtype=object)
                    self._columns[c] = np.concatenate([values, more])
            rows.update(zip(new, range(start, self._size)))
            self._columns["write_id"][start:self._size] = new
        return np.fromiter(map(rows.__getitem__, ids), np.int64, len(ids)), new

    def _put(self, ids: list[str], at: np.ndarray, new: list[str], changes: dict[str, list[Any]]) -> pd.DataFrame:
        """Set these columns of these writes (at rows ``at``) and stamp them; the changed rows:
        these columns (the warehouse's upsert sets just them), or whole rows where a write new to
        the ledger is given only some."""
        for c, values in changes.items():
            self._columns[c][at] = values
        now = datetime.now(timezone.utc)
        self._columns["updated_at"][at] = now
        if new and set(changes) < SET_BY_A_CHANGE:
            unique = pd.unique(at)
            return _frame({c: values[unique] for c, values in self._columns.items()})
        # From the lists given: looking every column of a million writes up again by id cost seconds.
        stamp = pa.repeat(pa.scalar(now, LEDGER_ARROW_TYPES["updated_at"]), len(ids))
        return _frame({"write_id": ids, **changes, "updated_at": stamp})

    def frame(self) -> pd.DataFrame:
        return _frame({c: values[:self._size] for c, values in self._columns.items()})


def _frame(columns: dict[str, Any]) -> pd.DataFrame:
    """Ledger columns (a list or an Arrow array each) as a frame, typed as the warehouse keeps them."""
    if not len(columns["write_id"]):
        return empty_ledger()[list(columns)]
    return pa.table({c: values if isinstance(values, pa.Array) else pa.array(values, LEDGER_ARROW_TYPES[c])
                     for c, values in columns.items()}).to_pandas()


# The columns a change can set: all but the key and the stamp every change sets.
SET_BY_A_CHANGE = set(LEDGER_COLUMNS) - {"write_id", "updated_at"}
LEDGER_ARROW_TYPES = {c: pa.int64() if c == "attempts" else pa.timestamp("us", tz="UTC") if c == "updated_at"
                      else pa.string() for c in LEDGER_COLUMNS}
