"""Incremental snapshots: which window to pull next, and how changes fold into the snapshot.

Connectors classically miss rows in two places: records written while a pull runs, and
records sharing a modification timestamp across a page or window boundary. So every pull
starts a little before the last cursor (the overlap) and the fold de-duplicates on
(id, modification time), keeping the newest version of each record. Deletions stay in the
snapshot flagged ``is_deleted`` so matching can ignore them and reports can count them.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

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
        hit = deletions["crm_id"].isin(known.index)
        flagged = known.loc[deletions.loc[hit, "crm_id"]].reset_index()
        flagged["is_deleted"] = True
        flagged["last_modified"] = deletions.loc[hit, "last_modified"].to_numpy()
        changes = pd.concat([changes[~deleted], deletions[~hit], flagged], ignore_index=True)
    parts = [] if snapshot.empty else [snapshot.assign(_from_change=0)]
    combined = pd.concat([*parts, changes.assign(_from_change=1)], ignore_index=True)
    combined = combined.sort_values(["crm_id", "last_modified", "_from_change"], kind="stable")
    newest = combined.drop_duplicates("crm_id", keep="last").drop(columns="_from_change")
    return newest.sort_values("crm_id", kind="stable").reset_index(drop=True)


def partition_window(day: str) -> Window:
    """A daily partition's window: records modified on that UTC day (for backfills)."""
    start = datetime.fromisoformat(day).replace(tzinfo=None)
    start = pd.Timestamp(start, tz="UTC").to_pydatetime()
    return Window(start, start + timedelta(days=1))
