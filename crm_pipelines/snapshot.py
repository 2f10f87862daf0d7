"""Incremental snapshots: which window to pull next, and how changes fold into the snapshot.

Connectors classically miss rows in two places: records written while a pull runs, and
records sharing a modification timestamp across a page or window boundary. So every pull
starts a little before the last cursor (the overlap) and the fold de-duplicates on
(id, modification time), keeping the newest version of each record. Deletions stay in the
snapshot flagged ``is_deleted`` so matching can ignore them and reports can count them.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

import numpy as np
import pandas as pd

from crm_pipelines.frames import is_in

DEFAULT_OVERLAP = timedelta(minutes=5)


@dataclass(frozen=True)
class Window:
    since: datetime | None  # None: everything (first pull or full refresh)
    until: datetime


def next_window(cursor: datetime | None, now: datetime, overlap: timedelta = DEFAULT_OVERLAP) -> Window:
    """The window of the next incremental pull: from the cursor less the overlap up to now."""
    if cursor is None:
        return Window(None, now)
    return Window(min(cursor - overlap, now), now)


def fold_changes(snapshot: pd.DataFrame, changes: pd.DataFrame) -> pd.DataFrame:
    """The snapshot with ``changes`` applied: newest version of each crm_id wins, ties keep the change.

    Both frames are canonical (crm_id, last_modified, is_deleted, …). A record seen twice in the
    overlap is kept once; an older version arriving late never replaces a newer one.
    """
    if changes.empty:
        return snapshot.reset_index(drop=True)
    deleted = changes["is_deleted"].astype(bool)
    if deleted.any() and not snapshot.empty:
        # Some CRMs report a deletion by id only (Dataverse's $deletedEntity): a deleted record
        # we knew keeps its last known values, flagged, so reports can still say who it was.
        known = snapshot.set_index("crm_id")
        deletions = changes[deleted]
        hit = is_in(deletions["crm_id"], known.index)
        flagged = known.loc[deletions.loc[hit, "crm_id"]].reset_index()
        flagged["is_deleted"] = True
        flagged["last_modified"] = deletions.loc[hit, "last_modified"].to_numpy()
        changes = pd.concat([changes[~deleted], deletions[~hit], flagged], ignore_index=True)
    parts = [] if snapshot.empty else [snapshot.assign(_from_change=0)]
    combined = pd.concat([*parts, changes.assign(_from_change=1)], ignore_index=True)
    combined = combined.sort_values(["crm_id", "last_modified", "_from_change"], kind="stable")
    newest = combined.drop_duplicates("crm_id", keep="last").drop(columns="_from_change")
    return newest.sort_values("crm_id", kind="stable").reset_index(drop=True)


def backfill_window(first_day: date, last_day: date, now: datetime) -> Window:
    """The window of a backfill of the UTC days ``first_day`` to ``last_day`` (both included): up to
    the end of the last day, or to now when that day is today (the pull then also moves the cursor)."""
    if last_day < first_day:
        raise ValueError(f"backfill_to {last_day} is before backfill_from {first_day} — fix: give the first "
                         "day of the backfill in backfill_from and the last (or today) in backfill_to")
    start = datetime.combine(first_day, time(), tzinfo=timezone.utc)
    end = datetime.combine(last_day + timedelta(days=1), time(), tzinfo=timezone.utc)
    return Window(start, min(end, now))


def days_between(since: datetime, until: datetime) -> list[str]:
    """The UTC days a pull from ``since`` up to ``until`` touched, as YYYY-MM-DD."""
    first = since.astimezone(timezone.utc).date()
    last = (until - timedelta(microseconds=1)).astimezone(timezone.utc).date()
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def records_by_day(changes: pd.DataFrame, days: list[str]) -> dict[str, dict[str, int]]:
    """For each of ``days``: how many of the pulled records were last modified then, and how many of
    them are deletions (every day listed, a day with none as zeros)."""
    # Floored, grouped, then formatted: a few distinct days, not a string per record.
    day = changes["last_modified"].dt.tz_convert("UTC").dt.floor("D")
    deleted = changes["is_deleted"].astype(bool)
    counts = pd.DataFrame({"day": day, "deleted": deleted}).groupby("day")["deleted"].agg(["size", "sum"])
    counts.index = counts.index.strftime("%Y-%m-%d")
    counts = counts.reindex(days, fill_value=0)
    return {d: {"records": int(n), "deleted": int(x)} for d, n, x in zip(days, counts["size"], counts["sum"])}


@dataclass
class Refresh:
    """The outcome of one snapshot refresh, with the figures the asset reports."""

    snapshot: pd.DataFrame
    mode: str  # "full" | "incremental" | "backfill"
    since: datetime | None
    until: datetime | None
    pulled: int  # records the CRM returned that the inbound sync rules let in
    unchanged: int  # pulled again (the overlap, a re-run window) with the modstamp already held
    created: int
    updated: int
    deleted: int
    excluded_by_rules: int  # records the CRM returned that the inbound sync rules leave out
    cursor_before: datetime | None
    cursor_after: datetime | None
    api_calls: int
    pages: int
    state: dict
    by_day: dict[str, dict[str, int]]  # the pulled records per UTC day the pull covered (none for a full pull)


def refresh_snapshot(pull, existing: pd.DataFrame | None, cursor: datetime | None, state: dict | None,
                     now: datetime, backfill: Window | None = None, full_refresh: bool = False, keep=None,
                     overlap: timedelta = DEFAULT_OVERLAP) -> Refresh:
    """Pull what the snapshot needs and fold it into the existing one.

    - ``full_refresh``, or no snapshot or cursor yet (and no backfill): pull everything and
      replace the snapshot;
    - otherwise with no ``backfill``: an incremental pull from the cursor less the overlap up to
      now (the CRM's own change feed where it has one);
    - a ``backfill`` window: pull the records modified in it again, and fold them into the
      snapshot there is (if any); a window reaching now also moves the cursor.
    ``pull(since, until, state)`` is the CRM client's pull for one object (``until`` None: up to
    now); ``keep(raw)`` is the inbound sync rules' filter over the CRM's own fields.
    """
    if full_refresh or (backfill is None and (existing is None or cursor is None)):
        mode, since, until, state = "full", None, None, {}
    elif backfill is None:
        mode, since, until = "incremental", cursor - overlap, None
    else:
        mode, since, until = "backfill", backfill.since, (None if backfill.until >= now else backfill.until)
    result = pull(since, until, state or {})
    changes = result.records
    base = existing if mode != "full" and existing is not None else changes.iloc[0:0]
    seen = changes["last_modified"].max() if len(changes) else None
    if result.live_ids is not None and len(base):
        changes = pd.concat([changes, vanished(base, changes, result.live_ids)], ignore_index=True)
    known = base["crm_id"] if len(base) else []
    snapshot = fold_changes(base, changes)
    if keep is not None and len(snapshot):
        snapshot = snapshot[keep(snapshot["raw"]).to_numpy()].reset_index(drop=True)
    # What the rules leave out is not a record pulled: a deletion always counts (the snapshot
    # flags the record it held, whatever its fields now say).
    left_out = (~keep(changes["raw"]).to_numpy() & ~changes["is_deleted"].astype(bool).to_numpy()
                if keep is not None and len(changes) else np.zeros(len(changes), dtype=bool))
    cursor_after = cursor if mode != "full" else None
    # A first-ever backfill of past days sets no cursor: the next sync up to now pulls everything.
    if seen is not None and not pd.isna(seen) and not (mode == "backfill" and cursor is None):
        seen = seen.to_pydatetime()
        cursor_after = seen if cursor_after is None else max(cursor_after, seen)
    let_in = changes[~left_out]
    fresh = _not_already_held(let_in, base)
    deleted = fresh["is_deleted"].astype(bool)
    was_known = is_in(fresh["crm_id"], known)
    return Refresh(
        snapshot=snapshot, mode=mode, since=since, until=until, pulled=len(let_in),
        unchanged=len(let_in) - len(fresh),
        created=int((~was_known & ~deleted).sum()),
        updated=int((was_known & ~deleted).sum()),
        deleted=int(deleted.sum()), excluded_by_rules=int(left_out.sum()), cursor_before=cursor,
        cursor_after=cursor_after, api_calls=result.api_calls, pages=result.pages, state=result.state,
        by_day=records_by_day(let_in, days_between(since, until or now)) if since is not None else {})


def vanished(base: pd.DataFrame, changes: pd.DataFrame, live_ids: set[str]) -> pd.DataFrame:
    """Snapshot records the CRM no longer holds, flagged deleted as of now (when the pull saw
    them gone): for CRMs that delete for good and cannot list deletions."""
    gone = base[~base["is_deleted"].astype(bool) & ~is_in(base["crm_id"], live_ids)
                & ~is_in(base["crm_id"], changes["crm_id"])]
    now = pd.Timestamp.now(tz="UTC").floor("us")
    return gone.assign(is_deleted=True, last_modified=now)


def _not_already_held(changes: pd.DataFrame, base: pd.DataFrame) -> pd.DataFrame:
    """The pulled records that differ from the snapshot by (id, modstamp, deletion): the overlap
    window pulls some records again on purpose, and those are not changes."""
    if not len(changes) or not len(base):
        return changes
    held = base.drop_duplicates("crm_id", keep="last").set_index("crm_id")[["last_modified", "is_deleted"]]
    before = held.reindex(changes["crm_id"])
    same = (changes["last_modified"].to_numpy() == before["last_modified"].to_numpy()) & (
        changes["is_deleted"].astype(bool).to_numpy() == before["is_deleted"].fillna(False).astype(bool).to_numpy())
    return changes[~same]


def fill_company_names(contacts: pd.DataFrame, companies: pd.DataFrame) -> pd.DataFrame:
    """Contacts whose CRM record carries only the company id get the company's name.

    Matching compares company names, and Dataverse and Salesforce contacts hold a reference
    (parentcustomerid, AccountId), not the name.
    """
    if contacts.empty or companies.empty:
        return contacts
    names = companies.drop_duplicates("crm_id").set_index("crm_id")["name"]
    missing = contacts["company_name"].isna() & contacts["account_id"].notna()
    contacts = contacts.copy()
    contacts.loc[missing, "company_name"] = contacts.loc[missing, "account_id"].map(names)
    return contacts
