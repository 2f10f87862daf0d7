"""What the next push would do, record by record, as text: the `dry-run` command prints it and
the nightly reconciliation writes it whole to a file.

First a summary: when each batch was built, a warning when the CRM changed after that (a push, or
CRM changes the snapshot pulled since), each batch's counts and whether a push sends it. Then the
rows of the batches a push sends: rejections, updates, creates, then skips — the order of the
batch's diff preview, what will not go first.

The rows' text is made by DuckDB from the batches' columns as they are stored (the diff as JSON
text): a million-row batch's dry run is a gigabyte of text, which Python dicts and f-strings took
a minute and gigabytes of memory to make; DuckDB builds it column-wise and writes the file
without holding it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import NamedTuple, Protocol

import duckdb
import pandas as pd
import pyarrow as pa

from crm_pipelines.export.ledger import EXPORT_LEDGER
from crm_pipelines.export.push import pushed_batches

ACTIONS = ("create", "update", "skip", "reject")
# The order rows are listed in, as the batch's diff preview: what will not go, then what
# overwrites the CRM's data, then what is new; skips last (and only when asked for).
SECTIONS = ("reject", "update", "create", "skip")
PLURALS = {"reject": "rejections", "update": "updates", "create": "creates", "skip": "skips"}
BATCHES = ("company_export_batch", "contact_export_batch", "lead_export_batch")
# The CRM snapshots a batch is built from: a record in them changed after the batch is a change it missed.
SNAPSHOTS = ("crm_companies", "crm_contacts", "crm_leads")
# The batch columns the dry run shows (a reader can load just these).
DRY_RUN_COLUMNS = ("enginy_id", "action", "crm_id", "diff", "reason")
BUILT_AT = "built_at"
FRESH_BATCHES = ("For fresh batches run incremental_sync, then enginy_sync (Dagster UI → Jobs), "
                 "and this dry run again.")

_DIFF_SHAPE = '[{"field": "VARCHAR", "crm_value": "JSON", "new_value": "JSON", "rule": "VARCHAR"}]'
# A JSON value as the batch's diff preview shows it: "(empty)" for nothing or blank text, whole
# numbers without ".0", text quoted as Python prints it (repr: its backslashes and line breaks
# escaped, so each value stays on its line), True / False.
_SHOWN_VALUE = r"""
CREATE MACRO escaped(s) AS replace(replace(replace(s, '\', '\\'), chr(10), '\n'), chr(13), '\r');
CREATE MACRO blank(s) AS trim(s, ' ' || chr(9) || chr(10) || chr(11) || chr(12) || chr(13)) = '';
CREATE MACRO shown(v) AS CASE
    WHEN v IS NULL OR json_type(v) = 'NULL' THEN '(empty)'
    WHEN json_type(v) = 'VARCHAR' AND blank(v ->> '$') THEN '(empty)'
    WHEN json_type(v) = 'VARCHAR' AND contains(v ->> '$', '''') AND NOT contains(v ->> '$', '"')
        THEN '"' || escaped(v ->> '$') || '"'
    WHEN json_type(v) = 'VARCHAR' THEN '''' || replace(escaped(v ->> '$'), '''', '\''') || ''''
    WHEN json_type(v) = 'BOOLEAN' THEN CASE WHEN v::BOOLEAN THEN 'True' ELSE 'False' END
    WHEN json_type(v) = 'DOUBLE' AND abs(v::DOUBLE) < 1e38 AND v::DOUBLE = trunc(v::DOUBLE)
        THEN CAST(CAST(v AS DOUBLE) AS HUGEINT)::VARCHAR
    ELSE CAST(v AS VARCHAR) END;
CREATE MACRO crm_id_shown(s) AS CASE WHEN s IS NULL OR blank(s) OR s = 'nan' THEN '(empty)' ELSE s END;
"""
_RECORD = "'  ' || rpad(upper(action), 7, ' ') || ' Enginy ' || coalesce(enginy_id, '')"


def _field_lines(value: str) -> str:
    """The diff's field lines of a row, each ``field: value`` with the mapping option that decided it."""
    return (f"coalesce(array_to_string(list_transform(from_json(diff, '{_DIFF_SHAPE}'), lambda c: chr(10) "
            f"|| '      ' || c.field || ': ' || {value} "
            "|| CASE WHEN coalesce(c.rule, '') = '' THEN '' ELSE '  (' || c.rule || ')' END), ''), '')")


# A row's text: its record line, and a write's field lines (a create's values; an update's CRM
# value → new value).
_ROW = {"reject": f"{_RECORD} || ': ' || coalesce(reason, '')",
        "update": f"{_RECORD} || ' → CRM ' || crm_id_shown(crm_id) || "
                  + _field_lines("shown(c.crm_value) || ' → ' || shown(c.new_value)"),
        "create": f"{_RECORD} || ' → new record' || " + _field_lines("shown(c.new_value)"),
        "skip": f"{_RECORD} || ': ' || coalesce(reason, '')"}


class DryRun(NamedTuple):
    """What a dry run describes: the batches' rows and what is known of them."""

    batches: Mapping[str, pd.DataFrame | pa.Table]  # name -> the stored columns (DRY_RUN_COLUMNS)
    built_at: Mapping[str, datetime | None] = {}  # name -> when it was built; None: a batch from before the stamp
    not_pushed: Mapping[str, str] = {}  # name -> why a push does not send it
    warning: str = ""  # one line: the CRM changed since, or whether it did cannot be told

    @property
    def pushed(self) -> list[str]:
        return [name for name in self.batches if name not in self.not_pushed]


class Tables(Protocol):
    """The warehouse, as the dry run reads it."""

    def table_names(self) -> list[str]: ...
    def column_names(self, name: str) -> list[str]: ...
    def table(self, name: str) -> str: ...
    def read_arrow(self, name: str, columns: tuple[str, ...]) -> pa.Table: ...
    def query(self, sql: str) -> pd.DataFrame: ...


def read_dry_run(warehouse: Tables, as_leads: bool = False) -> DryRun:
    """The stored batches, when each was built, which a push launched with (or without) ``as_leads``
    sends, and whether the CRM changed after they were built: a push since (the export ledger's
    entries) or CRM records changed since (the snapshots' last_modified). A few aggregates: no
    table is read whole but the batches' shown columns."""
    held = warehouse.table_names()
    present = [name for name in BATCHES if name in held]
    batches = {name: warehouse.read_arrow(name, DRY_RUN_COLUMNS) for name in present}
    built_at = {name: _latest(warehouse, name, BUILT_AT) if BUILT_AT in warehouse.column_names(name) else None
                for name in present}
    sent = [table for _, table in pushed_batches(as_leads)]
    not_pushed = {name: _why_not_pushed(as_leads) for name in present if name not in sent}
    # An empty batch has no row to hold its time, nor anything a push would send.
    to_send = [name for name in present if name in sent and batches[name].num_rows]
    if any(built_at[name] is None for name in to_send):
        last_push = _latest(warehouse, EXPORT_LEDGER, "updated_at") if EXPORT_LEDGER in held else None
        return DryRun(batches, built_at, not_pushed, _unknown_age_warning(last_push))
    since = min((built_at[name] for name in to_send), default=None)
    changes = _crm_changes(warehouse, held, since) if since is not None else []
    warning = (f"WARNING: the CRM changed after these batches were built: {'; '.join(changes)}. {FRESH_BATCHES}"
               if changes else "")
    return DryRun(batches, built_at, not_pushed, warning)


def _why_not_pushed(as_leads: bool) -> str:
    if as_leads:
        return "launched with as_leads: true, a push sends the lead batch instead"
    return ("a push sends the contact batch; the lead batch instead only when crm_push_results is launched with "
            "as_leads: true (dry-run --as-leads shows that push)")


def _latest(warehouse: Tables, name: str, column: str) -> datetime | None:
    value = warehouse.query(f"SELECT max({column}) AS latest FROM {warehouse.table(name)}")["latest"].iloc[0]
    return None if pd.isna(value) else _utc(value)


def _utc(value: object) -> datetime:
    """A warehouse timestamp in UTC: DuckDB gives the session's time zone, PostgreSQL may give none."""
    moment = pd.Timestamp(value)
    return (moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")).to_pydatetime()


def _crm_changes(warehouse: Tables, held: list[str], since: datetime) -> list[str]:
    """What changed in the CRM after ``since``, each as a phrase: the push's writes recorded after
    it, and the latest CRM change the snapshots pulled that is later."""
    at = f"CAST('{since.isoformat()}' AS TIMESTAMP WITH TIME ZONE)"
    changes = []
    if EXPORT_LEDGER in held:
        writes, latest = _newer(warehouse, EXPORT_LEDGER, "updated_at", at)
        if writes:
            changes.append(f"a push recorded {_many(writes, 'write')} since, the last at {_stamp(latest)} "
                           f"({EXPORT_LEDGER})")
    for name in (name for name in SNAPSHOTS if name in held):
        records, latest = _newer(warehouse, name, "last_modified", at)
        if records:
            changes.append(f"{name} holds {_many(records, 'record')} changed since, the last at {_stamp(latest)}")
    return changes


def _newer(warehouse: Tables, table: str, column: str, at: str) -> tuple[int, datetime | None]:
    """How many rows of ``table`` have ``column`` after ``at`` (an SQL timestamp), and the latest."""
    found = warehouse.query(f"SELECT count(*) AS n, max({column}) AS latest "
                            f"FROM {warehouse.table(table)} WHERE {column} > {at}")
    count = int(found["n"].iloc[0])
    return count, (_utc(found["latest"].iloc[0]) if count else None)


def _many(n: int, thing: str) -> str:
    return f"{n:,} {thing}{'' if n == 1 else 's'}"


def _unknown_age_warning(last_push: datetime | None) -> str:
    pushed = f" (the last push recorded a write at {_stamp(last_push)})" if last_push is not None else ""
    return (f"WARNING: these batches do not say when they were built (they were made before batches were "
            f"stamped), so whether the CRM changed since cannot be told{pushed}. {FRESH_BATCHES}")


def _stamp(moment: datetime | None) -> str:
    return "at an unknown time" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def _text_columns(batch: pd.DataFrame | pa.Table) -> pa.Table:
    """The dry run's columns of a batch as Arrow text, whatever type an empty or all-null column
    was read back as; a column the batch lacks is all null. Arrow, so DuckDB scans it in place."""
    table = batch if isinstance(batch, pa.Table) else pa.Table.from_pandas(batch, preserve_index=False)
    return pa.table({column: table[column].cast(pa.string()) if column in table.column_names
                     else pa.nulls(len(table), pa.string()) for column in DRY_RUN_COLUMNS})


def _connection(dry_run: DryRun) -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect()
    conn.execute(_SHOWN_VALUE)
    for index, batch in enumerate(dry_run.batches.values()):
        conn.register(f"batch_{index}", _text_columns(batch))
    return conn


def action_counts(dry_run: DryRun) -> pd.DataFrame:
    """Rows per batch and action (batch, action, rows), every action of every batch listed."""
    if not dry_run.batches:
        return pd.DataFrame({"batch": pd.Series(dtype=str), "action": pd.Series(dtype=str),
                             "rows": pd.Series(dtype="int64")})
    with _connection(dry_run) as conn:
        return _counts(conn, dry_run)


def _counts(conn: duckdb.DuckDBPyConnection, dry_run: DryRun) -> pd.DataFrame:
    # count(*) FILTER, not count_if: that is NULL over an empty batch.
    per_batch = [conn.execute(f"SELECT {', '.join(f'count(*) FILTER (action = {a!r})' for a in ACTIONS)} "
                              f"FROM batch_{i}").fetchall()[0] for i in range(len(dry_run.batches))]
    return pd.DataFrame([{"batch": name, "action": action, "rows": int(rows)}
                         for name, counts in zip(dry_run.batches, per_batch) for action, rows in zip(ACTIONS, counts)])


def _summary_lines(dry_run: DryRun, counts: pd.DataFrame) -> list[str]:
    """The dry run's first lines: what it is, the warning (when there is one), then per batch its
    counts, when it was built, and whether a push sends it (and in which order) or why not."""
    per_batch = counts.pivot(index="batch", columns="action", values="rows")
    lines = ["Dry run: what a push of the stored export batches would do. Nothing is pushed."]
    if dry_run.warning:
        lines.append(dry_run.warning)
    pushed = dry_run.pushed
    for name in dry_run.batches:
        numbers = ", ".join(f"{int(per_batch.at[name, a]):,} {a}" for a in ACTIONS)
        built = dry_run.built_at.get(name)
        when = "empty" if built is None and not per_batch.loc[name].sum() else f"built {_stamp(built)}"
        if name in pushed:
            sent = "pushed first" if name == pushed[0] else f"pushed after {pushed[pushed.index(name) - 1]}"
        else:
            sent = f"NOT PUSHED: {dry_run.not_pushed[name]}"
        lines.append(f"{name}: {numbers} — {when}; {sent}")
    return lines


def _batch_sql(index: int, name: str, limit: int | None, show_skips: bool) -> str:
    """The lines of one batch a push sends, section by section; a write's text holds its record
    line and its field lines. No ORDER BY: DuckDB keeps a single table's row order through WHERE,
    LIMIT, SELECT and UNION ALL, so the text streams out in batch order without a sort of a
    million rows of text (which cost gigabytes)."""
    relation = f"batch_{index}"
    quoted_name = name.replace("'", "''")
    sections = SECTIONS if show_skips else SECTIONS[:-1]
    listed = ", ".join(f"'{action}'" for action in sections)
    parts = ["SELECT ''", f"SELECT '{quoted_name}, as a push sends it:'",
             f"(SELECT '  (no row to list)' FROM {relation} WHERE action IN ({listed}) HAVING count(*) = 0)"]
    for action in sections:
        first = "" if limit is None else f" LIMIT {int(limit)}"
        parts.append(f"(SELECT {_ROW[action]} FROM {relation} WHERE action = '{action}'{first})")
        if limit is not None:
            parts.append(f"(SELECT '  … and ' || format('{{:,}}', count(*) - {int(limit)}) || ' more of the ' "
                         f"|| format('{{:,}}', count(*)) || ' {PLURALS[action]} (--limit)' FROM {relation} "
                         f"WHERE action = '{action}' HAVING count(*) > {int(limit)})")
    return "\nUNION ALL\n".join(parts)


def _lines_sql(dry_run: DryRun, limit: int | None, show_skips: bool) -> str:
    """The summary (registered as the table ``summary``), then the rows of each batch a push sends."""
    batches = ["SELECT line FROM summary"] + [_batch_sql(i, name, limit, show_skips)
                                              for i, name in enumerate(dry_run.batches) if name in dry_run.pushed]
    return "\nUNION ALL\n".join(batches)


def _with_summary(conn: duckdb.DuckDBPyConnection, dry_run: DryRun) -> list[str]:
    summary = _summary_lines(dry_run, _counts(conn, dry_run))
    conn.register("summary", pa.table({"line": pa.array(summary, pa.string())}))
    return summary


def render_dry_run(dry_run: DryRun, limit: int | None = 20, show_skips: bool = True) -> list[str]:
    """The summary, then per batch a push sends its first ``limit`` rejections, updates (per field
    the CRM value → the new value), creates (their values) and, with ``show_skips``, skips, each
    with "… and N more" when there are more; every row with ``limit`` None."""
    if not dry_run.batches:
        return []
    with _connection(dry_run) as conn:
        _with_summary(conn, dry_run)
        texts = [row[0] for row in conn.execute(_lines_sql(dry_run, limit, show_skips)).fetchall()]
    return [line for text in texts for line in text.split("\n")]


def write_dry_run(dry_run: DryRun, path: Path) -> list[str]:
    """The summary and every row of every batch a push sends to ``path``, as ``render_dry_run``
    shows them; returns the summary."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not dry_run.batches:
        path.write_text("", encoding="utf-8")
        return []
    with _connection(dry_run) as conn:
        summary = _with_summary(conn, dry_run)
        # Text as it is: no quoting, and a separator no line holds (there is one column).
        target = str(path).replace("'", "''")
        conn.execute(f"COPY ({_lines_sql(dry_run, None, True)}) TO '{target}' "
                     "(FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\x1f')")
    return summary
