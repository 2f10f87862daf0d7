"""What the next push would do, record by record, as text: the `dry-run` command prints it and
the nightly reconciliation writes it whole to a file.

The text is made by DuckDB from the batches' columns as they are stored (the diff as JSON text):
a million-row batch's dry run is a gigabyte of text, which Python dicts and f-strings took a
minute and gigabytes of memory to make; DuckDB builds it column-wise and writes the file
without holding it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

ACTIONS = ("create", "update", "skip", "reject")
# The batch columns the dry run shows (a reader can load just these).
DRY_RUN_COLUMNS = ("enginy_id", "action", "crm_id", "diff", "reason")

_DIFF_SHAPE = '[{"field": "VARCHAR", "crm_value": "JSON", "new_value": "JSON", "rule": "VARCHAR"}]'
# A JSON value as Python prints it (repr), as the dry run always showed values: 'text', None,
# True, 3.5 — strings quoted, their backslashes and line breaks escaped, so each value stays on
# its line.
_SHOWN_VALUE = r"""
CREATE MACRO escaped(s) AS replace(replace(replace(s, '\', '\\'), chr(10), '\n'), chr(13), '\r');
CREATE MACRO shown(v) AS CASE
    WHEN v IS NULL OR json_type(v) = 'NULL' THEN 'None'
    WHEN json_type(v) = 'VARCHAR' AND contains(v ->> '$', '''') AND NOT contains(v ->> '$', '"')
        THEN '"' || escaped(v ->> '$') || '"'
    WHEN json_type(v) = 'VARCHAR' THEN '''' || replace(escaped(v ->> '$'), '''', '\''') || ''''
    WHEN json_type(v) = 'BOOLEAN' THEN CASE WHEN v::BOOLEAN THEN 'True' ELSE 'False' END
    ELSE CAST(v AS VARCHAR) END
"""


def _batch_sql(index: int, name: str, limit: int | None, show_skips: bool) -> str:
    """The lines of one batch in the order they are shown; a write's text holds its record line
    and its field lines. No ORDER BY: DuckDB keeps a single table's row order through WHERE,
    LIMIT, SELECT and UNION ALL, so the text streams out in batch order without a sort of a
    million rows of text (which cost gigabytes)."""
    relation = f"batch_{index}"
    quoted_name = name.replace("'", "''")
    counts = " || ', ' || ".join(f"count_if(action = '{a}') || ' {a}'" for a in ACTIONS)
    first = "" if limit is None else f" LIMIT {int(limit)}"
    row_start = "'  ' || rpad(upper(action), 7, ' ') || ' Enginy ' || coalesce(enginy_id, '')"
    blank = "" if index == 0 else "SELECT '' UNION ALL\n"
    parts = f"""{blank}(SELECT '{quoted_name}: ' || {counts} FROM {relation})
    UNION ALL
    (SELECT {row_start} || ' → '
        || CASE WHEN action = 'update' THEN 'CRM ' || coalesce(crm_id, '') ELSE 'new record' END
        || coalesce(array_to_string(list_transform(from_json(diff, '{_DIFF_SHAPE}'),
               lambda c: chr(10) || '      ' || c.field || ': ' || shown(c.crm_value) || ' → ' || shown(c.new_value)
                    || '  (' || coalesce(c.rule, '') || ')'), ''), '')
    FROM {relation} WHERE action IN ('create', 'update'){first})"""
    if limit is not None:
        parts += f"""
    UNION ALL
    (SELECT '  … ' || (count(*) - {int(limit)}) || ' more writes (--limit)' FROM {relation}
    WHERE action IN ('create', 'update') HAVING count(*) > {int(limit)})"""
    if show_skips:
        parts += f"""
    UNION ALL
    (SELECT {row_start} || ': ' || coalesce(reason, '') FROM {relation} WHERE action IN ('skip', 'reject'){first})"""
    return parts


def _text_columns(batch: pd.DataFrame | pa.Table) -> pa.Table:
    """The dry run's columns of a batch as Arrow text, whatever type an empty or all-null column
    was read back as; a column the batch lacks is all null. Arrow, so DuckDB scans it in place."""
    table = batch if isinstance(batch, pa.Table) else pa.Table.from_pandas(batch, preserve_index=False)
    return pa.table({column: table[column].cast(pa.string()) if column in table.column_names
                     else pa.nulls(len(table), pa.string()) for column in DRY_RUN_COLUMNS})


def _connection(batches: Mapping[str, pd.DataFrame | pa.Table]) -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect()
    conn.execute(_SHOWN_VALUE)
    for index, batch in enumerate(batches.values()):
        conn.register(f"batch_{index}", _text_columns(batch))
    return conn


def _lines_sql(batches: Mapping[str, object], limit: int | None, show_skips: bool) -> str:
    return "\nUNION ALL\n".join(_batch_sql(i, name, limit, show_skips) for i, name in enumerate(batches))


def action_counts(batches: Mapping[str, pd.DataFrame | pa.Table]) -> pd.DataFrame:
    """Rows per batch and action (batch, action, rows), every action of every batch listed."""
    if not batches:
        return pd.DataFrame({"batch": pd.Series(dtype=str), "action": pd.Series(dtype=str),
                             "rows": pd.Series(dtype="int64")})
    with _connection(batches) as conn:
        per_batch = [conn.execute(f"SELECT {', '.join(f'count_if(action = {a!r})' for a in ACTIONS)} "
                                  f"FROM batch_{i}").fetchone() for i in range(len(batches))]
    return pd.DataFrame([{"batch": name, "action": action, "rows": int(rows)}
                         for name, counts in zip(batches, per_batch) for action, rows in zip(ACTIONS, counts)])


def render_dry_run(batches: Mapping[str, pd.DataFrame | pa.Table], limit: int = 50,
                   show_skips: bool = True) -> list[str]:
    """Per batch: its counts, each of its first ``limit`` writes with its field diff (CRM value →
    new value), then its first ``limit`` skips and rejections with their reasons. ``batches``
    hold the stored columns (frames or Arrow tables), the diff as JSON text."""
    if not batches:
        return []
    with _connection(batches) as conn:
        texts = [row[0] for row in conn.execute(_lines_sql(batches, limit, show_skips)).fetchall()]
    return [line for text in texts for line in text.split("\n")]


def write_dry_run(batches: Mapping[str, pd.DataFrame | pa.Table], path: Path) -> None:
    """Every write, skip and rejection of every batch to ``path``, as ``render_dry_run`` shows them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not batches:
        path.write_text("", encoding="utf-8")
        return
    with _connection(batches) as conn:
        # Text as it is: no quoting, and a separator no line holds (there is one column).
        target = str(path).replace("'", "''")
        conn.execute(f"COPY ({_lines_sql(batches, None, True)}) TO '{target}' "
                     "(FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\x1f')")
