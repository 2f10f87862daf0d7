"""Company links a push removes (association type primary_remove_previous) are recorded before
the push, so the undo_associations job can put them back."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd

REMOVED_ASSOCIATIONS = "removed_associations"  # the warehouse table (and Dagster asset) holding them
REMOVED_COLUMNS = ["enginy_id", "contact_crm_id", "company_crm_id", "replaced_by", "recorded_at", "restored"]


def removed_links(batch: pd.DataFrame) -> pd.DataFrame:
    """The links the batch's updates will remove, to be saved before the push runs."""
    rows = batch[batch["action"].eq("update") & batch["unlink_company_id"].notna()]
    return pd.DataFrame({
        "enginy_id": rows["enginy_id"], "contact_crm_id": rows["crm_id"], "company_crm_id": rows["unlink_company_id"],
        "replaced_by": rows["company_crm_id"], "recorded_at": datetime.now(timezone.utc), "restored": False,
    }, columns=REMOVED_COLUMNS).reset_index(drop=True)


def record_removed(held: pd.DataFrame, removed: pd.DataFrame) -> pd.DataFrame:
    """The removed-links table with this push's removals added. A re-run of the same push (after
    a crash, say) removes nothing new: a link still waiting to be put back is recorded once, or
    the undo would restore it twice."""
    pending = held[~held["restored"].astype(bool)]
    waiting = set(zip(pending["contact_crm_id"].astype(str), pending["company_crm_id"].astype(str)))
    new = removed[[(str(c), str(k)) not in waiting for c, k in zip(removed["contact_crm_id"], removed["company_crm_id"])]]
    return pd.concat([held, new], ignore_index=True) if len(held) else new.reset_index(drop=True)


def undo_batch(removed: pd.DataFrame) -> pd.DataFrame:
    """Updates that make each removed company the contact's primary company again."""
    pending = removed[~removed["restored"].astype(bool)]
    return pd.DataFrame({
        "enginy_id": pending["enginy_id"], "action": "update", "crm_id": pending["contact_crm_id"],
        "fields": [{} for _ in range(len(pending))], "owner_id": None, "company_crm_id": pending["company_crm_id"],
        "company_link": "primary", "unlink_company_id": None, "reason": None,
        "batch_id": f"undo-{datetime.now(timezone.utc).isoformat()}",
    }).reset_index(drop=True)


def link_created_companies(batch: pd.DataFrame, company_ids: dict[str, str]) -> pd.DataFrame:
    """The batch's links to companies this push created (the batch decided them, their ids unknown
    then) get the companies' new ids; a link whose company was not created is dropped, with the
    link it would have replaced — and an update that was only that link is skipped."""
    awaiting = batch["company_link"].notna() & batch["company_crm_id"].isna()
    if not awaiting.any():
        return batch
    created = batch["company_enginy_id"].where(awaiting).map(company_ids)
    created = created.astype(object).where(created.notna(), None)
    batch = batch.assign(company_crm_id=batch["company_crm_id"].astype(object).where(~awaiting, created))
    dropped = (awaiting & batch["company_crm_id"].isna()).to_numpy(bool)
    for column in ("company_link", "unlink_company_id"):
        batch[column] = batch[column].astype(object).where(~dropped, None)
    only_link = dropped & batch["action"].eq("update").to_numpy(bool) & batch["owner_id"].isna().to_numpy(bool) & \
        ~_writes_fields(batch["fields"])
    if only_link.any():
        batch.loc[only_link, ["action", "reason"]] = ["skip", "its company was not created: nothing else to change"]
    return batch


def _writes_fields(fields: pd.Series) -> np.ndarray:
    """Rows whose fields are not empty: dicts, or the JSON text the warehouse keeps them as."""
    if isinstance(fields.dtype, pd.StringDtype):
        return ~fields.fillna("").isin(["", "{}"]).to_numpy(bool)
    return fields.map(lambda f: f not in ("", "{}") if isinstance(f, str) else bool(f)).to_numpy(bool)
