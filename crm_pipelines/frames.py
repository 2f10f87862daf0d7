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
