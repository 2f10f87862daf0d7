"""The rules an export batch passes through after ``build_batch``, so that one run never writes
the same CRM record twice: which CRM record an Enginy record already is, which people belong to
another CRM object's batch, one create per person or company, one update per CRM record.

Plain Python over DataFrames: the batch assets call them in this order on the match table and
the batch ``build_batch`` made (``enginy_id, action, crm_id, reason, ...``).
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from crm_pipelines.frames import is_in, lookup
from crm_pipelines.matching.engine import ENGINY_FALLBACKS, Slot, compile_keys, components, normalise
from crm_pipelines.matching.own_id import carriers
from crm_pipelines.matching.rules import Rule


def match_outcomes(frame: pd.DataFrame) -> pd.DataFrame:
    """The match table's outcome per Enginy record, in the columns the batch builder reads
    (``enginy_id`` as text, as the Enginy records' ids are)."""
    return frame[["enginy_id", "outcome", "crm_id"]].assign(enginy_id=lambda f: f["enginy_id"].astype(str))


def known_by_enginy_id(matches: pd.DataFrame, crm_records: pd.DataFrame, field: str) -> pd.DataFrame:
    """A CRM record carrying an Enginy id in ``field`` is that Enginy record, whatever the
    identifier rules say: it is how the records an earlier export created are found again, even
    after someone edited the email or domain they were matched by.

    Deleted CRM records own nothing. An Enginy id no match row has is added as matched, so the
    record is updated rather than created a second time.
    """
    if not len(crm_records):
        return matches
    # Enginy id -> the CRM record holding it, chosen as the matching chooses (own_id.carriers).
    carried = carriers(crm_records, field)
    owned = lookup(carried["enginy_id"], carried["crm_id"])
    hit = is_in(matches["enginy_id"], owned.index)
    matches = matches.copy()
    matches.loc[hit, "outcome"] = "matched"
    matches.loc[hit, "crm_id"] = matches.loc[hit, "enginy_id"].map(owned)
    missing = owned.index.difference(pd.Index(matches["enginy_id"]), sort=False).sort_values()
    if len(missing):
        matches = pd.concat([matches, pd.DataFrame({"enginy_id": missing.to_numpy(object), "outcome": "matched",
                                                    "crm_id": owned.reindex(missing).to_numpy(object)})],
                            ignore_index=True)
    return matches


def known_in_the_other_object(match_rows: pd.DataFrame, matches: pd.DataFrame, other_records: pd.DataFrame,
                              other: str, field: str) -> pd.DataFrame:
    """The match rows with, as matched in ``other``, the people an earlier export created in that
    object (pushed as leads, then as contacts, or the reverse): its records carry their Enginy id in
    ``field``, whatever the identifier rules say, so leave_to_other_object leaves them to it like
    people matched there. ``matches``: this object's outcomes (known_by_enginy_id); a person this
    object holds stays its own. ``other_records``: the other object's records holding their ids."""
    there = known_by_enginy_id(matches.iloc[:0], other_records, field)
    here = matches.loc[matches["outcome"].eq("matched"), "enginy_id"].astype(str)
    there = there[~is_in(there["enginy_id"].astype(str), here)]
    return pd.concat([match_rows, there.assign(crm_object=other)], ignore_index=True) if len(there) else match_rows


def leave_to_other_object(batch: pd.DataFrame, matches: pd.DataFrame, tab: str) -> pd.DataFrame:
    """Salesforce people match Contacts and Leads (the match table's ``crm_object``): a contact
    batch skips those already in the CRM as Leads, leaving them to the lead batch, and the reverse,
    rather than creating the person a second time in the other object.

    Companies have a single object, and match tables without ``crm_object`` (every other CRM)
    have nothing to leave: the batch is returned as it is. Otherwise ``batch`` is changed in place.
    """
    if "crm_object" not in matches or tab == "companies":
        return batch
    other = matches[matches["outcome"].eq("matched") & matches["crm_object"].ne(tab)]
    where = lookup(other["enginy_id"].astype(str), other["crm_object"].astype(str))
    hit = is_in(batch["enginy_id"], where.index)
    batch.loc[hit, "action"] = "skip"
    crm_object = batch.loc[hit, "enginy_id"].map(where)
    batch.loc[hit, "reason"] = ("already in the CRM as one of its " + crm_object + "; export it to " + crm_object
                                + " to update it")
    return batch


def identity_keys(records: pd.DataFrame, obj: str, rule: Rule | None = None,
                  company_links: pd.Series | None = None) -> pd.DataFrame:
    """What makes Enginy records one person (or company), per record (indexed by ``id`` as text):
    ``match_key``, the first identifier a record has (a person's LinkedIn profile, else their
    email; a company's domain, else its name), and ``key_0``, ``key_1``, … — each a key two
    records sharing are one by: a person's LinkedIn profile and email, a company's first
    identifier, and each key of the matching ``rule`` (first name + last name + company name,
    say, and with ``company_links`` — Enginy company id → the CRM company it matched — the same
    with the CRM company for the company name, as matching reads it); normalised as matching does.

    The keys are 64-bit hashes of the normal forms (-1 where a record has none): at a million
    records, five columns of Python strings were most of a batch step's memory, and the rules
    below only ever compare them.
    """
    firsts = ([Slot("domain", "domain"), Slot("name", "company_name")] if obj == "companies"
              else [Slot("linkedin_url", "linkedin"), Slot("email", "email")])
    # Each key: its parts, and whether the first part a record has is the key (else all of them are).
    keys = [(firsts, True)] if obj == "companies" else [([firsts[0]], True), ([firsts[1]], True)]
    through = ["account_id"] if company_links is not None else []
    keys += [([enginy for enginy, _ in key.pairs], False) for key in (compile_keys(rule, through) if rule else ())
             if all(enginy.field in records for enginy, _ in key.pairs)]
    # A column the records lack is no identifier: NULL.
    slots = list(dict.fromkeys(p for parts, _ in keys for p in parts if p.field in records))
    normal = {p: f"nullif(n.n{i}, '')" for i, p in enumerate(slots)}

    def value(parts: list[Slot], first: bool) -> str:
        if first:
            return f"coalesce({', '.join(normal.get(p, 'NULL') for p in parts)})"
        return " || chr(31) || ".join(normal.get(p, "NULL") for p in parts)  # NULL unless every part is there

    def hashed(parts: list[Slot], first: bool) -> str:
        # DuckDB hashes NULL too: no value is no key.
        return f"CASE WHEN {value(parts, first)} IS NULL THEN -1 ELSE (hash({value(parts, first)}) >> 1)::BIGINT END"

    connection = duckdb.connect()
    try:
        normalise(connection, "records", records.reset_index(drop=True), slots, "Enginy", ENGINY_FALLBACKS,
                  company_links)
        table = connection.sql(
            f"SELECT {value(firsts, True)} AS match_key, "
            + ", ".join(f"{hashed(*key)} AS key_{k}" for k, key in enumerate(keys))
            + " FROM records_norm n ORDER BY n.row").to_arrow_table()
    finally:
        connection.close()
    index = pd.Index(records["id"].astype(str).to_numpy(object))
    return pd.DataFrame({"match_key": table.column("match_key").to_numpy(zero_copy_only=False),
                         **{f"key_{k}": table.column(f"key_{k}").to_numpy() for k in range(len(keys))}}, index=index)


def _groups(keys: pd.DataFrame, ids: pd.Series) -> np.ndarray:
    """For each of ``ids`` (Enginy ids), a group number shared by the ids one by their keys
    (identity_keys), transitively."""
    at = keys.index.get_indexer(ids.astype(str).to_numpy(object))
    a, b = [], []
    for column in (c for c in keys.columns if c.startswith("key_")):
        values = keys[column].to_numpy()[at]
        present = np.flatnonzero((values >= 0) & (at >= 0))
        # Each id with a value is joined to the first id with the same one.
        _, earliest, same = np.unique(values[present], return_index=True, return_inverse=True)
        a.append(present)
        b.append(present[earliest][same])
    return components(len(ids), np.concatenate(a), np.concatenate(b))


def matched_as_the_same(matches: pd.DataFrame, keys: pd.DataFrame, elsewhere: pd.Series | None = None
                        ) -> pd.DataFrame:
    """An Enginy record matching no CRM record while another one it is one with (identity_keys)
    matched one is that CRM record too: the two update it — one speaks for it (one_update_per_crm_record)
    — rather than the first creating a duplicate, or matching it a run later once the other's
    update (its company, say) makes the rule see it. Only where the others all matched the same
    record; ``elsewhere``: Enginy ids matched in another CRM object, which lend no record here."""
    new = matches["outcome"].eq("new")
    anchors = matches["outcome"].eq("matched") & matches["crm_id"].notna()
    if elsewhere is not None:
        anchors &= ~is_in(matches["enginy_id"].astype(str), elsewhere)
    rows = matches[new | anchors]
    if not new.any() or not anchors.any():
        return matches
    group = pd.Series(_groups(keys, rows["enginy_id"]), index=rows.index)
    held = rows[anchors[rows.index]].assign(group=group)
    records = held.groupby("group")["crm_id"].agg(["nunique", "first"])
    one = records[records["nunique"].eq(1)]["first"]
    gets = new[rows.index] & group.isin(one.index)
    if not gets.any():
        return matches
    matches = matches.copy()
    matches.loc[gets[gets].index, "outcome"] = "matched"
    matches.loc[gets[gets].index, "crm_id"] = group[gets].map(one).to_numpy(object)
    return matches


def _changed_at(records: pd.DataFrame) -> pd.Series:
    """When each Enginy record (by id, as text) last changed, NaT where unknown: the order in which
    the rules below let one of several records speak for a CRM record."""
    updated = records["updated_at"] if "updated_at" in records else pd.Series(pd.NaT, index=records.index)
    # As UTC without a zone: numpy's datetimes, not a Timestamp object per record, when sorted.
    return lookup(records["id"].astype(str), pd.to_datetime(updated, utc=True).dt.tz_convert(None))


def one_create_per_person(batch: pd.DataFrame, records: pd.DataFrame, obj: str, keys: pd.DataFrame
                          ) -> pd.DataFrame:
    """Enginy records that are one person (or company) by their ``keys`` (identity_keys) would
    be two records in the CRM — or a create the CRM refuses as a duplicate, then a match a run
    later: they make at most one create.

    Where one of them is in the CRM already (it has a CRM record: an update, or a skip with
    nothing to change), their creates are skipped naming it. Otherwise the one changed last in
    Enginy (ties: the lowest Enginy id) is created — the record that speaks for the CRM record once
    it is there (see one_update_per_crm_record), so the next run has nothing to change — and the
    others are skipped naming it. Creates sharing nothing are left alone.

    Adds ``match_key`` (for the batch's gate) and ``same_as`` (the Enginy record a skipped create
    is: the push links its contacts to that one's CRM record); changes ``batch`` in place.
    """
    noun = "company" if obj == "companies" else "person"
    batch["match_key"] = batch["enginy_id"].astype(str).map(keys["match_key"])
    batch["same_as"] = None
    # The rows that count: creates, and records the CRM holds already.
    held = batch["crm_id"].notna() & (batch["action"].eq("update") | batch["reason"].eq("nothing to change"))
    creates = batch["action"].eq("create")
    rows = batch.index[creates | held]
    if not creates.any() or len(rows) < 2:
        return batch
    group = _groups(keys, batch.loc[rows, "enginy_id"])
    # Only groups of two or more have a create to skip: the rest are not ranked at all.
    shared = pd.Series(group).duplicated(keep=False).to_numpy(bool)
    if not shared.any():
        return batch
    rows, group = rows[shared], group[shared]
    changed = _changed_at(records)
    order = pd.DataFrame({"group": group, "held": held[rows].to_numpy(bool),
                          "changed": changed.reindex(batch.loc[rows, "enginy_id"].astype(str)).to_numpy(),
                          "enginy_id": batch.loc[rows, "enginy_id"].astype(str).to_numpy(object),
                          "crm_id": batch.loc[rows, "crm_id"].to_numpy(object)}, index=rows)
    # Per group: a record in the CRM first, then the one changed last, then the lowest Enginy id.
    ranked = order.sort_values(["held", "changed", "enginy_id"], ascending=[False, False, True], na_position="last")
    speaker = ranked.drop_duplicates("group").set_index("group")
    named = speaker.reindex(order["group"]).set_index(order.index)
    twin = creates[rows].to_numpy(bool) & named["enginy_id"].ne(order["enginy_id"]).to_numpy(bool)
    twins = rows[twin]
    batch.loc[twins, "action"] = "skip"
    batch.loc[twins, "same_as"] = named.loc[twins, "enginy_id"]
    batch.loc[twins, "reason"] = [
        f"the same {noun} as Enginy record {e}, " + (f"in the CRM as {c}" if h else "which is created instead")
        for e, c, h in zip(named.loc[twins, "enginy_id"], named.loc[twins, "crm_id"], named.loc[twins, "held"])]
    return batch


def one_update_per_crm_record(batch: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """Several Enginy records matching one CRM record would overwrite each other run after run:
    the one changed last in Enginy (``updated_at``; ties by the lowest ``enginy_id``) speaks for
    the record, the others' updates are skipped naming it.

    A record with "nothing to change" can speak for its CRM record too: the others' updates are
    still skipped, so the CRM keeps the values of the latest Enginy record. Rows that are not
    updates are left as they are; with no CRM record matched twice the batch is returned as it is.
    Otherwise ``batch`` is changed in place.
    """
    # The columns the rule reads, not the rows' fields and diffs with them.
    matched = batch.loc[batch["crm_id"].notna() & (batch["action"].eq("update")
                                                   | batch["reason"].eq("nothing to change")),
                        ["enginy_id", "crm_id", "action"]]
    if not matched["crm_id"].duplicated().any():
        return batch
    changed = _changed_at(records)
    changed = changed.reindex(matched["enginy_id"].astype(str)).to_numpy()
    order = matched.assign(changed=changed).sort_values(["changed", "enginy_id"], ascending=[False, True])
    winner = order.drop_duplicates("crm_id").set_index("crm_id")["enginy_id"]
    losers = order.index[order["enginy_id"].ne(order["crm_id"].map(winner)) & order["action"].eq("update")]
    batch.loc[losers, "action"] = "skip"
    batch.loc[losers, "reason"] = batch.loc[losers, "crm_id"].map(
        lambda c: f"CRM record {c} also matches Enginy record {winner[c]}, changed more recently, which speaks for it")
    return batch


def held_after_duplicate_refusal(batch: pd.DataFrame, records: pd.DataFrame, refusals: pd.DataFrame
                                 ) -> pd.DataFrame:
    """A create the CRM refused as a duplicate of a record it holds (its duplicate rules see one
    our matching does not) would be sent, and refused, again every run: it is rejected naming the
    refusal instead, until the Enginy record changes after it (the change may be what makes it new
    to the CRM). ``refusals``: enginy_id, error_code, error and updated_at of each refusal
    (LedgerTable.refused_as_duplicates); the latest of a record's counts. Changes ``batch`` in place."""
    creates = batch["action"].eq("create")
    if refusals.empty or not creates.any():
        return batch
    refusals = refusals.assign(enginy_id=refusals["enginy_id"].astype(str),
                               updated_at=pd.to_datetime(refusals["updated_at"], utc=True).dt.tz_convert(None))
    by_id = refusals.sort_values("updated_at").drop_duplicates("enginy_id", keep="last").set_index("enginy_id")
    ids = batch.loc[creates, "enginy_id"].astype(str)
    refused_at = by_id["updated_at"].reindex(ids).to_numpy()
    changed = _changed_at(records).reindex(ids).to_numpy()
    # Unknown change times count as unchanged: the record is held, not refused once more.
    held = ~pd.isna(refused_at) & ~(changed > refused_at)
    rows = ids.index[held]
    if not len(rows):
        return batch
    refusal = by_id.reindex(ids[held])
    batch.loc[rows, "action"] = "reject"
    batch.loc[rows, "reason"] = [
        f"the CRM refused its create as a duplicate ({code}: {error}) on {at:%Y-%m-%d %H:%M} UTC; it is sent "
        "again once the Enginy record changes (or launch with resend_refused_duplicates)"
        for code, error, at in zip(refusal["error_code"], refusal["error"], refusal["updated_at"])]
    return batch
