"""Matching Enginy records against a CRM snapshot with equality keys and hash joins in DuckDB.

A rule's AND-groups become equality keys over normalised fields; each group is one hash join of
the Enginy keys against the CRM keys, and the outcome of an Enginy record is the number of
distinct CRM records any group joined it to: none is ``new`` (create), one is ``matched``
(update), several is ``ambiguous`` (never written automatically; listed for review). No pair of
records is ever compared in Python.

The CRM side is normalised once into a :class:`CrmIndex`; matching a batch of Enginy records then
normalises only that batch, which is what makes an incremental sync of a few changed records
cheap against a large snapshot.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from crm_pipelines.matching.normalize import NORMALISERS, create_mapping, sql_expression
from crm_pipelines.matching.rules import Condition, Rule

NEW, MATCHED, AMBIGUOUS = "new", "matched", "ambiguous"
OUTCOMES = (NEW, MATCHED, AMBIGUOUS)
THROUGH_COMPANY = " (through the matched company)"
MATCH_COLUMNS = ["enginy_id", "outcome", "crm_id", "crm_object", "candidates", "n_candidates", "rule", "matched_by"]
DUPLICATE_COLUMNS = ["duplicate_group", "crm_object", "crm_id", "group_size", "matched_by"]
# An Enginy company without a domain is still known by its website.
ENGINY_FALLBACKS = {"domain": "website"}


@dataclass(frozen=True)
class Slot:
    """A field as one side reads it: which column, how normalised, and whether an Enginy
    contact's company id is read through the company matches (the CRM company it matched)."""

    field: str
    normalize: str
    through_company: bool = False


@dataclass(frozen=True)
class Key:
    """One equality key: a rule group, or the group with its company name condition replaced by
    "the Enginy company matched this CRM company"."""

    label: str
    pairs: tuple[tuple[Slot, Slot], ...]  # (Enginy slot, CRM slot), all of which must be equal


def compile_keys(rule: Rule, crm_columns: Iterable[str]) -> list[Key]:
    """The equality keys of ``rule``. A contact's company name also matches through the company
    already matched (Enginy company ↔ CRM account), when the CRM records carry ``account_id``."""
    keys = []
    for group in rule.groups:
        keys.append(Key(group.label, tuple((Slot(c.enginy, c.normalize), Slot(c.crm, c.normalize))
                                           for c in group.conditions)))
        if "account_id" in crm_columns and any(_is_company_name(c) for c in group.conditions):
            keys.append(Key(group.label + THROUGH_COMPANY, tuple(
                (Slot("company_id", "exact", through_company=True), Slot("account_id", "exact")) if _is_company_name(c)
                else (Slot(c.enginy, c.normalize), Slot(c.crm, c.normalize)) for c in group.conditions)))
    return keys


def _is_company_name(condition: Condition) -> bool:
    return condition.enginy == "company_name" and condition.crm == "company_name"


def _raw_value(raw: Any, field: str) -> Any:
    if isinstance(raw, str):
        raw = json.loads(raw)
    return raw.get(field) if isinstance(raw, dict) else None


def _column(frame: pd.DataFrame, name: str, side: str, fallbacks: dict[str, str]) -> pd.Series:
    if name.startswith("raw."):
        if "raw" not in frame:
            raise ValueError(f"{side} records have no raw column, so {name!r} cannot be read")
        field = name.removeprefix("raw.")
        values = frame["raw"].map(lambda raw: _raw_value(raw, field))
    elif name in frame:
        values = frame[name]
        if name in fallbacks and fallbacks[name] in frame:
            values = values.where(values.notna(), frame[fallbacks[name]])
    else:
        raise ValueError(f"{side} records have no column {name!r}; columns: {', '.join(map(str, frame.columns))}")
    return values


def _strings(values: pd.Series) -> pa.ChunkedArray | pa.Array:
    if values.dtype != object and pd.api.types.is_string_dtype(values.dtype):
        return pa.chunked_array(pa.array(values)).cast(pa.large_string())
    return pa.array([None if v is None or v != v else v if isinstance(v, str) else str(v) for v in values],
                    type=pa.large_string())


class CrmIndex:
    """The CRM side of a rule, normalised once and kept in an in-memory DuckDB.

    ``crm``: the CRM records to match against (``crm_id``, the fields the rule names, ``object``
    when several CRM objects are searched together, ``is_deleted``). Deleted records never match.
    ``also``: extra fields to normalise on both sides (the near-miss tier reads them).
    """

    def __init__(self, rule: Rule, crm: pd.DataFrame, also: Iterable[tuple[Slot, Slot]] = ()) -> None:
        if "is_deleted" in crm:
            crm = crm[~crm["is_deleted"].fillna(False).astype(bool)]
        crm = crm.reset_index(drop=True)
        self.rule = rule
        self.keys = compile_keys(rule, crm.columns)
        pairs = [pair for key in self.keys for pair in key.pairs] + list(also)
        self.enginy_slots = list(dict.fromkeys(e for e, _ in pairs))
        self.crm_slots = list(dict.fromkeys(c for _, c in pairs))
        self.crm_ids = crm["crm_id"].astype(str).to_numpy(dtype=object)
        self.crm_objects = (crm["object"].astype(str).to_numpy(dtype=object) if "object" in crm
                            else np.full(len(crm), "records", dtype=object))
        self.con = duckdb.connect()
        # Progress bars would land on the terminal of whoever runs the CLI or the bench.
        self.con.execute("SET enable_progress_bar = false")
        normalise(self.con, "crm", crm, self.crm_slots, "CRM", {}, None)
        self._hash_keys("crm")
        self.con.register("crm_records", pa.table({"row": np.arange(len(crm)), "crm_id": self.crm_ids,
                                                  "crm_object": self.crm_objects}))

    def __len__(self) -> int:
        return len(self.crm_ids)

    def column(self, side: str, slot: Slot) -> str:
        """The column of ``{side}_norm`` holding ``slot`` normalised (side: enginy or crm)."""
        slots = self.enginy_slots if side == "enginy" else self.crm_slots
        return f"n{slots.index(slot)}"

    def match(self, enginy: pd.DataFrame, company_links: pd.Series | None = None) -> pd.DataFrame:
        """One row per Enginy record (``id``): its outcome against the indexed CRM records.

        ``company_links``: Enginy company id → CRM company id, for the companies already matched.
        """
        enginy = enginy.reset_index(drop=True)
        normalise(self.con, "enginy", enginy, self.enginy_slots, "Enginy", ENGINY_FALLBACKS, company_links)
        self._hash_keys("enginy")
        # Join on one 64-bit hash per key — a batch of changed records then costs a scan of the
        # CRM's integers, not a hash of its strings — and compare the keys themselves after.
        self.con.execute("CREATE OR REPLACE TEMP TABLE candidates AS " + " UNION ALL ".join(
            f"SELECT e.row AS e_row, c.row AS c_row, {k} AS k FROM enginy_keys e JOIN crm_keys c ON e.h{k} = c.h{k}"
            for k in range(len(self.keys))))
        same = [f"(k = {k} AND " + " AND ".join(f"e.{self.column('enginy', es)} = c.{self.column('crm', cs)}"
                                                  for es, cs in key.pairs) + ")" for k, key in enumerate(self.keys)]
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE pairs AS SELECT p.e_row, p.c_row, bit_or(1 << p.k) AS bits FROM candidates p "
            "JOIN enginy_norm e ON e.row = p.e_row JOIN crm_norm c ON c.row = p.c_row "
            f"WHERE {' OR '.join(same)} GROUP BY p.e_row, p.c_row")
        found = self.con.sql("SELECT e_row, count(*) AS n, bit_or(bits) AS bits, min(c_row) AS c_row "
                             "FROM pairs GROUP BY e_row").fetchnumpy()
        n = len(enginy)
        count = np.zeros(n, dtype=np.int64)
        bits = np.zeros(n, dtype=np.int64)
        first = np.full(n, -1, dtype=np.int64)
        rows = np.asarray(found["e_row"], dtype=np.int64)
        count[rows] = found["n"]
        bits[rows] = found["bits"]
        first[rows] = found["c_row"]
        single = count == 1
        crm_id = np.full(n, None, dtype=object)
        crm_object = np.full(n, None, dtype=object)
        crm_id[single] = self.crm_ids[first[single]]
        crm_object[single] = self.crm_objects[first[single]]
        candidates = np.full(n, None, dtype=object)
        listed = self.con.sql(
            "SELECT p.e_row, string_agg(r.crm_id, ', ' ORDER BY r.crm_id) AS ids, "
            "string_agg(DISTINCT r.crm_object, ', ' ORDER BY r.crm_object) AS objects "
            "FROM pairs p JOIN crm_records r ON r.row = p.c_row "
            "WHERE p.e_row IN (SELECT e_row FROM pairs GROUP BY e_row HAVING count(*) > 1) GROUP BY p.e_row").fetchnumpy()
        several = np.asarray(listed["e_row"], dtype=np.int64)
        candidates[several] = np.asarray(listed["ids"], dtype=object)
        crm_object[several] = np.asarray(listed["objects"], dtype=object)
        outcome = np.array(OUTCOMES, dtype=object)[np.minimum(count, 2)]
        return pd.DataFrame({
            "enginy_id": enginy["id"].astype(str), "outcome": _text(outcome), "crm_id": _text(crm_id),
            "crm_object": _text(crm_object), "candidates": _text(candidates), "n_candidates": count,
            "rule": self.rule.name, "matched_by": _text(self._labels(bits))}, columns=MATCH_COLUMNS)

    def _hash_keys(self, side: str) -> None:
        """``{side}_keys(row, h0, h1, …)``: each key's columns hashed, NULL where one is blank."""
        columns = []
        for k, key in enumerate(self.keys):
            names = [self.column(side, pair[0] if side == "enginy" else pair[1]) for pair in key.pairs]
            present = " AND ".join(f"{n} IS NOT NULL" for n in names)
            columns.append(f"CASE WHEN {present} THEN hash({', '.join(names)}) END AS h{k}")
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {side}_keys AS SELECT row, {', '.join(columns)} FROM {side}_norm")

    def fill_rates(self) -> pd.DataFrame:
        """How many records even have each identifier the rule reads (a usable, normalised value),
        on the CRM side and in the Enginy batch last matched."""
        in_rule = {slot for key in self.keys for pair in key.pairs for slot in pair}
        rows = []
        for side, who, slots in (("enginy", "Enginy", self.enginy_slots), ("crm", "CRM", self.crm_slots)):
            used = [(i, slot) for i, slot in enumerate(slots) if slot in in_rule]
            counts = self.con.sql(f"SELECT count(*) {''.join(f', count(n{i})' for i, _ in used)} "
                                  f"FROM {side}_norm").fetchall()[0]
            rows += [{"side": who, "identifier": slot.field + (" (matched company)" if slot.through_company else ""),
                      "records": int(counts[0]), "filled": int(counts[k + 1])} for k, (_, slot) in enumerate(used)]
        return pd.DataFrame(rows, columns=["side", "identifier", "records", "filled"])

    def duplicates(self) -> pd.DataFrame:
        """Groups of CRM records that the rule says are one (the seeds' "duplicate records appear
        in the CRM"): records sharing any key, joined transitively."""
        edges = []
        for k, key in enumerate(self.keys):
            columns = [self.column("crm", cs) for _, cs in key.pairs]
            present = " AND ".join(f"{c} IS NOT NULL" for c in columns)
            window = ", ".join(columns)
            edges.append(self.con.sql(
                f"SELECT row, root, {1 << k} AS bit FROM (SELECT row, min(row) OVER w AS root, count(*) OVER w AS size "
                f"FROM crm_norm WHERE {present} WINDOW w AS (PARTITION BY {window})) WHERE size > 1 AND row <> root"
            ).fetchnumpy())
        a = np.concatenate([np.asarray(e["row"], dtype=np.int64) for e in edges]) if edges else np.empty(0, np.int64)
        b = np.concatenate([np.asarray(e["root"], dtype=np.int64) for e in edges]) if edges else np.empty(0, np.int64)
        bit = np.concatenate([np.asarray(e["bit"], dtype=np.int64) for e in edges]) if edges else np.empty(0, np.int64)
        if not len(a):
            return pd.DataFrame(columns=DUPLICATE_COLUMNS)
        group = components(len(self), a, b)
        bits = np.zeros(len(self), dtype=np.int64)
        np.bitwise_or.at(bits, a, bit)
        np.bitwise_or.at(bits, b, bit)
        members = np.unique(np.concatenate([a, b]))
        frame = pd.DataFrame({"root": group[members], "crm_object": self.crm_objects[members],
                              "crm_id": self.crm_ids[members], "matched_by": self._labels(bits[members])})
        frame["group_size"] = frame.groupby("root")["crm_id"].transform("size")
        # Name a group after its smallest CRM id, so the same group keeps its name between runs.
        frame["duplicate_group"] = frame.groupby("root")["crm_id"].transform("min")
        return frame.sort_values(["duplicate_group", "crm_id"])[DUPLICATE_COLUMNS].reset_index(drop=True)

    def _labels(self, bits: np.ndarray) -> np.ndarray:
        masks, which = np.unique(bits, return_inverse=True)
        names = np.array([" | ".join(key.label for k, key in enumerate(self.keys) if int(m) >> k & 1) or None
                          for m in masks], dtype=object)
        return names[which] if len(bits) else np.empty(0, dtype=object)


def _text(values: np.ndarray) -> pd.Series:
    # Built from Python strings as object: letting pandas infer its string dtype copies a million
    # values one by one.
    return pd.Series(values, dtype=object)


def normalise(con: duckdb.DuckDBPyConnection, side: str, frame: pd.DataFrame, slots: list[Slot], who: str,
              fallbacks: dict[str, str], company_links: pd.Series | None) -> None:
    """Create ``{side}_norm(row, n0, n1, …)``: the slots of ``frame`` normalised (``row``: the
    frame's row position)."""
    fields = pa.table({"row": np.arange(len(frame)), **{
        f"f{i}": _strings(_column(frame, slot.field, who, fallbacks)) for i, slot in enumerate(slots)}})
    con.register(f"{side}_fields", fields)
    # A company id read through the company matches: the CRM company its company matched.
    links = company_links if company_links is not None else pd.Series(dtype=object)
    con.register(f"{side}_links", pa.table({"enginy_id": _strings(pd.Series(links.index.astype(str), dtype=object)),
                                            "crm_id": _strings(pd.Series(links.to_numpy(), dtype=object))}))
    kinds = dict.fromkeys(slot.normalize for slot in slots
                          if not slot.through_company and not NORMALISERS[slot.normalize].per_value)
    for kind in kinds:
        values = " UNION ALL ".join(f"SELECT f{i} AS raw FROM {side}_fields" for i, slot in enumerate(slots)
                                    if slot.normalize == kind and not slot.through_company)
        create_mapping(con, f"{side}_map_{kind}", values, kind)
    columns, joins = ["s.row"], []
    for i, slot in enumerate(slots):
        if slot.through_company:
            columns.append(f"m{i}.crm_id AS n{i}")
            joins.append(f"LEFT JOIN {side}_links m{i} ON m{i}.enginy_id = s.f{i}")
        elif slot.normalize in kinds:
            columns.append(f"m{i}.norm AS n{i}")
            joins.append(f"LEFT JOIN {side}_map_{slot.normalize} m{i} ON m{i}.raw = s.f{i}")
        else:
            columns.append(f"{sql_expression(slot.normalize, f's.f{i}')} AS n{i}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {side}_norm AS SELECT {', '.join(columns)} "
                f"FROM {side}_fields s {' '.join(joins)}")
    # Only the normal forms are kept: the raw values and their mappings would double the memory.
    for kind in kinds:
        con.execute(f"DROP TABLE {side}_map_{kind}")
    con.unregister(f"{side}_fields")
    con.unregister(f"{side}_links")


def components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected components of the graph with edges a–b: each node's smallest reachable node."""
    parent = np.arange(n)
    while True:
        low = np.minimum(parent[a], parent[b])
        np.minimum.at(parent, parent[a], low)
        np.minimum.at(parent, parent[b], low)
        while not np.array_equal(jumped := parent[parent], parent):
            parent = jumped
        if np.array_equal(parent[a], parent[b]):
            return parent


def match(rule: Rule, enginy: pd.DataFrame, crm: pd.DataFrame, company_links: pd.Series | None = None) -> pd.DataFrame:
    """Outcome of every Enginy record against ``crm`` (see :meth:`CrmIndex.match`)."""
    return CrmIndex(rule, crm).match(enginy, company_links)


def company_links(company_matches: pd.DataFrame) -> pd.Series:
    """Enginy company id → CRM company id, for the companies matched to exactly one record."""
    matched = company_matches[company_matches["outcome"] == MATCHED]
    return pd.Series(matched["crm_id"].to_numpy(), index=matched["enginy_id"].to_numpy())


def fill_rates(rule: Rule, enginy: pd.DataFrame, crm: pd.DataFrame,
               company_links: pd.Series | None = None) -> pd.DataFrame:
    """Identifier fill rates of both sides under ``rule`` (see :meth:`CrmIndex.fill_rates`)."""
    index = CrmIndex(rule, crm)
    normalise(index.con, "enginy", enginy.reset_index(drop=True), index.enginy_slots, "Enginy", ENGINY_FALLBACKS,
              company_links)
    return index.fill_rates()
