"""A real SOQL subset: a lark grammar, a checked query plan, and its evaluation over the store.

Supported: SELECT field list (relationship paths such as Account.Name or Owner.Email) or
COUNT(); FROM one object; WHERE with = != <> < > <= >= IN, NOT IN, LIKE, AND / OR / NOT and
parentheses (AND and OR cannot be mixed without parentheses, as in Salesforce); string,
number, boolean, null, datetime (Z, +00:00, +0000), date and relative date literals (TODAY,
YESTERDAY, TOMORROW, LAST_N_DAYS:n, NEXT_N_DAYS:n); ORDER BY with ASC/DESC and NULLS
FIRST/LAST; LIMIT; OFFSET (at most 2,000). Errors carry Salesforce's codes: MALFORMED_QUERY,
INVALID_FIELD, INVALID_TYPE, NUMBER_OUTSIDE_VALID_RANGE.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Callable

from lark import Lark, Token, Transformer, UnexpectedInput

from crm_pipelines.crms.salesforce.emulator.schema import Field, ObjectSchema, canonical_object, to_id18
from crm_pipelines.crms.salesforce.emulator.values import parse_datetime, python_value
from crm_pipelines.sandbox.store import Record

MAX_SOQL_LENGTH = 100_000
MAX_OFFSET = 2_000

GRAMMAR = r"""
start: _SELECT select _FROM NAME where? order? limit? offset?

select: _COUNT "(" ")"                      -> count
      | path ("," path)*                    -> fields
path: NAME ("." NAME)*

where: _WHERE condition
?condition: unary
          | unary (_AND unary)+             -> and_
          | unary (_OR unary)+              -> or_
?unary: _NOT unary                          -> not_
      | "(" condition ")"
      | path OP value                       -> cmp
      | path _IN "(" value ("," value)* ")" -> in_
      | path _NOT _IN "(" value ("," value)* ")" -> not_in
      | path _LIKE value                    -> like

value: STRING -> string
     | SIGNED_NUMBER -> number
     | DATETIME -> datetime
     | DATE -> date
     | DATE_LITERAL -> date_literal
     | _TRUE -> true
     | _FALSE -> false
     | _NULL -> null

order: _ORDER _BY order_item ("," order_item)*
order_item: path DIRECTION? nulls?
nulls: _NULLS NULLS_WHERE
limit: _LIMIT INT
offset: _OFFSET INT

_SELECT: "select"i
_FROM: "from"i
_WHERE: "where"i
_AND: "and"i
_OR: "or"i
_NOT: "not"i
_IN: "in"i
_LIKE: "like"i
_COUNT: "count"i
_ORDER: "order"i
_BY: "by"i
_LIMIT: "limit"i
_OFFSET: "offset"i
_NULLS: "nulls"i
_TRUE: "true"i
_FALSE: "false"i
_NULL: "null"i
NULLS_WHERE: "first"i | "last"i
DIRECTION: "asc"i | "desc"i
OP: "=" | "!=" | "<>" | "<=" | ">=" | "<" | ">"
DATETIME.3: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?(Z|[+-]\d{2}:?\d{2})/
DATE.2: /\d{4}-\d{2}-\d{2}/
DATE_LITERAL.2: /(today|yesterday|tomorrow|last_n_days:\d+|next_n_days:\d+)(?![A-Za-z0-9_])/i
STRING: /'(\\.|[^'\\])*'/
NAME: /[A-Za-z][A-Za-z0-9_]*/

%import common.SIGNED_NUMBER
%import common.INT
%import common.WS
%ignore WS
"""

_PARSER = Lark(GRAMMAR, parser="lalr", maybe_placeholders=False)


class SoqlError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Literal:
    kind: str  # string | number | datetime | date | date_literal | boolean | null
    value: Any
    text: str


@dataclass
class Query:
    fields: list[list[str]] | None  # None: SELECT COUNT()
    object: str
    where: Any = None
    order: list[tuple[list[str], bool, bool]] = field(default_factory=list)  # path, desc, nulls_last
    limit: int | None = None
    offset: int | None = None

    @property
    def is_count(self) -> bool:
        return self.fields is None


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


def _unescape(text: str) -> str:
    out, i = [], 1
    while i < len(text) - 1:
        ch = text[i]
        if ch == "\\":
            nxt = text[i + 1]
            out.append(_ESCAPES.get(nxt, "\\" + nxt))  # \% and \_ stay escaped for LIKE
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


class _ToQuery(Transformer):
    def start(self, items: list[Any]) -> Query:
        select, obj, *rest = items
        q = Query(select, str(obj))
        for kind, value in rest:
            setattr(q, kind, value)
        return q

    def count(self, _: list[Any]) -> None:
        return None

    def fields(self, items: list[list[str]]) -> list[list[str]]:
        return items

    def path(self, items: list[Token]) -> list[str]:
        return [str(t) for t in items]

    def where(self, items: list[Any]) -> tuple[str, Any]:
        return ("where", items[0])

    def and_(self, items: list[Any]) -> tuple:
        return ("and", items)

    def or_(self, items: list[Any]) -> tuple:
        return ("or", items)

    def not_(self, items: list[Any]) -> tuple:
        return ("not", items[0])

    def cmp(self, items: list[Any]) -> tuple:
        op = str(items[1])
        return ("cmp", items[0], "!=" if op == "<>" else op, items[2])

    def in_(self, items: list[Any]) -> tuple:
        return ("in", items[0], items[1:], False)

    def not_in(self, items: list[Any]) -> tuple:
        return ("in", items[0], items[1:], True)

    def like(self, items: list[Any]) -> tuple:
        return ("like", items[0], items[1])

    def string(self, items: list[Token]) -> Literal:
        return Literal("string", _unescape(str(items[0])), str(items[0]))

    def number(self, items: list[Token]) -> Literal:
        text = str(items[0])
        return Literal("number", float(text) if any(c in text for c in ".eE") else int(text), text)

    def datetime(self, items: list[Token]) -> Literal:
        return Literal("datetime", parse_datetime(str(items[0])), str(items[0]))

    def date(self, items: list[Token]) -> Literal:
        text = str(items[0])
        try:
            return Literal("date", date.fromisoformat(text), text)
        except ValueError:
            raise SoqlError("MALFORMED_QUERY", f"line 1:0 no viable alternative at character '{text}'")

    def date_literal(self, items: list[Token]) -> Literal:
        return Literal("date_literal", str(items[0]).upper(), str(items[0]))

    def true(self, _: list[Any]) -> Literal:
        return Literal("boolean", True, "true")

    def false(self, _: list[Any]) -> Literal:
        return Literal("boolean", False, "false")

    def null(self, _: list[Any]) -> Literal:
        return Literal("null", None, "null")

    def order(self, items: list[Any]) -> tuple[str, Any]:
        return ("order", items)

    def order_item(self, items: list[Any]) -> tuple[list[str], bool, bool]:
        path, desc, nulls_last = items[0], False, None
        for item in items[1:]:
            if isinstance(item, Token) and item.type == "DIRECTION":
                desc = str(item).lower() == "desc"
            else:
                nulls_last = item
        return (path, desc, desc if nulls_last is None else nulls_last)

    def nulls(self, items: list[Token]) -> bool:
        return str(items[0]).lower() == "last"

    def limit(self, items: list[Token]) -> tuple[str, int]:
        return ("limit", int(items[0]))

    def offset(self, items: list[Token]) -> tuple[str, int]:
        return ("offset", int(items[0]))


def _error_position(soql: str, line: int, column: int) -> str:
    return f"\n{soql}\n{' ' * max(column - 1, 0)}^\nERROR at Row:{line}:Column:{column}\n"


def parse(soql: str) -> Query:
    if len(soql) > MAX_SOQL_LENGTH:
        raise SoqlError("MALFORMED_QUERY",
                        f"SOQL statements cannot be longer than {MAX_SOQL_LENGTH:,} characters.")
    try:
        tree = _PARSER.parse(soql)
    except UnexpectedInput as exc:
        line, column = getattr(exc, "line", 1), getattr(exc, "column", 1)
        token = getattr(exc, "token", None)
        if token is not None and getattr(token, "type", "") == "$END":
            detail = "unexpected token: <EOF>"
        elif token is not None:
            detail = f"unexpected token: '{token}'"
        else:
            detail = f"unexpected token: '{soql[exc.pos_in_stream:exc.pos_in_stream + 1]}'"
        raise SoqlError("MALFORMED_QUERY", _error_position(soql, line, column) + detail) from None
    return _ToQuery().transform(tree)


# --- Checking against the org's schema --------------------------------------------------------

SchemaLookup = Callable[[str], ObjectSchema]


@dataclass
class Plan:
    query: Query
    schema: ObjectSchema
    select: list[tuple[list[str], list[tuple[str, Field]]]]  # canonical path per selected field
    columns: list[str]  # dotted canonical names, for CSV headers


def resolve(schemas: SchemaLookup, root: str, path: list[str]) -> list[tuple[str, Field]]:
    """Each step of a path as (object, field); raises INVALID_FIELD like Salesforce."""
    steps: list[tuple[str, Field]] = []
    obj = root
    for i, part in enumerate(path):
        schema = schemas(obj)
        if i == len(path) - 1:
            f = schema.lookup(part)
            if f is None:
                raise _no_such_column(".".join(path), obj)
            steps.append((obj, f))
        else:
            ref = schema.relationship(part)
            if ref is None:
                raise SoqlError(
                    "INVALID_FIELD",
                    f"Didn't understand relationship '{part}' in field path. If you are attempting to use a "
                    "custom relationship, be sure to append the '__r' after the custom relationship name. "
                    "Please reference your WSDL or the describe call for the appropriate names.")
            steps.append((obj, ref))
            obj = ref.reference_to[0]
    return steps


def _no_such_column(name: str, obj: str) -> SoqlError:
    return SoqlError(
        "INVALID_FIELD",
        f"No such column '{name}' on entity '{obj}'. If you are attempting to use a custom field, be sure to "
        "append the '__c' after the custom field name. Please reference your WSDL or the describe call for "
        "the appropriate names.")


def plan(soql: str, schemas: SchemaLookup) -> Plan:
    query = parse(soql)
    obj = canonical_object(query.object)
    if obj is None:
        raise SoqlError("INVALID_TYPE",
                        f"\n{soql}\n{' ' * soql.lower().find(query.object.lower())}^\nERROR at Row:1:Column:"
                        f"{soql.lower().find(query.object.lower()) + 1}\nsObject type '{query.object}' is not "
                        "supported. If you are attempting to use a custom object, be sure to append the '__c' "
                        "after the entity name. Please reference your WSDL or the describe call for the "
                        "appropriate names.")
    query.object = obj
    if query.offset is not None and query.offset > MAX_OFFSET:
        raise SoqlError("NUMBER_OUTSIDE_VALID_RANGE",
                        f"Maximum SOQL offset allowed is {MAX_OFFSET}")
    select = []
    for path in query.fields or []:
        steps = resolve(schemas, obj, path)
        canonical = [f.relationship_name if i < len(steps) - 1 else f.name for i, (_, f) in enumerate(steps)]
        if canonical in [c for c, _ in select]:
            raise SoqlError("INVALID_FIELD", f"duplicate field selected: {'.'.join(canonical)}")
        select.append((canonical, steps))
    if query.where is not None:
        _check_condition(query.where, schemas, obj)
    for path, _, _ in query.order:
        resolve(schemas, obj, path)
    return Plan(query, schemas(obj), select, [".".join(c) for c, _ in select])


_STRINGY = {"id", "string", "email", "phone", "url", "picklist", "textarea", "reference"}
_TYPE_NAMES = {"datetime": "dateTime", "double": "double", "int": "int", "boolean": "boolean", "date": "date"}


def _check_literal(f: Field, literal: Literal) -> None:
    if literal.kind == "null":
        return
    ok = {
        "datetime": literal.kind in ("datetime", "date_literal"),
        "date": literal.kind in ("date", "date_literal"),
        "double": literal.kind == "number",
        "int": literal.kind == "number",
        "boolean": literal.kind == "boolean",
    }.get(f.type, literal.kind == "string")
    if not ok:
        expected = _TYPE_NAMES.get(f.type, "string")
        quoted = "should not be enclosed in quotes" if expected != "string" else "should be enclosed in quotes"
        raise SoqlError("INVALID_FIELD",
                        f"value of filter criterion for field '{f.name}' must be of type {expected} and {quoted}")


def _check_condition(cond: tuple, schemas: SchemaLookup, obj: str) -> None:
    kind = cond[0]
    if kind in ("and", "or"):
        for c in cond[1]:
            _check_condition(c, schemas, obj)
    elif kind == "not":
        _check_condition(cond[1], schemas, obj)
    elif kind == "cmp":
        f = resolve(schemas, obj, cond[1])[-1][1]
        _check_literal(f, cond[3])
        if cond[3].kind == "null" and cond[2] not in ("=", "!="):
            raise SoqlError("MALFORMED_QUERY", f"invalid operator on null: {cond[2]}")
    elif kind == "in":
        f = resolve(schemas, obj, cond[1])[-1][1]
        for literal in cond[2]:
            _check_literal(f, literal)
    elif kind == "like":
        f = resolve(schemas, obj, cond[1])[-1][1]
        if f.type not in _STRINGY or cond[2].kind != "string":
            raise SoqlError("INVALID_FIELD", f"invalid operator on field '{f.name}': LIKE")


# --- Evaluation ---------------------------------------------------------------------------------

Getter = Callable[[Record, list[str]], Any]  # record, path → python value (None if unreachable)


def _date_range(name: str, now: datetime) -> tuple[datetime, datetime]:
    today = datetime.combine(now.date(), time(), tzinfo=timezone.utc)
    if name == "TODAY":
        return today, today + timedelta(days=1)
    if name == "YESTERDAY":
        return today - timedelta(days=1), today
    if name == "TOMORROW":
        return today + timedelta(days=1), today + timedelta(days=2)
    kind, n = name.split(":")
    if kind == "LAST_N_DAYS":
        return today - timedelta(days=int(n)), today + timedelta(days=1)
    return today + timedelta(days=1), today + timedelta(days=int(n) + 1)


def _as_instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=timezone.utc)
    if isinstance(value, str):
        parsed = parse_datetime(value)
        if parsed is not None:
            return parsed
        try:
            return datetime.combine(date.fromisoformat(value), time(), tzinfo=timezone.utc)
        except ValueError:
            return None
    return None


def _normalise(f: Field, value: Any) -> Any:
    value = python_value(f, value)
    if value is None:
        return None
    if f.type in ("datetime", "date"):
        return _as_instant(value)
    if f.type in ("id", "reference"):
        return to_id18(str(value)).lower()
    if f.type in _STRINGY:
        return str(value).lower()
    return value


def _literal_value(f: Field, literal: Literal) -> Any:
    if literal.kind == "null":
        return None
    if literal.kind in ("datetime", "date"):
        return _as_instant(literal.value)
    if f.type in ("id", "reference"):
        return to_id18(str(literal.value)).lower()
    if isinstance(literal.value, str):
        return literal.value.lower()
    return literal.value


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "=":
        return left == right
    if op == "!=":
        return left != right
    if left is None or right is None:
        return False
    try:
        return {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[op]
    except TypeError:
        return False


def _like_regex(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def matcher(cond: Any, schemas: SchemaLookup, obj: str, get: Getter,
            now: datetime) -> Callable[[Record], bool]:
    """Compile a WHERE condition into a predicate over store records."""
    if cond is None:
        return lambda r: True
    kind = cond[0]
    if kind in ("and", "or"):
        parts = [matcher(c, schemas, obj, get, now) for c in cond[1]]
        combine = all if kind == "and" else any
        return lambda r: combine(p(r) for p in parts)
    if kind == "not":
        inner = matcher(cond[1], schemas, obj, get, now)
        return lambda r: not inner(r)
    path = cond[1]
    f = resolve(schemas, obj, path)[-1][1]
    if kind == "like":
        regex = _like_regex(cond[2].value)

        def like(r: Record) -> bool:
            value = get(r, path)
            return value is not None and regex.fullmatch(str(value)) is not None
        return like
    if kind == "in":
        wanted = {_literal_value(f, lit) for lit in cond[2] if lit.kind != "date_literal"}
        negate = cond[3]

        def is_in(r: Record) -> bool:
            value = _normalise(f, get(r, path))
            return (value not in wanted) if negate else (value in wanted)
        return is_in
    op, literal = cond[2], cond[3]
    if literal.kind == "date_literal":
        start, end = _date_range(literal.value, now)

        def in_range(r: Record) -> bool:
            value = _normalise(f, get(r, path))
            if value is None:
                return op == "!="
            inside = start <= value < end
            return {"=": inside, "!=": not inside, "<": value < start, ">=": value >= start,
                    ">": value >= end, "<=": value < end}[op]
        return in_range
    right = _literal_value(f, literal)
    return lambda r: _compare(op, _normalise(f, get(r, path)), right)


def sort(records: list[Record], order: list[tuple[list[str], bool, bool]], schemas: SchemaLookup,
         obj: str, get: Getter) -> list[Record]:
    """Stable multi-key sort; nulls first ascending and last descending unless NULLS says otherwise."""
    out = list(records)
    for path, desc, nulls_last in reversed(order):
        f = resolve(schemas, obj, path)[-1][1]
        keyed = [(_normalise(f, get(r, path)), r) for r in out]
        present = [kr for kr in keyed if kr[0] is not None]
        missing = [r for v, r in keyed if v is None]
        present.sort(key=lambda kr: kr[0], reverse=desc)
        ordered = [r for _, r in present]
        out = ordered + missing if nulls_last else missing + ordered
    return out
