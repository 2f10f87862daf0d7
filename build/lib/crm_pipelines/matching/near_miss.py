"""The near-miss tier: for Enginy contacts the rule calls ``new``, the CRM record that is probably
the same person anyway ("Jon Smith / Acme" and "Jonathan Smith / ACME Corp"), with a score.

Near misses are reported for review and never applied: the configured rule alone decides what
an export writes. Candidates come from blocks (same company by name, same company through the
company matches, same first and last name), so no record is compared with the whole CRM; a
different LinkedIn profile on both sides rules a candidate out. Names are scored with rapidfuzz
once per distinct pair of spellings, which a million contacts repeat millions of times.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from rapidfuzz import fuzz, process
from rapidfuzz.distance import JaroWinkler

from crm_pipelines.matching.engine import NEW, CrmIndex, Slot

FIRST = (Slot("first_name", "person_name"), Slot("first_name", "person_name"))
LAST = (Slot("last_name", "person_name"), Slot("last_name", "person_name"))
COMPANY = (Slot("company_name", "company_name"), Slot("company_name", "company_name"))
LINKEDIN = (Slot("linkedin_url", "linkedin"), Slot("linkedin_url", "linkedin"))
COMPANY_LINK = (Slot("company_id", "exact", through_company=True), Slot("account_id", "exact"))
FIELDS = (FIRST, LAST, COMPANY, LINKEDIN, COMPANY_LINK)
REQUIRED = (FIRST, LAST, COMPANY)  # LinkedIn and the company link are used where both sides have them
# The last name says most about a person; a first name is often shortened (Jon, Jonathan).
WEIGHTS = {"first_name": 0.3, "last_name": 0.4, "company": 0.3}
THRESHOLD = 0.9
# Below this, two company names are two companies: a namesake elsewhere is not a near miss.
SAME_COMPANY = 0.9
NEAR_MISS_COLUMNS = ["near_miss_crm_id", "near_miss_object", "near_miss_score", "near_miss_detail"]


def person_near_misses(index: CrmIndex, new_rows: np.ndarray, threshold: float = THRESHOLD) -> dict[str, np.ndarray]:
    """Best near miss per Enginy row in ``new_rows`` of the batch last matched by ``index``
    (built with ``also=`` FIELDS, or those of them both sides have); keys: e_row and
    NEAR_MISS_COLUMNS."""
    con = index.con
    present = {name: pair for name, pair in zip(("f", "l", "co", "li", "link"), FIELDS) if pair[1] in index.crm_slots}
    e = {name: index.column("enginy", pair[0]) for name, pair in present.items()}
    c = {name: index.column("crm", pair[1]) for name, pair in present.items()}
    con.register("new_rows", pa.table({"row": np.asarray(new_rows, dtype=np.int64)}))
    # Same first and last name alone is too wide a block (a common name recurs thousands of
    # times in a million contacts); the company's first three letters keep "Acme" with
    # "Acme Holdings" and drop everyone else of that name.
    blocks = [f"e.{e['co']} = c.{c['co']}",
              f"e.{e['f']} = c.{c['f']} AND e.{e['l']} = c.{c['l']} AND left(e.{e['co']}, 3) = left(c.{c['co']}, 3)"]
    same_company = f"coalesce(e.{e['co']} = c.{c['co']}, false)"
    if "link" in e:
        blocks.append(f"e.{e['link']} = c.{c['link']}")
        same_company += f" OR coalesce(e.{e['link']} = c.{c['link']}, false)"
    candidates = " UNION ".join(
        f"SELECT e.row AS e_row, c.row AS c_row FROM enginy_norm e JOIN new_rows USING (row) JOIN crm_norm c ON {b}"
        for b in blocks)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE near AS
        SELECT p.e_row, p.c_row, e.{e['f']} AS ef, c.{c['f']} AS cf, e.{e['l']} AS el, c.{c['l']} AS cl,
               e.{e['co']} AS eco, c.{c['co']} AS cco,
               {same_company} AS same_company
        FROM ({candidates}) p JOIN enginy_norm e ON e.row = p.e_row JOIN crm_norm c ON c.row = p.c_row
        WHERE {f"NOT coalesce(e.{e['li']} <> c.{c['li']}, false)" if "li" in e else "true"}""")
    _similarities(con, "first_sim", "SELECT DISTINCT ef AS a, cf AS b FROM near", JaroWinkler.normalized_similarity)
    _similarities(con, "last_sim", "SELECT DISTINCT el AS a, cl AS b FROM near", JaroWinkler.normalized_similarity)
    _similarities(con, "company_sim", "SELECT DISTINCT eco AS a, cco AS b FROM near WHERE NOT same_company",
                  fuzz.token_set_ratio, scale=100)
    w = WEIGHTS
    best = con.sql(f"""
        WITH scored AS (
            SELECT n.e_row, n.c_row, coalesce(f.s, 0) AS sf, coalesce(l.s, 0) AS sl,
                   CASE WHEN n.same_company THEN 1.0 WHEN co.s >= {SAME_COMPANY} THEN co.s ELSE 0 END AS sc
            FROM near n
            LEFT JOIN first_sim f ON f.a = n.ef AND f.b = n.cf
            LEFT JOIN last_sim l ON l.a = n.el AND l.b = n.cl
            LEFT JOIN company_sim co ON co.a = n.eco AND co.b = n.cco),
        ranked AS (
            SELECT s.*, r.crm_id, r.crm_object,
                   round({w['first_name']} * sf + {w['last_name']} * sl + {w['company']} * sc, 3) AS score
            FROM scored s JOIN crm_records r ON r.row = s.c_row)
        SELECT e_row, crm_id, crm_object, score,
               printf('first_name %.2f, last_name %.2f, company %.2f', sf, sl, sc) AS detail
        FROM ranked WHERE score >= {float(threshold)}
        QUALIFY row_number() OVER (PARTITION BY e_row ORDER BY score DESC, crm_id) = 1""").fetchnumpy()
    con.unregister("new_rows")
    return {"e_row": np.asarray(best["e_row"], dtype=np.int64),
            "near_miss_crm_id": np.asarray(best["crm_id"], dtype=object),
            "near_miss_object": np.asarray(best["crm_object"], dtype=object),
            "near_miss_score": np.asarray(best["score"], dtype=float),
            "near_miss_detail": np.asarray(best["detail"], dtype=object)}


def _similarities(con: duckdb.DuckDBPyConnection, table: str, pairs_sql: str, scorer, scale: float = 1) -> None:
    """``table(a, b, s)``: the similarity of each distinct pair of spellings (s in 0‥1)."""
    pairs = con.sql(f"SELECT a, b FROM ({pairs_sql}) WHERE a IS NOT NULL AND b IS NOT NULL").to_arrow_table()
    a, b = pairs.column("a").to_pylist(), pairs.column("b").to_pylist()
    scores = process.cpdist(a, b, scorer=scorer, workers=-1, dtype=np.float64) / scale if a else np.empty(0)
    con.register(f"{table}_scores", pa.table({"a": pairs.column("a"), "b": pairs.column("b"), "s": scores}))
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM {table}_scores")
    con.unregister(f"{table}_scores")


def add_near_misses(index: CrmIndex, matches: pd.DataFrame, threshold: float = THRESHOLD) -> pd.DataFrame:
    """``matches`` (the batch ``index`` matched last) with the near-miss columns filled for the
    records the rule calls new."""
    found = person_near_misses(index, np.flatnonzero(matches["outcome"].to_numpy() == NEW), threshold)
    matches = matches.copy()
    for column in NEAR_MISS_COLUMNS:
        values = np.full(len(matches), np.nan if column == "near_miss_score" else None,
                         dtype=float if column == "near_miss_score" else object)
        values[found["e_row"]] = found[column]
        matches[column] = pd.Series(values, index=matches.index, dtype=values.dtype)
    return matches
