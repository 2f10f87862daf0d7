"""Column operations pandas is slow at for the warehouse's text columns, and the JSON text the
warehouse keeps nested values as.

Tables read from DuckDB come back with pandas 3's Arrow-backed ``str`` columns. Their ``isin``
makes a Python object of every candidate value before Arrow compares anything: a million
candidates cost about five seconds, where Arrow's own ``is_in`` over the same columns takes a
quarter of a second. Membership between two tables' ids is everywhere in a sync, so it goes
through here.
"""

from __future__ import annotations

from typing import Any, Iterable

import duckdb
import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def is_in(column: pd.Series, values: Iterable[object]) -> pd.Series:
    """``column.isin(values)``, with the same answer (a missing value is in ``values`` when one of
    them is missing), computed by Arrow when ``column`` is Arrow-backed text."""
    dtype = column.dtype
    if not (isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"):
        return column.isin(values)
    if isinstance(values, (set, frozenset, dict)) or not hasattr(values, "__len__"):
        values = list(values)
    try:
        candidates = pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return column.isin(values)  # not all text: pandas compares values of any type
    found = pc.is_in(pa.array(column.array), value_set=candidates, skip_nulls=False)
    return pd.Series(found.to_numpy(zero_copy_only=False).astype(bool), index=column.index, dtype=bool)


def lookup(keys: Iterable[object], values: pd.Series) -> pd.Series:
    """``keys`` -> ``values``, paired as ``dict(zip(keys, values))`` pairs them (a repeated key
    keeps its last value), as a Series to ``map`` or ``reindex`` by: no dict of a million entries,
    and the values keep their dtype."""
    table = values.set_axis(pd.Index(keys))
    return table[~table.index.duplicated(keep="last")]


def json_pointer(field: str) -> str:
    """The JSON pointer to a record's top-level ``field``, whatever its name holds (a space,
    ``/``, ``~``, quotes): how DuckDB's JSON functions are told which field to read."""
    return "/" + field.replace("~", "~0").replace("/", "~1")


def to_json(value: Any) -> str:
    """The JSON text the warehouse stores a nested value (a dict, a list) as."""
    # orjson: several times faster than json over a million-row batch's fields and diffs;
    # numpy scalars as numbers, anything else it does not know as its text, as json's default=str.
    return orjson.dumps(value, default=str, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS).decode()


def from_json(value: Any) -> Any:
    """A value the warehouse stored as JSON text, parsed; anything else as it is."""
    # Most cells of a batch's dict and list columns are empty: no parser call for those.
    if not isinstance(value, str) or not value:
        return value
    if value == "{}":
        return {}
    if value == "[]":
        return []
    return orjson.loads(value)


def json_keys(column: pd.Series) -> list[str]:
    """The keys of a column of JSON objects (text), in the order they first appear — the columns
    pandas makes of the same objects parsed — read by DuckDB, not an object per row."""
    table = pa.table({"position": np.arange(len(column)),
                      "raw": pa.array(column, type=pa.large_string(), from_pandas=True)})
    with duckdb.connect() as connection:
        connection.register("objects", table)
        shapes = connection.sql("SELECT json_keys(raw) AS keys, min(position) AS first FROM objects "
                                "WHERE raw IS NOT NULL GROUP BY ALL ORDER BY first").fetchall()
    return list(dict.fromkeys(key for keys, _ in shapes for key in keys))


class JsonFields:
    """The value of each of ``fields`` in each of a column of JSON objects — the text the warehouse
    keeps (a snapshot's CRM fields, a batch's fields), parsed by DuckDB once for all the fields — or
    of dicts already parsed; each value as a parsed dict holds it. At a million records, a dict of
    every field of every record was gigabytes, and seconds, for the few fields wanted."""

    # json_type's names, by the code each is kept as (0: no value).
    CODES = {kind: code for code, kind in enumerate(("VARCHAR", "BIGINT", "UBIGINT", "DOUBLE", "BOOLEAN", "ARRAY",
                                                     "OBJECT"), 1)}

    def __init__(self, raw: pd.Series, fields: list[str]) -> None:
        self.fields = list(dict.fromkeys(fields))
        self.dicts = None
        if not any(isinstance(v, str) for v in raw.head(100)):
            self.dicts = [r if isinstance(r, dict) else {} for r in raw]
            return
        kinds = " ".join(f"WHEN '{kind}' THEN {code}" for kind, code in self.CODES.items())
        connection = duckdb.connect()
        try:
            # The snapshot's own text, handed to DuckDB without a copy.
            connection.register("records", pa.table({"raw": pa.array(raw, type=pa.large_string(), from_pandas=True)}))
            # Every list holds one element per field, so the lists flatten to records × fields.
            table = connection.sql(
                f"SELECT list_transform(v, lambda x: coalesce(CASE json_type(x) {kinds} END, 0))::UTINYINT[] AS kind, "
                "list_transform(v, lambda x: x ->> '$') AS text "
                "FROM (SELECT json_extract(coalesce(raw, '{}'), $paths) AS v FROM records)",
                params={"paths": [json_pointer(f) for f in self.fields] or ["/"]}).to_arrow_table()
        finally:
            connection.close()
        self.kinds = table.column("kind").combine_chunks().flatten().to_numpy().reshape(-1, max(len(self.fields), 1))
        self.texts = table.column("text").combine_chunks().flatten()

    def on(self, field: str, records: np.ndarray) -> np.ndarray:
        """The values of ``field`` in ``records`` (positions in the column); None where it has none."""
        if self.dicts is not None:
            return pd.Series([self.dicts[i].get(field) for i in records.tolist()], dtype=object).to_numpy()
        j = self.fields.index(field)
        kind = self.kinds[records, j]
        text = self.texts.take(pa.array(records * len(self.fields) + j)).to_numpy(zero_copy_only=False)
        values = np.full(len(records), None, dtype=object)
        # Each kind as a parsed dict holds it: Python's str, int, float and bool, lists and dicts.
        text_rows = kind == self.CODES["VARCHAR"]
        values[text_rows] = text[text_rows]
        for name, number in (("BIGINT", np.int64), ("UBIGINT", np.uint64), ("DOUBLE", np.float64)):
            rows = kind == self.CODES[name]
            values[rows] = text[rows].astype(number).astype(object)
        booleans = kind == self.CODES["BOOLEAN"]
        values[booleans] = text[booleans] == "true"
        nested = np.isin(kind, [self.CODES["ARRAY"], self.CODES["OBJECT"]])
        if nested.any():
            values[nested] = pd.Series([orjson.loads(t) for t in text[nested]], dtype=object).to_numpy()
        return values


def field_values(raw: pd.Series, field: str) -> pd.Series:
    """Each record's ``field`` from its CRM fields (``raw``): parsed dicts, or the JSON text the
    warehouse keeps them as — then read by DuckDB's JSON functions, without making a dict of each
    of a million records."""
    if not any(isinstance(v, str) for v in raw.head(100)):
        return pd.Series([r.get(field) if isinstance(r, dict) else None for r in raw], index=raw.index, dtype=object)
    connection = duckdb.connect()
    try:
        # Through Arrow: the warehouse's text column goes in without a Python object per row.
        connection.register("snapshot", pa.table({"raw": pa.array(raw, type=pa.string(), from_pandas=True)}))
        values = connection.sql("SELECT json_extract_string(raw, $path) AS value FROM snapshot",
                                params={"path": json_pointer(field)}).to_arrow_table().column("value")
    finally:
        connection.close()
    return pd.Series(values.to_numpy(zero_copy_only=False), index=raw.index, dtype=object)
