"""Our own Enginy id, ahead of the identifier rules.

A record our push created carries the Enginy record's id in the CRM's Enginy id field (an external
id field, a unique property, an alternate key). That id says which Enginy record it is, whatever
the identifier rules can read: a person created without a LinkedIn profile at a company that
matched several CRM companies is found by no rule, yet it is ours. So a CRM record holding an
Enginy record's id matches it first, under its own key name (the match-quality report counts it
as a rule group of its own), and the identifier rules decide only for the others.
"""

from __future__ import annotations

import pandas as pd

from crm_pipelines.frames import field_values, is_in
from crm_pipelines.matching.engine import MATCHED

ENGINY_ID_KEY = "enginy_id"  # the key name in matched_by


def carriers(records: pd.DataFrame, field: str) -> pd.DataFrame:
    """The live CRM ``records`` (crm_id, raw, is_deleted, object) holding an Enginy id in ``field``:
    enginy_id, crm_id, crm_object — one record per Enginy id (a Contact before a Lead, then the
    smallest CRM id, so the same one on every run)."""
    columns = ["enginy_id", "crm_id", "crm_object"]
    if not len(records):
        return pd.DataFrame(columns=columns)
    live = records[~records["is_deleted"].fillna(False).astype(bool)] if "is_deleted" in records else records
    value = field_values(live["raw"], field)
    held = value.notna() & value.astype(str).str.strip().ne("")
    found = pd.DataFrame({"enginy_id": value[held].astype(str).to_numpy(object),
                          "crm_id": live.loc[held, "crm_id"].astype(str).to_numpy(object),
                          "crm_object": (live.loc[held, "object"] if "object" in live
                                         else pd.Series("records", index=live.index)[held]).astype(str)
                          .to_numpy(object)})
    return found.sort_values(["enginy_id", "crm_object", "crm_id"]).drop_duplicates("enginy_id")[columns]


def matched_by_own_id(matches: pd.DataFrame, owned: pd.DataFrame) -> pd.DataFrame:
    """``matches`` (matching.engine's columns) with every Enginy record that a CRM record in
    ``owned`` (see carriers) holds the id of matched to it, by ENGINY_ID_KEY."""
    hit = is_in(matches["enginy_id"].astype(str), owned["enginy_id"]).to_numpy()
    if not hit.any():
        return matches
    by_id = owned.set_index("enginy_id")
    ids = matches.loc[hit, "enginy_id"].astype(str)
    matches = matches.copy()
    matches.loc[hit, "outcome"] = MATCHED
    matches.loc[hit, "crm_id"] = by_id["crm_id"].reindex(ids).to_numpy(object)
    matches.loc[hit, "crm_object"] = by_id["crm_object"].reindex(ids).to_numpy(object)
    matches.loc[hit, "candidates"] = None
    matches.loc[hit, "n_candidates"] = 1
    matches.loc[hit, "matched_by"] = ENGINY_ID_KEY
    return matches
