"""From matches to the exact writes an export would make: one row per Enginy record, each a
create, an update of only the fields that change, a skip with its reason, or a rejection with
the CRM's objection — so a person can see what a sync will do before it does it.

Plain Python over DataFrames: the assets feed it the Enginy records, their matches, the CRM
snapshot, the described CRM fields and the launch options.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Mapping, NamedTuple

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crm_pipelines.export.values import (
    FieldSpec, as_meant, coerce_column, empty_column, is_empty, neutralize_formulas, same_column,
)
from crm_pipelines.frames import JsonFields, to_json

SyncMode = Literal["upsert", "update_only", "create_only"]
BATCH_COLUMNS = ["enginy_id", "action", "crm_id", "fields", "diff", "owner_id", "company_crm_id", "company_link",
                 "unlink_company_id", "reason", "writeback"]
AssociationType = Literal["additional", "primary", "primary_remove_previous"]


@dataclass(frozen=True)
class Launch:
    """What a person chooses when launching an export (the seeds' export modal)."""

    sync_mode: SyncMode = "upsert"
    manual_values: dict[str, Any] = field(default_factory=dict)  # CRM field → value, for manual_export fields
    owner_id: str | None = None  # a CRM user id chosen at launch
    overwrite_owner: bool = False  # the launch owner replaces an owner the CRM record already has
    association: AssociationType = "additional"  # how a contact is linked to its company
    confirm_remove_previous: bool = False  # primary_remove_previous unlinks companies: asked for explicitly
    neutralize_formulas: bool = False  # free text a spreadsheet would run as a formula is quoted (config)


@dataclass(frozen=True)
class Owners:
    """Who owns what is created: users mapping, then owner-by-email, then the default owner."""

    user_mapping: dict[str, str] = field(default_factory=dict)  # Enginy user id → CRM user id
    enginy_user_emails: dict[str, str] = field(default_factory=dict)  # Enginy user id → email
    crm_user_by_email: dict[str, str] = field(default_factory=dict)  # lower-case email → active CRM user id
    default_owner: str | None = None

    def for_record(self, enginy_owner: Any) -> tuple[str | None, str]:
        """(CRM owner id, the rule that chose it)."""
        if not is_empty(enginy_owner):
            if enginy_owner in self.user_mapping:
                return self.user_mapping[enginy_owner], "users mapping"
            email = (self.enginy_user_emails.get(enginy_owner) or "").lower()
            if email and email in self.crm_user_by_email:
                return self.crm_user_by_email[email], "same email"
        if self.default_owner:
            return self.default_owner, "default owner"
        return None, "CRM default"


def build_batch(records: pd.DataFrame, matches: pd.DataFrame, crm_records: pd.DataFrame, mappings: list[Any],
                schema: dict[str, FieldSpec], launch: Launch, owners: Owners | None = None,
                campaign_values: pd.DataFrame | None = None, campaign_mapping: dict[str, str] | None = None,
                company_links: Mapping[str, str] | pd.Series | None = None,
                one_company_per_contact: bool = True, companies_to_create: Iterable[str] = (),
                required: Iterable[str] = ()) -> pd.DataFrame:
    """One row per Enginy record (``records.id``); see BATCH_COLUMNS.

    ``matches``: enginy_id, outcome (new / matched / ambiguous), crm_id. ``crm_records``: the
    snapshot (crm_id, last_modified, owner_id, raw). ``campaign_values``: campaign properties per
    Enginy id, sent to the fields ``campaign_mapping`` names. ``company_links``: Enginy id → CRM
    id of the company the record should be linked to. ``one_company_per_contact``: the CRM holds a
    single company per contact (all but HubSpot), so an additional link to a contact that has one
    cannot be made — asking for it on every export would be an update that never lands.
    ``companies_to_create``: Enginy ids of records whose company is not in the CRM yet (the
    company batch creates it): their link is decided here by the same rules, and the push fills in
    the company's id once it has created it. ``required``: the CRM fields a new record must have
    (the CRM's facts): a create without one is rejected, naming it, and the rest of the batch goes.

    Decided a mapped field at a time over the whole batch, not a record at a time: a million-row
    batch is a few dozen column operations. Each row's ``fields``, ``diff`` and ``writeback`` are
    the JSON text the warehouse stores, put together a field at a time: a dict per row of a
    million rows was gigabytes held until the warehouse turned them into this same text.
    """
    if launch.association == "primary_remove_previous" and not launch.confirm_remove_previous:
        raise ValueError("association type primary_remove_previous removes the contacts' current primary "
                         "companies: launch with confirm_remove_previous set to true to go ahead (the removed "
                         "links are recorded, and the undo_associations job restores them)")
    records = records.reset_index(drop=True)
    n = len(records)
    ids = records["id"].astype("str")
    enginy_id = ids.to_numpy(object)
    by_enginy_id = matches.assign(enginy_id=matches["enginy_id"].astype("str")).drop_duplicates("enginy_id")
    by_enginy_id = by_enginy_id.set_index("enginy_id").reindex(enginy_id)
    status = by_enginy_id["outcome"].to_numpy(object)
    matched = status == "matched"
    crm_id = np.where(matched, by_enginy_id["crm_id"].to_numpy(object), None)
    current = _current(crm_records, crm_id)
    found = current["found"].to_numpy(bool)
    links = _company_links(enginy_id, current, launch, {} if company_links is None else company_links,
                           one_company_per_contact, companies_to_create)

    reason = np.full(n, None, dtype=object)
    gone = matched & (~found | current["is_deleted"].to_numpy(bool))
    reason[gone] = [f"the matched CRM record {c} "
                    + ("is deleted in the CRM" if f else "is not in this object's snapshot")
                    for c, f in zip(crm_id[gone], found[gone])]
    skipped = gone.copy()
    for rows, why in ((status == "ambiguous", "ambiguous match: several CRM records; review it"),
                      (matched if launch.sync_mode == "create_only" else None,
                       "already in the CRM and the sync mode is create_only"),
                      (~matched if launch.sync_mode == "update_only" else None,
                       "not in the CRM and the sync mode is update_only")):
        if rows is not None:
            rows = rows & ~skipped
            reason[rows] = why
            skipped |= rows

    decided = np.flatnonzero(~skipped)
    # The decided rows' records (all of them, most runs: then no copy).
    decided_records, decided_current = ((records, current) if len(decided) == n else
                                        (records.iloc[decided].reset_index(drop=True),
                                         current.iloc[decided].reset_index(drop=True)))
    crm_fields = crm_records["raw"] if "raw" in crm_records else pd.Series([None] * len(crm_records), dtype=object)
    decision = _decide(decided_records, enginy_id[decided], decided_current, crm_fields, ~matched[decided], mappings,
                       schema, launch, campaign_values, campaign_mapping or {}, tuple(required))
    owner, owner_rule = _owner_column(decided_records, decided_current, launch, owners, ~matched[decided])
    del decided_records, decided_current
    rejected = decision.reason.notna().to_numpy(bool)
    reason[decided[rejected]] = decision.reason[rejected].to_numpy(object)
    clashes = _case_clashes(ids)[decided]
    clashing = pd.notna(clashes) & ~rejected
    reason[decided[clashing]] = clashes[clashing]
    rejected = rejected | clashing
    kept = ~rejected
    sets_owner = kept & pd.notna(owner)
    held_owner = np.where(found, current["owner_id"].to_numpy(object), None)[decided]
    owner_id = np.full(n, None, dtype=object)
    owner_id[decided[sets_owner]] = owner[sets_owner]

    action = np.full(n, "skip", dtype=object)
    action[decided[rejected]] = "reject"
    updating = kept & matched[decided]
    action[decided[kept & ~matched[decided]]] = "create"
    has_fields = np.zeros(len(decided), dtype=bool)
    for _, rows, _ in decision.fields:
        has_fields |= rows
    writes_something = has_fields | sets_owner | pd.notna(links["company_link"][decided])
    action[decided[updating & writes_something]] = "update"
    reason[decided[updating & ~writes_something]] = "nothing to change"

    # The rows kept show their changes; the owner's comes last.
    changes = [_Change(name, rows & kept, crm_values, new_values, rule)
               for name, rows, crm_values, new_values, rule in decision.changes]
    diff = _diff_lists(n, decided, [*changes, _Change("owner", sets_owner, held_owner, owner, owner_rule)])

    # Object columns even with no rows: pandas makes an empty list a float column, which the
    # batch's schema gate refuses (an incremental run with nothing changed has an empty batch).
    return pd.DataFrame({"enginy_id": enginy_id, "action": action, "crm_id": crm_id,
                         "fields": _json_objects(n, decided, kept, decision.fields), "diff": diff,
                         "owner_id": owner_id, **links, "reason": reason,
                         "writeback": _json_objects(n, decided, kept, decision.writeback)},
                        columns=BATCH_COLUMNS)


def _case_clashes(enginy_id: pd.Series) -> np.ndarray:
    """Per row, why its Enginy id cannot be sent (None: it can): it differs from another row's only
    in letter case. Salesforce external ids, Dataverse alternate keys and most CRMs' unique fields
    compare without case, so the second upsert would overwrite the first record, reported updated."""
    why = np.full(len(enginy_id), None, dtype=object)
    arrow = pa.array(enginy_id, type=pa.string(), from_pandas=True)
    lowered = pc.utf8_lower(arrow)
    # Ids with no upper-case letter (the usual case) cannot clash: answered without a hash of them.
    if pc.all(pc.equal(lowered, arrow)).as_py() is not False:
        return why
    ids, lowered = enginy_id.astype(object), pd.Series(lowered.to_pylist(), dtype=object)
    clash = (lowered.duplicated(keep=False) & ~ids.duplicated(keep=False)).to_numpy(bool)
    if clash.any():  # a handful of rows: named one by one
        together = ids[clash].groupby(lowered[clash]).agg(lambda group: sorted(set(group)))
        for row in np.flatnonzero(clash):
            others = [other for other in together[lowered.iat[row]] if other != ids.iat[row]]
            why[row] = (f"Enginy id {ids.iat[row]!r} differs from {', '.join(map(repr, others))} only in letter "
                        "case: the CRM compares ids without case and would overwrite one record with the other "
                        "— fix: give them distinct ids in Enginy")
    return why


def _current(crm_records: pd.DataFrame, crm_id: np.ndarray) -> pd.DataFrame:
    """The snapshot's record for each batch row (``found`` false where there is none), its fields
    but ``raw``: ``snapshot_row`` is the record's row in ``crm_records`` (-1 for none), where its
    CRM fields are read — not copied out for each batch row, as they are most of the snapshot."""
    ids = pd.Index(crm_records["crm_id"].to_numpy(object) if len(crm_records) else [], dtype=object)
    last = np.flatnonzero(~ids.duplicated(keep="last"))  # a record given twice: its last row
    at = ids[last].get_indexer(pd.Index(crm_id, dtype=object))
    row = np.where((at >= 0) & pd.notna(crm_id), last[np.maximum(at, 0)] if len(last) else -1, -1)
    found = row >= 0
    current = pd.DataFrame({"snapshot_row": row, "found": found})
    for column in ("owner_id", "account_id", "last_modified", "is_deleted"):
        if column not in crm_records or not found.any():
            current[column] = None
            continue
        values = crm_records[column].take(np.where(found, row, 0)).reset_index(drop=True)
        current[column] = values if found.all() else values.where(found)
    # The deleted flag as the record gives it; a record without one is not deleted.
    current["is_deleted"] = found & current["is_deleted"].astype(object).fillna(False).astype(bool).to_numpy()
    return current


def _company_links(enginy_id: np.ndarray, current: pd.DataFrame, launch: Launch,
                   company_links: Mapping[str, str] | pd.Series, one_company_per_contact: bool,
                   companies_to_create: Iterable[str]) -> dict[str, np.ndarray]:
    """The company each contact should be linked to, how, and the link it replaces; a contact whose
    company the export creates gets how and what it replaces, its company's id left to the push."""
    n = len(enginy_id)
    ids = pd.Series(enginy_id, dtype=object)
    target = ids.map(company_links).to_numpy(object)
    has_target = pd.notna(target)
    awaiting = ~has_target & ids.isin(pd.Index(list(companies_to_create), dtype=object)).to_numpy(bool)
    held = current["account_id"].where(current["found"] & ~pd.Series(empty_column(current["account_id"])))
    held = held.astype(object).where(held.notna(), None).to_numpy(object)
    has_held = pd.notna(held)
    link = (has_target & ~(has_held & (target == held))) | awaiting
    if launch.association == "additional" and one_company_per_contact:
        link &= ~has_held
    company_crm_id = np.where(link, target, None)
    how = np.where(link, "additional" if launch.association == "additional" else "primary", None)
    unlink = np.where(link, held, None) if launch.association == "primary_remove_previous" else np.full(n, None)
    return {"company_crm_id": company_crm_id, "company_link": how, "unlink_company_id": unlink.astype(object)}


class _Change(NamedTuple):
    """One field's change on the decided rows: the rows it changes (a mask), the CRM's value
    and the new one on each (object arrays), and the rule deciding it (one, or one per row)."""

    field: str
    rows: np.ndarray
    crm_values: np.ndarray
    new_values: np.ndarray
    rule: str | np.ndarray


@dataclass
class _Decision:
    """Per decided row: the fields to write, the values to write back to Enginy, and the reason
    the row is rejected (None where it is not); the change of each written field, in the order
    the diff lists them."""

    fields: list[tuple[str, np.ndarray, np.ndarray]]  # CRM field, the rows it is written on, its values
    changes: list[_Change]
    writeback: list[tuple[str, np.ndarray, np.ndarray]]  # Enginy field, the rows it is written back on, values
    reason: pd.Series


def _diff_lists(n: int, decided: np.ndarray, changes: list[_Change]) -> pd.Series:
    """Each of the ``n`` batch rows' changes as the JSON text of a list of {"field", "crm_value",
    "new_value", "rule"} (``[]`` for none), in the changes' order; ``decided``: the batch row of
    each row the changes are over."""
    text = _JsonText(n)
    for change in changes:
        at = decided[change.rows]  # the batch rows this field changes
        crm_value, new_value, rule = (
            _sql_text(to_json(values)) if isinstance(values, str)  # one rule for every row
            else text.values(at, values[change.rows])
            for values in (change.crm_values, change.new_values, change.rule))
        text.piece(at, f"'{{\"field\":' || {_sql_text(to_json(change.field))} || ',\"crm_value\":' || {crm_value} "
                       f"|| ',\"new_value\":' || {new_value} || ',\"rule\":' || {rule} || '}}'")
    return text.rows("[", "]")


def _json_objects(n: int, decided: np.ndarray, kept: np.ndarray,
                  entries: list[tuple[str, np.ndarray, np.ndarray]]) -> pd.Series:
    """Each of the ``n`` batch rows' JSON object of the ``entries`` (key, the decided rows it is
    on, its value on each decided row) on its row, kept rows only (``{}`` for the rest); a key
    given twice on a row takes the later value, as a dict would."""
    later: dict[str, np.ndarray] = {}  # per key, the rows a later entry gives it on
    ons = []
    for key, rows, _ in reversed(entries):
        ons.append(rows & kept & ~later[key] if key in later else rows & kept)
        later[key] = later[key] | rows if key in later else rows
    text = _JsonText(n)
    for (key, _, values), on in zip(entries, reversed(ons)):
        at = decided[on]
        text.piece(at, f"{_sql_text(to_json(key) + ':')} || {text.values(at, values[on])}")
    return text.rows("{", "}")


class _JsonText:
    """The JSON text of ``n`` rows, put together by DuckDB a piece at a time: each piece is on
    some of the rows, and a row's pieces are joined in the order they were given. The values are
    turned to JSON there when they are text, as the warehouse would write them otherwise."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.columns: dict[str, pa.Array] = {}
        self.pieces: list[str] = []

    def values(self, at: np.ndarray, values: np.ndarray) -> str:
        """The SQL giving each row's JSON of ``values``, placed at rows ``at``."""
        name = f"value_{len(self.columns)}"
        self.columns[name], expression = _json_values(self.n, at, values)
        return expression.format(column=name)

    def piece(self, at: np.ndarray, sql: str) -> None:
        """``sql`` (JSON text) is a piece of rows ``at``."""
        on = np.zeros(self.n, dtype=bool)
        on[at] = True
        name = f"on_{len(self.columns)}"
        self.columns[name] = pa.array(on)
        self.pieces.append(f"CASE WHEN {name} THEN {sql} END")

    def rows(self, opening: str, closing: str) -> pd.Series:
        """Each row's pieces, joined by commas, between ``opening`` and ``closing``."""
        connection = duckdb.connect()
        try:
            columns = self.columns or {"none": pa.nulls(self.n)}
            connection.register("pieces", pa.table(columns))
            # concat_ws leaves out the nulls: the pieces not on a row. A projection keeps the rows' order.
            joined = connection.sql(f"SELECT '{opening}' || concat_ws(',', {', '.join(self.pieces) or 'NULL'}) "
                                    f"|| '{closing}' AS text FROM pieces").to_arrow_table().column("text")
        finally:
            connection.close()
        # Large strings: a million rows' lists may pass the 2 GB a string array holds.
        joined = pa.chunked_array([chunk.cast(pa.large_string()) for chunk in joined.chunks], pa.large_string())
        return pd.Series(pd.arrays.ArrowStringArray(joined))


def _json_values(n: int, at: np.ndarray, values: np.ndarray) -> tuple[pa.Array, str]:
    """``values`` placed at rows ``at`` of a column of ``n`` (null elsewhere), with the SQL that
    gives one's JSON text from its ``{column}``: text is turned to JSON by DuckDB (as orjson
    would), any other value here, by the function the warehouse writes nested values with."""
    placed = np.full(n, None, dtype=object)
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        placed[at] = values
        return pa.array(placed, type=pa.string(), from_pandas=True), "coalesce(to_json({column}), 'null')"
    placed[at] = np.fromiter((to_json(value) for value in values), dtype=object, count=len(values))
    return pa.array(placed, type=pa.string()), "{column}"


def _sql_text(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _wanted(records: pd.DataFrame, enginy_id: np.ndarray, mappings: list[Any], launch: Launch,
            campaign_values: pd.DataFrame | None, campaign_mapping: dict[str, str]
            ) -> list[tuple[Any, str, pd.Series, np.ndarray]]:
    """(mapping, CRM field, the value Enginy wants there per row, the rows that want it) for each
    active mapping, then the campaign properties."""
    n, everyone = len(records), np.ones(len(records), dtype=bool)
    wanted = []
    for m in mappings:
        if m.option == "deactivated":
            continue
        if m.type == "enginy_field":
            values = records[m.enginy_field] if m.enginy_field in records else pd.Series([None] * n, dtype=object)
        elif m.type == "manual_export":
            if m.crm_field not in launch.manual_values:
                continue  # asked for at launch; not given means not written
            values = pd.Series([launch.manual_values[m.crm_field]] * n, dtype=object)
        else:  # fixed_value, engagement
            values = pd.Series([m.value] * n, dtype=object)
        wanted.append((m, m.crm_field, values.reset_index(drop=True), everyone))
    if campaign_mapping and campaign_values is not None:
        campaign = campaign_values[~campaign_values.index.duplicated(keep="last")]
        # Each record's row of the campaign values, found once for all the properties.
        at = campaign.index.get_indexer(pd.Index(enginy_id, dtype=object))
        has_values = at >= 0
        for prop, crm_field in campaign_mapping.items():
            if prop not in campaign:
                continue
            if not len(campaign):
                values = pd.Series([None] * len(at), dtype=object)
            else:  # as a reindex gives them: missing where a record has no row
                values = campaign[prop].take(np.where(has_values, at, 0)).reset_index(drop=True)
                values = values if has_values.all() else values.where(has_values)
            wanted.append((None, crm_field, values, has_values))
    return wanted


def _decide(records: pd.DataFrame, enginy_id: np.ndarray, current: pd.DataFrame, crm_fields: pd.Series,
            creating: np.ndarray, mappings: list[Any], schema: dict[str, FieldSpec], launch: Launch,
            campaign_values: pd.DataFrame | None, campaign_mapping: dict[str, str],
            required: tuple[str, ...] = ()) -> _Decision:
    """The fields to write, the diff to show and the values to write back, a mapped field at a
    time; a row is rejected for the first mapped field whose value the CRM would refuse, or, on a
    create, for a ``required`` field it leaves empty.
    ``crm_fields``: the snapshot records' raw fields, by ``current["snapshot_row"]``."""
    n = len(records)
    reason = pd.Series(np.full(n, None, dtype=object), dtype=object)
    written: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, str]] = []  # field, rows, new, held, rule
    sent_back: list[tuple[str, np.ndarray, np.ndarray]] = []  # Enginy field, rows, CRM value
    updating = ~creating
    newer = None
    wanted = _wanted(records, enginy_id, mappings, launch, campaign_values, campaign_mapping)
    crm_values = JsonFields(crm_fields, [crm_field for _, crm_field, _, _ in wanted if crm_field in schema])
    snapshot_row = current["snapshot_row"].to_numpy()
    for mapping, crm_field, values, wants in wanted:
        spec = schema.get(crm_field)
        if spec is None:
            _refuse(reason, wants, f"{crm_field}: the CRM has no such field; check the field mapping")
            continue
        option = mapping.option if mapping is not None else "enginy_overwrites_crm"
        enginy_field = getattr(mapping, "enginy_field", None)
        new, refused = coerce_column(as_meant(spec, enginy_field), values)
        if launch.neutralize_formulas:
            new = neutralize_formulas(spec, new)
        _refuse(reason, wants, refused)
        has_new = wants & new.notna().to_numpy(bool)
        new = new.to_numpy(object)
        # The CRM's value matters only where an update has a value to write.
        change = has_new & updating
        held = np.full(n, None, dtype=object)
        held[change] = crm_values.on(crm_field, snapshot_row[change])
        change[change] = ~same_column(pd.Series(held[change], dtype=object), pd.Series(new[change], dtype=object),
                                      spec)
        held_empty = empty_column(pd.Series(held, dtype=object))
        if option == "sync_if_empty":
            change &= held_empty
        sent = np.zeros(n, dtype=bool)  # the rows whose CRM value is written back to Enginy
        if option in ("crm_overwrites_enginy", "bidirectional"):
            if option == "bidirectional":
                newer = _crm_is_newer(current, records) if newer is None else newer
                to_enginy = change & newer
            else:
                to_enginy = change
            if enginy_field is not None:
                sent = to_enginy & ~held_empty
            change &= ~to_enginy
        if not spec.updateable:
            _refuse(reason, change, f"{crm_field}: the CRM does not let this field be updated")
        rows = change | (has_new & creating)
        # Only the rows written, or written back, keep their values: at a million rows, the values
        # of the rows with nothing to change were gigabytes held to the end of the batch.
        held, new = np.where(change | sent, held, None), np.where(rows, new, None)
        if sent.any():
            sent_back.append((enginy_field, sent, held))
        written.append((crm_field, rows, new, held, option))
    for crm_field, rows, _, _, _ in written:
        if not schema[crm_field].createable:
            _refuse(reason, rows & creating, f"{crm_field}: the CRM does not let this field be set on a new record")
    for crm_field in required:
        _refuse(reason, creating & ~_written_on(written, crm_field, n),
                f"{crm_field}: required on a new record, and {_source(mappings, crm_field)}")
    changes = []
    for crm_field, rows, new, held, option in written:
        # A create shows no CRM value.
        changes.append(_Change(crm_field, rows, np.where(creating, None, held), new, option))
    fields = [(crm_field, rows, new) for crm_field, rows, new, _, _ in written]
    writeback = [(enginy_field, rows, held) for enginy_field, rows, held in sent_back]
    return _Decision(fields, changes, writeback, reason)


def _written_on(written: list[tuple], crm_field: str, n: int) -> np.ndarray:
    """Of ``n`` rows, those some mapping writes ``crm_field`` on (a value the CRM would refuse is not)."""
    rows = np.zeros(n, dtype=bool)
    for name, on, *_ in written:
        if name == crm_field:
            rows = rows | on
    return rows


def _source(mappings: list[Any], crm_field: str) -> str:
    """Where a required field's value was to come from, for the reason of a create without it."""
    fields = [m.enginy_field for m in mappings if m.crm_field == crm_field and m.option != "deactivated"
              and m.type == "enginy_field"]
    if fields:
        return f"the record's {' / '.join(fields)} is empty"
    return "no field mapping sets it" if not any(m.crm_field == crm_field for m in mappings) else "it is empty"


def _refuse(reason: pd.Series, rows: np.ndarray, why: str | pd.Series) -> None:
    """Rows not yet rejected are rejected for ``why`` (a reason, or one per row, None for none)."""
    open_rows = rows & reason.isna().to_numpy(bool)
    if isinstance(why, pd.Series):
        open_rows &= why.notna().to_numpy(bool)
        reason[open_rows] = why[open_rows]
    else:
        reason[open_rows] = why


def _crm_is_newer(current: pd.DataFrame, records: pd.DataFrame) -> np.ndarray:
    """Bidirectional fields: the side changed last wins (unknown times: Enginy's)."""
    crm_time = _utc(current["last_modified"])
    enginy_time = _utc(records["updated_at"] if "updated_at" in records else pd.Series([None] * len(records)))
    return (crm_time > enginy_time).to_numpy(bool)


def _utc(values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return pd.to_datetime(values, utc=True).reset_index(drop=True)
    return pd.to_datetime(values.astype(object), utc=True, format="mixed").reset_index(drop=True)


def _owner_column(records: pd.DataFrame, current: pd.DataFrame, launch: Launch, owners: Owners | None,
                  creating: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the CRM owner to set, the rule that chose it) per row; None where the owner stays."""
    n = len(records)
    owner, rule = np.full(n, None, dtype=object), np.full(n, "", dtype=object)
    held = current["owner_id"]
    found = current["found"].to_numpy(bool)
    has_owner = found & ~empty_column(held)
    if launch.owner_id:
        already = found & (held.to_numpy(object) == launch.owner_id)
        chosen = (creating | launch.overwrite_owner | ~has_owner) & ~already
        owner[chosen], rule[chosen] = launch.owner_id, "chosen at launch"
        return owner, rule  # the others hold an owner, which stays
    if owners is None:
        return owner, rule
    by_rules = ~has_owner
    enginy_owner = records["owner_user_id"] if "owner_user_id" in records else pd.Series([None] * n, dtype=object)
    codes, distinct = pd.factorize(enginy_owner[by_rules], use_na_sentinel=True)
    chosen = [owners.for_record(value) for value in distinct] + [owners.for_record(None)]  # the last: no owner
    owner[by_rules] = [chosen[c][0] for c in codes]
    rule[by_rules] = [chosen[c][1] for c in codes]
    return owner, rule
