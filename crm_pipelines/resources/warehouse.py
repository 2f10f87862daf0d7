"""The warehouse: where every asset's table lives — an embedded DuckDB file or PostgreSQL.

One resource speaks to both, and one IO manager stores each asset's DataFrame as a table named
after the asset. Connections are short-lived: DuckDB allows one writing process per file, and
Dagster's multiprocess executor runs steps in separate processes, so a writer that finds the
file locked waits and retries instead of failing the run.

A DuckDB file is attached for each operation to one in-memory DuckDB kept by the process, and
detached after it (which frees the file for dbt and the other steps): starting a DuckDB database
costs 20 to 30 milliseconds, attaching a file to a running one about one millisecond, and a run
makes hundreds of these operations.
"""

import io
import os
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

import dagster as dg
import duckdb
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from pydantic import Field
from tenacity import retry, retry_if_exception, stop_after_delay, wait_random_exponential

from crm_pipelines.export.ledger import LEDGER_SQL_TYPES
from crm_pipelines.export.push import DUPLICATE_CODES
from crm_pipelines.frames import from_json, is_in, json_pointer, to_json

WAREHOUSE_URL_ENV = "CRM_PIPELINES_WAREHOUSE_URL"
WAREHOUSE_SCHEMA_ENV = "CRM_PIPELINES_WAREHOUSE_SCHEMA"
DEFAULT_WAREHOUSE_URL = "duckdb:///data/warehouse.duckdb"

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def sql_identifier(name: str) -> str:
    # Table and schema names come from asset keys and config, never from data; still, refuse
    # anything that is not a plain identifier rather than quote our way around it.
    if not _IDENTIFIER.match(name):
        raise ValueError(f"{name!r} is not a valid warehouse identifier (letters, digits, underscore)")
    return f'"{name}"'


def _locked(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


_ATTACHED = "warehouse"  # the attached file's catalog name while an operation runs
_process_duckdb: tuple[int, duckdb.DuckDBPyConnection] | None = None
# One operation at a time per process: they share the in-memory database and its one attachment.
_process_duckdb_lock = threading.RLock()


def _in_memory_duckdb() -> duckdb.DuckDBPyConnection:
    """This process's in-memory DuckDB; a forked child makes its own rather than share its parent's."""
    global _process_duckdb
    if _process_duckdb is None or _process_duckdb[0] != os.getpid():
        conn = duckdb.connect(":memory:")
        # Text columns stored with zstd rather than the dictionary-and-FSST DuckDB picks by itself:
        # a million-row export batch (its fields and diff as JSON) was written in 3 s instead of
        # 12 s, in less memory, to a file half the size, and is read back as fast.
        conn.execute("SET force_compression = 'zstd'")
        _process_duckdb = (os.getpid(), conn)
    return _process_duckdb[1]


@retry(retry=retry_if_exception(_locked), wait=wait_random_exponential(0.05, 2), stop=stop_after_delay(120),
       reraise=True)
def _attach(conn: duckdb.DuckDBPyConnection, path: Path) -> None:
    conn.execute(f"ATTACH $path AS {_ATTACHED}", {"path": str(path)})


def redact_url(url: str) -> str:
    """The URL with any password replaced, for logs and metadata."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


def _json_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Nested values (a record's ``raw`` CRM fields) are stored as JSON text."""
    nested = [c for c in frame.columns if frame[c].dtype == object and _holds_nested(frame[c])]
    if not nested:
        return frame
    frame = frame.copy(deep=False)  # copy-on-write: the caller's frame keeps its columns
    for column in nested:
        texts = [to_json(v) if isinstance(v, (dict, list)) else v for v in frame[column]]
        try:
            # As Arrow text, which pandas takes as it is: its own conversion of a column of a
            # million Python strings took seconds.
            frame[column] = pd.Series(pa.array(texts, pa.large_string(), from_pandas=True).to_pandas().array,
                                      index=frame.index)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # a value that is neither nested nor text
            frame[column] = texts
    return frame


def _as_arrow(frame: pd.DataFrame) -> pa.Table | pd.DataFrame:
    """The frame as Arrow for DuckDB to read (its text columns are Arrow already), or as it is
    where Arrow cannot type a column (numbers mixed with text, say): DuckDB reads that too."""
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return frame


def _holds_nested(column: pd.Series) -> bool:
    # A column of text or numbers is told in one pass of pandas' type inference.
    if pd.api.types.infer_dtype(column, skipna=True) not in ("mixed", "mixed-integer", "unknown-array"):
        return False
    return any(isinstance(v, (dict, list)) for v in column)


def parse_json_columns(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """The named columns read back from their JSON text, where they are text (an object column
    even with no rows, as the batch's schema gate wants it)."""
    for column in columns:
        if column in frame and frame[column].dtype != "float64":
            frame[column] = pd.Series([from_json(v) for v in frame[column]], index=frame.index, dtype=object)
    return frame


def _dataframe(conn: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None) -> pd.DataFrame:
    """A DuckDB query's result as pandas. Text columns come through Arrow: DuckDB's own conversion
    makes a Python string of every value and pandas then copies them all into Arrow (most of the
    time of reading a million-row batch); Arrow hands pandas the text as it is. Every other column,
    and text with no value at all, is converted by DuckDB as before (nullable integers, None)."""
    table = conn.sql(sql, params=params or None).to_arrow_table()
    text = {i for i, f in enumerate(table.schema)
            if (pa.types.is_string(f.type) or pa.types.is_large_string(f.type) or pa.types.is_string_view(f.type))
            and table.column(i).null_count < table.num_rows}
    if not text:
        return conn.from_arrow(table).df()
    others = [i for i in range(table.num_columns) if i not in text]
    rest = conn.from_arrow(table.select(others)).df() if others else None
    frame = pd.DataFrame({i: table.column(i).to_pandas() if i in text else rest.iloc[:, others.index(i)]
                          for i in range(table.num_columns)})
    frame.columns = table.column_names
    return frame


def _copy(conn: sa.Connection, table: str, frame: pd.DataFrame) -> None:
    """The frame's rows into a PostgreSQL table through COPY, the fast way in."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False)
    buffer.seek(0)
    columns = ", ".join(sql_identifier(c) for c in frame.columns)
    conn.connection.cursor().copy_expert(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)", buffer)


class Keys(NamedTuple):
    """Rows wanted by key (Warehouse.rows_with_any_keys): those whose ``column`` — or, with
    ``json_field``, that field of the column's JSON text — is one of ``values``."""

    column: str
    values: list[str]
    json_field: str | None = None


class Warehouse(dg.ConfigurableResource):
    """Tables for snapshots, matches, rollups, batches and push results."""

    url: str = Field(DEFAULT_WAREHOUSE_URL, description=(
        "duckdb:///path/to/file.duckdb (default, embedded) or postgresql+psycopg2://user@host:port/db"))
    schema_name: str = Field("", description="schema for the tables; empty: main (DuckDB) or public (PostgreSQL)")

    @property
    def kind(self) -> str:
        return "duckdb" if self.url.startswith("duckdb:") else "postgresql"

    @property
    def schema(self) -> str:
        return self.schema_name or ("main" if self.kind == "duckdb" else "public")

    @property
    def duckdb_path(self) -> Path:
        return Path(self.url.removeprefix("duckdb:///"))

    def sqlalchemy_url(self) -> str:
        if self.kind != "postgresql":
            raise ValueError("only a PostgreSQL warehouse has a SQLAlchemy URL")
        # SQLAlchemy 2.x reads postgresql:// as psycopg2 today; be explicit so a future
        # default (psycopg 3) does not change the driver under dagster-postgres.
        return re.sub(r"^postgres(ql)?://", "postgresql+psycopg2://", self.url)

    def describe(self) -> str:
        return f"{redact_url(self.url)} (schema {self.schema})"

    @contextmanager
    def _duckdb(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The warehouse file attached as the default catalog for as long as the block runs."""
        self.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
        with _process_duckdb_lock:
            conn = _in_memory_duckdb()
            _attach(conn, self.duckdb_path)
            try:
                conn.execute(f"USE {_ATTACHED}")
                yield conn
            finally:
                conn.execute("USE memory")
                conn.execute(f"DETACH {_ATTACHED}")

    def table(self, name: str) -> str:
        """Table ``name`` in the warehouse's schema, quoted for SQL."""
        return f"{sql_identifier(self.schema)}.{sql_identifier(name)}"

    def engine(self) -> sa.Engine:
        return sa.create_engine(self.sqlalchemy_url())

    def write_table(self, name: str, frame: pd.DataFrame) -> int:
        """Replace table ``name`` with ``frame``; returns the row count."""
        frame = _json_columns(frame)
        table = self.table(name)
        if self.kind == "duckdb":
            with self._duckdb() as conn:
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {sql_identifier(self.schema)}")
                conn.register("incoming_frame", _as_arrow(frame))
                try:
                    conn.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM incoming_frame")
                finally:
                    conn.unregister("incoming_frame")
            return len(frame)
        engine = self.engine()
        try:
            with engine.begin() as conn:
                conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {sql_identifier(self.schema)}"))
                conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
                # pandas writes the DDL (column types) from the frame; COPY loads the rows fast.
                frame.head(0).to_sql(name, conn, schema=self.schema, index=False)
                _copy(conn, table, frame)
        finally:
            engine.dispose()
        return len(frame)

    def replace_rows(self, name: str, frame: pd.DataFrame, key: str) -> int:
        """Put ``frame``'s rows in place of the rows of table ``name`` with the same ``key`` and add
        the others, in one transaction: a run that changed a thousand records writes a thousand
        rows, not the million it did not change. The table's rows after it are returned.

        A table not there yet, or whose columns are not the frame's (a column added since it was
        written), is written whole with its other rows kept."""
        frame = _json_columns(frame)
        table = self.table(name)
        held = self._column_names(table) if name in self.table_names() else []
        if set(held) != set(frame.columns):
            kept = self.read_table(name) if held else frame.head(0)
            kept = kept[~is_in(kept[key].astype(str), frame[key].astype(str))] if len(kept) else kept
            return self.write_table(name, pd.concat([kept, frame], ignore_index=True) if len(kept) else frame)
        columns = ", ".join(sql_identifier(c) for c in frame.columns)
        # Keys compared as text: the same record's id may come back from pandas as another type.
        same_key = (f"CAST({sql_identifier(key)} AS VARCHAR) IN "
                    f"(SELECT CAST({sql_identifier(key)} AS VARCHAR) FROM incoming_rows)")
        count = f"SELECT count(*) FROM {table}"
        if self.kind == "duckdb":
            with self._duckdb() as conn:
                conn.register("incoming_rows", frame)
                conn.execute("BEGIN TRANSACTION")
                try:
                    conn.execute(f"DELETE FROM {table} WHERE {same_key}")
                    # By name and cast to the table's types: a column all empty in these rows
                    # reaches DuckDB as another type than the table's.
                    conn.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM incoming_rows")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                finally:
                    conn.unregister("incoming_rows")
                conn.execute("COMMIT")
                return int(conn.execute(count).fetchall()[0][0])
        engine = self.engine()
        try:
            with engine.begin() as conn:
                # A table of the frame's own types, as write_table would make it; PostgreSQL casts
                # each column to the table's type on the insert (a float column of whole numbers
                # into a bigint one).
                incoming = f"{name}__incoming_rows"
                conn.execute(sa.text(f"DROP TABLE IF EXISTS {self.table(incoming)}"))
                frame.head(0).to_sql(incoming, conn, schema=self.schema, index=False)
                _copy(conn, self.table(incoming), frame)
                statements = [f"DELETE FROM {table} WHERE {same_key}",
                              f"INSERT INTO {table} ({columns}) SELECT {columns} FROM incoming_rows",
                              "DROP TABLE incoming_rows"]
                for statement in statements:
                    conn.execute(sa.text(statement.replace("incoming_rows", self.table(incoming))))
                return int(conn.execute(sa.text(count)).scalar_one())
        finally:
            engine.dispose()

    def keep_keyed_table(self, name: str, columns: Mapping[str, str], key: str) -> None:
        """Make ``name`` a table of these columns (name → SQL type) with ``key`` unique, so rows
        can be upserted one chunk at a time. A table an earlier version wrote whole (no key, types
        guessed from its rows) is rebuilt once with its rows kept; a column added since (the ledger's
        bulk job id) is added, empty, to a table that lacks it."""
        table = self.table(name)
        index = sql_identifier(f"{name}_{key}_key")
        ddl = ", ".join(f"{sql_identifier(c)} {t}" for c, t in columns.items())
        exists = name in self.table_names()
        held = self._column_names(table) if exists else []
        cast = ", ".join(f"CAST({sql_identifier(c) if c in held else 'NULL'} AS {t})" for c, t in columns.items())
        if exists and self._has_index(name, f"{name}_{key}_key"):
            missing = [c for c in columns if c not in held]
            if missing:
                self._execute([f"ALTER TABLE {table} ADD COLUMN {sql_identifier(c)} {columns[c]}" for c in missing])
            return
        statements = [f"CREATE SCHEMA IF NOT EXISTS {sql_identifier(self.schema)}"]
        if exists:
            old = sql_identifier(f"{name}_unkeyed")
            statements += [f"ALTER TABLE {table} RENAME TO {old}", f"CREATE TABLE {table} ({ddl})",
                           f"INSERT INTO {table} SELECT {cast} FROM {sql_identifier(self.schema)}.{old}",
                           f"DROP TABLE {sql_identifier(self.schema)}.{old}"]
        else:
            statements.append(f"CREATE TABLE {table} ({ddl})")
        statements.append(f"CREATE UNIQUE INDEX {index} ON {table} ({sql_identifier(key)})")
        self._execute(statements)

    def upsert(self, name: str, rows: pd.DataFrame, key: str) -> int:
        """Insert ``rows`` into the keyed table ``name`` (see keep_keyed_table), replacing the rows
        whose key is already there: one statement, whatever the table's size."""
        if rows.empty:
            return 0
        rows = rows.drop_duplicates(key, keep="last")
        table = self.table(name)
        columns = ", ".join(sql_identifier(c) for c in rows.columns)
        changes = ", ".join(f"{sql_identifier(c)} = excluded.{sql_identifier(c)}" for c in rows.columns if c != key)
        conflict = f"ON CONFLICT ({sql_identifier(key)}) DO UPDATE SET {changes}"
        if self.kind == "duckdb":
            with self._duckdb() as conn:
                conn.register("incoming_rows", rows)
                conn.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM incoming_rows {conflict}")
                conn.unregister("incoming_rows")
            return len(rows)
        engine = self.engine()
        try:
            with engine.begin() as conn:
                conn.execute(sa.text(f"CREATE TEMP TABLE incoming_rows (LIKE {table}) ON COMMIT DROP"))
                _copy(conn, "incoming_rows", rows)
                conn.execute(sa.text(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM incoming_rows {conflict}"))
        finally:
            engine.dispose()
        return len(rows)

    def rows_with_keys(self, name: str, key: str, keys: list[str], json_field: str | None = None) -> pd.DataFrame:
        """The rows of table ``name`` whose ``key`` is one of ``keys``: one semi-join, so a run that
        touches a thousand keys reads a thousand rows, not the table converted to a DataFrame. With
        ``json_field``, ``key`` is a column of JSON text and the rows are those holding one of
        ``keys`` under that field (a CRM record's Enginy id among its raw fields)."""
        return self.rows_with_any_keys(name, Keys(key, keys, json_field))

    def rows_with_any_keys(self, name: str, *wanted: Keys) -> pd.DataFrame:
        """The rows of table ``name`` with any of the ``wanted`` keys (see rows_with_keys), each row
        once: read in one query, not a frame per kind of key put together after."""
        table = self.table(name)
        params: dict[str, str] = {}
        conditions, frames = [], {}
        for k, (key, keys, json_field) in enumerate(wanted):
            column = f"t.{sql_identifier(key)}"
            if json_field is not None:
                # The field's name is bound, not written into the SQL: any name a CRM gives a field
                # ("Enginy Id" in TribeCRM) is read.
                if self.kind == "duckdb":
                    params[f"field_{k}"] = json_pointer(json_field)
                    column = f"json_extract_string({column}, $field_{k})"
                else:
                    params[f"field_{k}"] = json_field
                    column = f"(CAST({column} AS json) ->> :field_{k})"
            frames[f"wanted_keys_{k}"] = pd.DataFrame(
                {"wanted_key": pd.Series(keys, dtype=object).astype(str)}).drop_duplicates()
            # Compared as text (the keys are): a table's integer ids match too.
            conditions.append(f"CAST({column} AS VARCHAR) IN (SELECT wanted_key FROM wanted_keys_{k})")
        select = f"SELECT t.* FROM {table} AS t WHERE {' OR '.join(conditions)}"
        if self.kind == "duckdb":
            with self._duckdb() as conn:
                for frame_name, frame in frames.items():
                    conn.register(frame_name, frame)
                try:
                    return _dataframe(conn, select, params)
                finally:
                    for frame_name in frames:
                        conn.unregister(frame_name)
        engine = self.engine()
        try:
            with engine.begin() as conn:
                for frame_name, frame in frames.items():
                    conn.execute(sa.text(f"CREATE TEMP TABLE {frame_name} (wanted_key VARCHAR) ON COMMIT DROP"))
                    _copy(conn, frame_name, frame)
                return pd.read_sql(sa.text(select), conn, params=params)
        finally:
            engine.dispose()

    def _has_index(self, table: str, index: str) -> bool:
        if self.kind == "duckdb":
            sql = "SELECT index_name FROM duckdb_indexes() WHERE schema_name = $schema AND table_name = $table"
        else:
            sql = "SELECT indexname AS index_name FROM pg_indexes WHERE schemaname = :schema AND tablename = :table"
        return index in self.query(sql, {"schema": self.schema, "table": table})["index_name"].tolist()

    def column_names(self, name: str) -> list[str]:
        """The columns of table ``name``."""
        return self._column_names(self.table(name))

    def _column_names(self, table: str) -> list[str]:
        return list(self.query(f"SELECT * FROM {table} LIMIT 0").columns)

    def _execute(self, statements: list[str]) -> None:
        """The statements in one transaction: a process killed halfway (while a ledger table is
        rebuilt with its key) leaves the table as it was, not renamed away."""
        if self.kind == "duckdb":
            with self._duckdb() as conn:
                conn.execute("BEGIN TRANSACTION")
                try:
                    for statement in statements:
                        conn.execute(statement)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            return
        engine = self.engine()
        try:
            with engine.begin() as conn:
                for statement in statements:
                    conn.execute(sa.text(statement))
        finally:
            engine.dispose()

    def read_table(self, name: str, columns: tuple[str, ...] | None = None) -> pd.DataFrame:
        """The table, or only ``columns`` of it: a step that reads a few columns of a million-row
        batch does not pay for converting the others."""
        select = self._select(name, columns)
        if self.kind == "duckdb":
            with self._duckdb() as conn:
                return _dataframe(conn, select)
        engine = self.engine()
        try:
            with engine.connect() as conn:
                return pd.read_sql(sa.text(select), conn)
        finally:
            engine.dispose()

    def _select(self, name: str, columns: tuple[str, ...] | None) -> str:
        return f"SELECT {', '.join(map(sql_identifier, columns)) if columns else '*'} FROM {self.table(name)}"

    def read_arrow(self, name: str, columns: tuple[str, ...]) -> pa.Table:
        """``columns`` of the table as Arrow: text stays in Arrow's buffers, without a Python
        object per value (a million-row batch's diffs are a gigabyte of text)."""
        if self.kind == "duckdb":
            with self._duckdb() as conn:
                return conn.sql(self._select(name, columns)).to_arrow_table()
        return pa.Table.from_pandas(self.read_table(name, columns), preserve_index=False)

    def query(self, sql: str, params: dict | None = None) -> pd.DataFrame:
        """Run a read-only query (bound parameters only) and return the result. Parameters are
        written ``$name``, DuckDB's way; for PostgreSQL they become SQLAlchemy's ``:name``."""
        if self.kind == "duckdb":
            with self._duckdb() as conn:
                return _dataframe(conn, sql, params)
        for name in params or {}:
            sql = re.sub(rf"\${re.escape(name)}\b", f":{name}", sql)
        engine = self.engine()
        try:
            with engine.connect() as conn:
                return pd.read_sql(sa.text(sql), conn, params=params)
        finally:
            engine.dispose()

    def table_names(self) -> list[str]:
        sql = ("SELECT table_name FROM information_schema.tables WHERE table_schema = $schema "
               "AND table_catalog = current_database() ORDER BY 1")
        return self.query(sql, {"schema": self.schema})["table_name"].tolist()


class LedgerTable:
    """A write ledger kept in the warehouse (export_ledger, activity_ledger): keyed by write id,
    read once when a push starts and upserted a chunk's rows at a time while it runs."""

    def __init__(self, warehouse: Warehouse, name: str) -> None:
        self.warehouse, self.name = warehouse, name
        warehouse.keep_keyed_table(name, LEDGER_SQL_TYPES, key="write_id")

    def read(self, write_ids: list[str] | None = None) -> pd.DataFrame:
        """The whole ledger, or only the entries of ``write_ids`` (the writes one batch intends)."""
        if write_ids is None:
            return self.warehouse.read_table(self.name)
        return self.warehouse.rows_with_keys(self.name, "write_id", write_ids)

    def status_counts(self) -> dict[str, int]:
        """Entries per status, over the whole ledger."""
        table = self.warehouse.table(self.name)
        counts = self.warehouse.query(f"SELECT status, count(*) AS n FROM {table} GROUP BY status")
        return {str(s): int(n) for s, n in zip(counts["status"], counts["n"])}

    def refused_as_duplicates(self, obj: str) -> pd.DataFrame:
        """The creates of ``obj`` the CRM refused as duplicates: enginy_id, error_code, error and
        updated_at, oldest first."""
        codes = ", ".join(f"'{code}'" for code in DUPLICATE_CODES)
        sql = (f"SELECT enginy_id, error_code, error, updated_at FROM {self.warehouse.table(self.name)} "
               f"WHERE object = $object AND action = 'create' AND status = 'rejected' AND error_code IN ({codes}) "
               "ORDER BY updated_at")
        return self.warehouse.query(sql, {"object": obj})

    def unanswered(self, obj: str) -> pd.DataFrame:
        """The entries of ``obj`` a push left without a final answer (sent: it was stopped; failed:
        retries spent) — few: a stopped push's chunk in flight, the writes a CRM kept refusing."""
        sql = (f"SELECT * FROM {self.warehouse.table(self.name)} "
               "WHERE object = $object AND status IN ('sent', 'failed')")
        return self.warehouse.query(sql, {"object": obj})

    def of_records(self, obj: str, enginy_ids: list[str]) -> pd.DataFrame:
        """Every entry of these Enginy records' writes to ``obj``, whichever batch they were of."""
        rows = self.warehouse.rows_with_keys(self.name, "enginy_id", enginy_ids)
        return rows[rows["object"].eq(obj)]

    def save(self, rows: pd.DataFrame) -> None:
        self.warehouse.upsert(self.name, rows, key="write_id")


# Output metadata: the column by which an output's rows replace the table's rows (the rest kept).
ROWS_REPLACED_BY = "rows_replaced_by"


class WarehouseIOManager(dg.ConfigurableIOManager):
    """Stores each asset's DataFrame as the warehouse table named after the asset."""

    warehouse: dg.ResourceDependency[Warehouse]

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        if obj is None:
            return
        name = context.asset_key.path[-1]
        # An asset that computed only some records' rows says by which key they replace the
        # table's (the metadata ROWS_REPLACED_BY): the others stay as they are.
        key = context.output_metadata.get(ROWS_REPLACED_BY)
        key = getattr(key, "value", key)
        rows = self.warehouse.replace_rows(name, obj, key) if key else self.warehouse.write_table(name, obj)
        context.add_output_metadata({
            "dagster/row_count": rows,
            "warehouse_table": dg.MetadataValue.text(f"{self.warehouse.schema}.{name}"),
        })

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        return self.warehouse.read_table(context.asset_key.path[-1])
