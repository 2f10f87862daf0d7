"""What the next push would do, record by record, as text: the `dry-run` command prints it and
the nightly reconciliation writes it whole to a file.

The text is made by DuckDB from the batches' columns as they are stored (the diff as JSON text):
a million-row batch's dry run is a gigabyte of text, which Python dicts and f-strings took a
minute and gigabytes of memory to make; DuckDB builds it column-wise and writes the file
without holding it."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

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
    """The lines of one batch as (batch, part, position, text) rows; a write's text holds its
    record line and its field lines."""
    relation = f"batch_{index}"
    quoted_name = name.replace("'", "''")
    counts = " || ', ' || ".join(f"count_if(action = '{a}') || ' {a}'" for a in ACTIONS)
    within = "" if limit is None else f"WHERE rank <= {int(limit)}"

    def first(actions: str) -> str:
        """The rows of these actions in batch order, numbered, the first ``limit`` of them."""
        return (f"(SELECT *, row_number() OVER (ORDER BY position) AS rank FROM {relation} "
                f"WHERE action IN ({actions})) {within}")

    row_start = "'  ' || rpad(upper(action), 7, ' ') || ' Enginy ' || coalesce(enginy_id, '')"
    blank = "" if index == 0 else f"SELECT {index}, 0, 0, '' UNION ALL\n"
    parts = f"""{blank}SELECT {index}, 1, 0, '{quoted_name}: ' || {counts} FROM {relation}
    UNION ALL
    SELECT {index}, 2, rank, {row_start} || ' → '
        || CASE WHEN action = 'update' THEN 'CRM ' || coalesce(crm_id, '') ELSE 'new record' END
        || coalesce(array_to_string(list_transform(from_json(diff, '{_DIFF_SHAPE}'),
               lambda c: chr(10) || '      ' || c.field || ': ' || shown(c.crm_value) || ' → ' || shown(c.new_value)
                    || '  (' || coalesce(c.rule, '') || ')'), ''), '')
    FROM {first("'create', 'update'")}"""
    if limit is not None:
        parts += f"""
    UNION ALL
    SELECT {index}, 3, 0, '  … ' || (count(*) - {int(limit)}) || ' more writes (--limit)' FROM {relation}
    WHERE action IN ('create', 'update') HAVING count(*) > {int(limit)}"""
    if show_skips:
        parts += f"""
    UNION ALL
    SELECT {index}, 4, rank, {row_start} || ': ' || coalesce(reason, '')
    FROM {first("'skip', 'reject'")}"""
    return parts


def _connection(batches: dict[str, pd.DataFrame]) -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect()
    conn.execute(_SHOWN_VALUE)
    for index, frame in enumerate(batches.values()):
        frame = frame.reindex(columns=list(DRY_RUN_COLUMNS))
        # As text, whatever type an empty or all-null column was read back as.
        stored = pd.DataFrame({column: frame[column].astype("string") for column in DRY_RUN_COLUMNS})
        stored["position"] = np.arange(len(stored))
        conn.register(f"batch_{index}", stored)
    return conn


def _lines_sql(batches: dict[str, pd.DataFrame], limit: int | None, show_skips: bool) -> str:
    parts = [_batch_sql(i, name, limit, show_skips) for i, name in enumerate(batches)]
    return ("SELECT text FROM (" + "\nUNION ALL\n".join(parts) + ") AS lines(batch, part, position, text) "
            "ORDER BY batch, part, position")


def render_dry_run(batches: dict[str, pd.DataFrame], limit: int = 50, show_skips: bool = True) -> list[str]:
    """Per batch: its counts, each of its first ``limit`` writes with its field diff (CRM value →
    new value), then its first ``limit`` skips and rejections with their reasons. ``batches``
    hold the stored columns, the diff as JSON text."""
    if not batches:
        return []
    with _connection(batches) as conn:
        texts = [row[0] for row in conn.execute(_lines_sql(batches, limit, show_skips)).fetchall()]
    return [line for text in texts for line in text.split("\n")]


def write_dry_run(batches: dict[str, pd.DataFrame], path: Path) -> None:
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
