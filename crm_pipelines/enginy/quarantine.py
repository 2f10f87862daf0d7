"""The Enginy records left out because they break the key of the data contract.

A contact or company without an id has no key to match it or to upsert it on; an id that several
rows hold would make several creates with one external id, and which of the rows is right cannot
be known, so every one of them is left out. dbt quarantines the same rows of every keyed table
(dbt_project/macros/quarantine.sql) and lists each, with its reason, in the model
``enginy_quarantine``; matching and the export batches leave them out with ``keyed`` and
``export_rejections`` reports them (``as_rejections``) beside the CRM's refusals.
"""

import pandas as pd

QUARANTINE_TABLE = "enginy_quarantine"
# The source tables whose quarantined rows are records the export would have pushed, as its objects.
EXPORTED = {"contacts": "contacts", "companies": "companies"}
REJECTION_COLUMNS = ["object", "enginy_id", "action", "status", "crm_id", "field", "value", "reason", "source_row"]


def keyed(records: pd.DataFrame) -> pd.DataFrame:
    """``records`` without the rows that break their key: no id, or an id another of them holds.

    Enough for a scoped run too: it reads the changed records' rows by id, so every row of a
    changed id is among ``records``."""
    ids = records["id"]
    broken = ids.isna().to_numpy(bool) | ids.duplicated(keep=False).to_numpy(bool)
    return records[~broken] if broken.any() else records


def as_rejections(quarantine: pd.DataFrame) -> pd.DataFrame:
    """The quarantined contacts and companies as export_rejections rows: rejected before any push,
    with the field and value at fault, the reason, and the whole row (all a row without id has)."""
    exported = quarantine[quarantine["source_table"].isin(list(EXPORTED))]
    return pd.DataFrame({
        "object": exported["source_table"].map(EXPORTED), "enginy_id": exported["record_id"], "action": "reject",
        "status": "rejected", "crm_id": None, "field": exported["field"], "value": exported["value"],
        "reason": exported["reason"], "source_row": exported["source_row"]}, columns=REJECTION_COLUMNS
    ).reset_index(drop=True)
