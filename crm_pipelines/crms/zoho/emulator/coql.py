"""COQL, Zoho CRM's query language, as far as the pipeline speaks it::

    select Last_Name, Email, Modified_Time from Contacts
    where (Modified_Time >= '2026-01-01T00:00:00+00:00' and Modified_Time < '2026-01-02T00:00:00+00:00')
    order by Modified_Time asc, id asc limit 2000, 2000

Conditions: ``= != > >= < <=``, ``[not] like '%x%'``, ``[not] in (…)``, ``is [not] null``, joined by
``and``/``or`` with parentheses. A where clause is required, as in Zoho; ``limit [offset,] count``
or ``limit count offset n``. Zoho's limits: at most 2,000 rows a query, and no row past the
10,000th (``offset + count``) — a caller walks further by narrowing the where clause.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

import pandas as pd

MAX_ROWS = 2000
MAX_REACH = 10_000
MAX_CONDITIONS = 25
Row = dict[str, Any]


class CoqlError(ValueError):
    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.details = code, details or {}


@dataclass
class Query:
    fields: list[str]
    module: str
    where: Callable[[Row], bool]
    order: list[tuple[str, bool]]  # (field, descending)
    offset: int
    count: int
    names: set[str]  # every field the query mentions, for checking against the module


_TOKEN = re.compile(r"\s*(?:(?P<string>'(?:[^'\\]|\\.|'')*')|(?P<number>-?\d+(?:\.\d+)?)"
                    r"|(?P<op>!=|>=|<=|=|>|<)|(?P<punct>[(),])|(?P<word>[A-Za-z_][A-Za-z0-9_.]*))")


def _tokens(text: str) -> list[tuple[str, str]]:
    out, at = [], 0
    text = text.strip().rstrip(";")
    while at < len(text):
        match = _TOKEN.match(text, at)
        if not match or match.end() == at:
            raise CoqlError("SYNTAX_ERROR", f"error occured while parsing the query near {text[at:at + 20]!r}",
                            {"near": text[at:at + 20]})
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        at = match.end()
    return out


_ESCAPED = re.compile(r"\\(.)|''", re.DOTALL)


def _value(kind: str, text: str) -> Any:
    if kind == "string":
        # A backslash escapes the character after it (\' and \\); a doubled quote is a quote too.
        return _ESCAPED.sub(lambda m: m.group(1) or "'", text[1:-1])
    if kind == "number":
        return float(text) if "." in text else int(text)
    if kind == "word" and text.lower() in ("true", "false"):
        return text.lower() == "true"
    raise CoqlError("SYNTAX_ERROR", f"{text!r} is not a value", {"clause": "where"})


def _comparable(left: Any, right: Any) -> tuple[Any, Any]:
    """Zoho compares datetimes as times, whatever offset either side is written in."""
    if isinstance(left, datetime) and isinstance(right, str):
        try:
            stamp = pd.Timestamp(right)
        except ValueError:
            raise CoqlError("INVALID_QUERY", f"{right!r} is not a datetime", {"clause": "where"}) from None
        if stamp.tzinfo is None:
            raise CoqlError("INVALID_QUERY", f"{right!r} needs its offset (e.g. +00:00)", {"clause": "where"})
        return left, stamp.to_pydatetime()
    if isinstance(left, (int, float)) and isinstance(right, str):
        return str(left), right
    if isinstance(left, str) and isinstance(right, (int, float)):
        return left, str(right)
    return left, right


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b, "!=": lambda a, b: a != b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
}


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens, self.at, self.names, self.conditions = tokens, 0, set(), 0

    def peek(self, word: str | None = None) -> bool:
        if self.at >= len(self.tokens):
            return False
        kind, text = self.tokens[self.at]
        return word is None or text.lower() == word

    def take(self, word: str | None = None, kind: str | None = None) -> str:
        if self.at >= len(self.tokens):
            raise CoqlError("SYNTAX_ERROR", f"the query ends where {word or kind or 'more'} is expected")
        got_kind, text = self.tokens[self.at]
        if (word is not None and text.lower() != word) or (kind is not None and got_kind != kind):
            raise CoqlError("SYNTAX_ERROR", f"expected {word or kind} but found {text!r}", {"near": text})
        self.at += 1
        return text

    def field(self) -> str:
        name = self.take(kind="word")
        if "." in name:
            raise CoqlError("INVALID_QUERY", f"{name}: lookup fields are not supported by this sandbox")
        self.names.add(name)
        return name

    def literal(self) -> Any:
        if self.at >= len(self.tokens):
            raise CoqlError("SYNTAX_ERROR", "the query ends where a value is expected", {"clause": "where"})
        kind, text = self.tokens[self.at]
        self.at += 1
        return _value(kind, text)

    def condition(self) -> Callable[[Row], bool]:
        parts = [self.conjunction()]
        while self.peek("or"):
            self.take("or")
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda row: any(p(row) for p in parts))

    def conjunction(self) -> Callable[[Row], bool]:
        parts = [self.factor()]
        while self.peek("and"):
            self.take("and")
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else (lambda row: all(p(row) for p in parts))

    def factor(self) -> Callable[[Row], bool]:
        if self.peek("("):
            self.take("(")
            inner = self.condition()
            self.take(")")
            return inner
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise CoqlError("LIMIT_EXCEEDED", f"more than {MAX_CONDITIONS} criteria in the where clause",
                            {"limit": MAX_CONDITIONS, "by": "criteria"})
        name = self.field()
        if self.peek("is"):
            self.take("is")
            negate = self.peek("not") and bool(self.take("not"))
            self.take("null")
            return lambda row: (row.get(name) is None) != negate
        negate = self.peek("not") and bool(self.take("not"))
        if self.peek("in"):
            self.take("in")
            self.take("(")
            values = [self.literal()]
            while self.peek(","):
                self.take(",")
                values.append(self.literal())
            self.take(")")
            return lambda row: (row.get(name) is not None and any(
                _COMPARE["="](*_comparable(row.get(name), v)) for v in values)) != negate
        if self.peek("like"):
            self.take("like")
            pattern = _value("string", self.take(kind="string"))
            regex = re.compile("^" + ".*".join(re.escape(p) for p in pattern.split("%")) + "$", re.IGNORECASE)
            return lambda row: (row.get(name) is not None and bool(regex.match(str(row.get(name))))) != negate
        if negate:
            raise CoqlError("SYNTAX_ERROR", "not is allowed only before in and like")
        op = self.take(kind="op")
        value = self.literal()
        return lambda row: row.get(name) is not None and _COMPARE[op](*_comparable(row.get(name), value))


def parse(text: str) -> Query:
    p = _Parser(_tokens(text))
    p.take("select")
    fields = [p.field()]
    while p.peek(","):
        p.take(",")
        fields.append(p.field())
    p.take("from")
    module = p.take(kind="word")
    if not p.peek("where"):
        raise CoqlError("SYNTAX_ERROR", "a where clause is required", {"clause": "where"})
    p.take("where")
    where = p.condition()
    order: list[tuple[str, bool]] = []
    if p.peek("order"):
        p.take("order")
        p.take("by")
        while True:
            name = p.field()
            descending = False
            if p.peek("asc") or p.peek("desc"):
                descending = p.take().lower() == "desc"
            order.append((name, descending))
            if not p.peek(","):
                break
            p.take(",")
    offset, count = 0, 200
    if p.peek("limit"):
        p.take("limit")
        first = int(p.take(kind="number"))
        if p.peek(","):
            p.take(",")
            offset, count = first, int(p.take(kind="number"))
        else:
            count = first
            if p.peek("offset"):
                p.take("offset")
                offset = int(p.take(kind="number"))
    if p.at != len(p.tokens):
        raise CoqlError("SYNTAX_ERROR", f"unexpected {p.tokens[p.at][1]!r}", {"near": p.tokens[p.at][1]})
    if not 0 < count <= MAX_ROWS:
        raise CoqlError("LIMIT_EXCEEDED", f"limit must be between 1 and {MAX_ROWS}", {"limit": MAX_ROWS, "by": "limit"})
    if offset + count > MAX_REACH:
        raise CoqlError("LIMIT_EXCEEDED", f"offset and limit reach past the {MAX_REACH:,}th row; narrow the "
                                          "where clause instead", {"limit": MAX_REACH, "by": "offset"})
    return Query(fields, module, where, order, offset, count, p.names)


def run(query: Query, rows: list[Row]) -> tuple[list[Row], bool]:
    """The page the query asks for, and whether more rows follow it."""
    hits = [r for r in rows if query.where(r)]
    for name, descending in reversed(query.order):
        present = [r for r in hits if r.get(name) is not None]
        missing = [r for r in hits if r.get(name) is None]
        present.sort(key=lambda r: (int(r[name]) if name == "id" else r[name]), reverse=descending)
        hits = present + missing
    page = hits[query.offset:query.offset + query.count]
    return page, query.offset + query.count < len(hits)
