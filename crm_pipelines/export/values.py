"""Values coerced to the type the CRM describes for a field, or refused with a reason a person
can act on. Each CRM names its types its own way; they share a handful of kinds."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import pandas as pd

from crm_pipelines.export.validity import is_email, is_url, valid_emails, valid_urls

# The CRM's type name (Salesforce describe, HubSpot properties, Dataverse AttributeType) → kind.
KINDS = {
    "string": "text", "textarea": "text", "text": "text", "memo": "text", "encryptedstring": "text",
    "email": "email", "url": "url", "phone": "phone", "phone_number": "phone",
    "picklist": "picklist", "enumeration": "picklist", "state": "picklist", "status": "picklist",
    "multipicklist": "multipicklist",
    "double": "number", "currency": "number", "percent": "number", "number": "number", "decimal": "number",
    "money": "number", "int": "integer", "integer": "integer", "bigint": "integer",
    "boolean": "boolean", "bool": "boolean",
    "date": "date", "datetime": "datetime", "dateonly": "date",
    "reference": "reference", "lookup": "reference", "owner": "reference", "customer": "reference",
    "id": "reference", "uniqueidentifier": "reference",
}
# What an Enginy field holds, whatever the CRM calls the type of the field it is mapped to: an
# address in a Dataverse String column or a HubSpot string property is checked as in a Salesforce
# email field, so every CRM refuses the same values before the push.
ENGINY_MEANINGS = {"email": "email", "linkedin_url": "url", "website": "url"}
REFUSED_VALUE_SHOWN = 100  # characters of a refused value its reason quotes
_NUMBER = r"(?i)^[-+]?(\d|\.\d|inf|nan)"  # what may read as a number: the rest is compared as text
TEXT_KINDS = frozenset({"text", "email", "url", "phone", "reference"})
# Inferred types whose equal values are the same value to coerce (1, 1.0 and True hash alike:
# in a column mixing them, each cell is coerced on its own).
_ONE_TYPE = frozenset({"string", "boolean", "integer", "floating", "empty"})


def kind(crm_type: str) -> str:
    return KINDS.get(crm_type.lower(), "text")


def as_meant(spec: FieldSpec, enginy_field: str | None) -> FieldSpec:
    """``spec`` checked as what the mapped Enginy field holds, where the CRM describes a plain text field."""
    meaning = ENGINY_MEANINGS.get(enginy_field or "")
    return replace(spec, type=meaning) if meaning and kind(spec.type) == "text" else spec


@dataclass(frozen=True)
class FieldSpec:
    """What the push needs to know of one CRM field (a row of crm_schema)."""

    name: str
    type: str
    createable: bool = True
    updateable: bool = True
    options: tuple[str, ...] = ()
    option_labels: tuple[str, ...] = ()
    length: int | None = None


class Refused(ValueError):
    """A value the CRM would refuse, with the reason for the rejections report."""


def is_empty(value: Any) -> bool:
    # Called for every value of a batch: the common types are tested first, by exact type.
    if value is None:
        return True
    kind_of = type(value)
    if kind_of is str:
        return not value.strip()
    if kind_of is float:
        return math.isnan(value)
    if kind_of is int or kind_of is bool:
        return False
    if value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and not value.strip()


def coerce(spec: FieldSpec, value: Any) -> Any:
    """``value`` as the CRM takes it for ``spec``, or Refused."""
    if is_empty(value):
        return None
    k = kind(spec.type)
    if k == "picklist":
        return _option(spec, str(value).strip())
    if k == "multipicklist":
        return ";".join(_option(spec, part.strip()) for part in re.split(r"[;,]", str(value)) if part.strip())
    if k in ("number", "integer"):
        try:
            number = Decimal(str(value).strip().replace(",", ""))
        except InvalidOperation:
            raise Refused(f"{spec.name}: {value!r} is not a number") from None
        if k == "integer":
            if number != number.to_integral():
                raise Refused(f"{spec.name}: {value!r} is not a whole number")
            return int(number)
        return float(number)
    if k == "boolean":
        text = str(value).strip().lower()
        if text in ("true", "1", "yes", "y"):
            return True
        if text in ("false", "0", "no", "n"):
            return False
        raise Refused(f"{spec.name}: {value!r} is not true or false")
    if k in ("date", "datetime"):
        try:
            stamp = pd.Timestamp(value)
        except (ValueError, TypeError):
            raise Refused(f"{spec.name}: {value!r} is not a date") from None
        if k == "date":
            return date(stamp.year, stamp.month, stamp.day).isoformat()
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
    text = value.isoformat() if isinstance(value, (datetime, date)) else str(value).strip()
    if k == "email" and not is_email(text):
        raise Refused(_not_a(spec, text, k))
    if k == "url" and not is_url(text):
        raise Refused(_not_a(spec, text, k))
    if spec.length is not None and len(text) > spec.length:
        raise Refused(f"{spec.name}: {len(text)} characters, the field holds {spec.length}")
    return text


def _option(spec: FieldSpec, text: str) -> str:
    """The internal value: given as such, or the one option whose label it is (case aside)."""
    if not spec.options or text in spec.options:
        return text
    by_label = [v for v, label in zip(spec.options, spec.option_labels) if label.lower() == text.lower()]
    by_value = [v for v in spec.options if v.lower() == text.lower()]
    found = sorted(set(by_label + by_value))
    if len(found) == 1:
        return found[0]
    allowed = ", ".join(spec.options[:20]) + (" …" if len(spec.options) > 20 else "")
    if found:
        raise Refused(f"{spec.name}: {text!r} matches several options ({', '.join(found)}); use an internal value")
    raise Refused(f"{spec.name}: {text!r} is not one of the allowed values: {allowed}")


def same(a: Any, b: Any, spec: FieldSpec | None = None) -> bool:
    """Whether a CRM value and a new value are the same for the diff (number form aside). With the
    field's spec, the CRM's value is read as the new one was written — HubSpot's "true", a
    Salesforce or Dataverse timestamp in its own format — so an unchanged value is no change."""
    if spec is not None and not is_empty(a):
        try:
            a = coerce(spec, a)
        except Refused:
            pass
    if is_empty(a) and is_empty(b):
        return True
    if is_empty(a) or is_empty(b):
        return False
    if spec is not None and kind(spec.type) == "email":
        # Emails are compared without case: HubSpot stores them lower-cased, so an exact
        # comparison would send a mixed-case address again on every run.
        return str(a).strip().lower() == str(b).strip().lower()
    try:
        return Decimal(str(a)) == Decimal(str(b))
    except InvalidOperation:
        return str(a).strip() == str(b).strip()


def coerce_column(spec: FieldSpec, values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """``coerce`` over a column: (the values as the CRM takes them, None where empty; the reason
    where a value is refused, else None). Text and timestamps are coerced column-wise, anything
    else once per distinct value — a batch of a million rows holds few distinct picklist values,
    numbers or flags, and calling ``coerce`` per cell cost most of a big batch's time."""
    k = kind(spec.type)
    inferred = pd.api.types.infer_dtype(values, skipna=True)
    if k in TEXT_KINDS and inferred in ("string", "empty"):
        return _coerce_text(spec, k, values)
    if k in ("date", "datetime") and pd.api.types.is_datetime64_any_dtype(values.dtype):
        return _coerce_timestamps(k, values)
    if values.dtype != object or inferred in _ONE_TYPE:
        codes, distinct = pd.factorize(values, use_na_sentinel=True)
    else:
        codes, distinct = np.arange(len(values)), values.to_numpy(object)
    coerced = np.empty(len(distinct) + 1, dtype=object)  # the last slot answers the missing ones (code -1)
    reasons = np.empty(len(distinct) + 1, dtype=object)
    for i, value in enumerate(distinct):
        try:
            coerced[i] = coerce(spec, value)
        except Refused as refused:
            reasons[i] = str(refused)
    return (pd.Series(coerced[codes], index=values.index, dtype=object),
            pd.Series(reasons[codes], index=values.index, dtype=object))


def _coerce_text(spec: FieldSpec, k: str, values: pd.Series) -> tuple[pd.Series, pd.Series]:
    text = values.astype("str").str.strip()
    present = (text.notna() & text.ne("")).to_numpy(bool)
    refused = np.zeros(len(text), dtype=bool)
    reasons = np.full(len(text), None, dtype=object)
    if k in ("email", "url"):
        bad = present & ~(valid_emails if k == "email" else valid_urls)(text)
        reasons[bad] = [_not_a(spec, t, k) for t in text[bad]]
        refused |= bad
    if spec.length is not None:
        lengths = text.str.len().fillna(0).to_numpy()
        long = present & ~refused & (lengths > spec.length)
        reasons[long] = [f"{spec.name}: {int(n)} characters, the field holds {spec.length}" for n in lengths[long]]
        refused |= long
    coerced = np.where(present & ~refused, text.to_numpy(object), None)
    return pd.Series(coerced, index=values.index, dtype=object), pd.Series(reasons, index=values.index, dtype=object)


def _not_a(spec: FieldSpec, text: str, k: str) -> str:
    shown = text if len(text) <= REFUSED_VALUE_SHOWN else text[:REFUSED_VALUE_SHOWN] + "…"
    what = "an email address" if k == "email" else "a web address (http or https, and a public domain)"
    return f"{spec.name}: {shown!r} is not {what}"


def _coerce_timestamps(k: str, values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """A datetime64 column: dates as written in its own zone, datetimes in UTC to the millisecond."""
    present = values.notna().to_numpy(bool)
    if k == "date":
        text = values.dt.strftime("%Y-%m-%d")
    else:
        utc = values.dt.tz_localize("UTC") if values.dt.tz is None else values.dt.tz_convert("UTC")
        millis = (utc.dt.microsecond.fillna(0).astype("int64") // 1000).astype("str").str.zfill(3)
        text = utc.dt.strftime("%Y-%m-%dT%H:%M:%S.") + millis + "Z"
    coerced = np.where(present, text.to_numpy(object), None)
    return (pd.Series(coerced, index=values.index, dtype=object),
            pd.Series(np.full(len(values), None, dtype=object), index=values.index, dtype=object))


def empty_column(values: pd.Series) -> np.ndarray:
    """``is_empty`` over a column."""
    empty = values.isna().to_numpy(bool, copy=True)
    inferred = pd.api.types.infer_dtype(values, skipna=True)
    if inferred == "string":
        empty |= values.astype("str").str.strip().eq("").fillna(False).to_numpy(bool)
    elif inferred not in ("integer", "floating", "boolean", "empty", "datetime64", "datetime", "date"):
        empty |= np.fromiter((is_empty(v) for v in values), dtype=bool, count=len(values))
    return empty


def same_column(held: pd.Series, new: pd.Series, spec: FieldSpec) -> np.ndarray:
    """``same(held, new, spec)`` over two aligned columns; ``new`` already coerced (None where empty)."""
    coerced, refused = coerce_column(spec, held)
    held = coerced.where(refused.isna(), held)  # a value the spec refuses is compared as it is
    held_empty, new_empty = empty_column(held), new.isna().to_numpy(bool)
    result = held_empty & new_empty
    both = ~held_empty & ~new_empty
    if not both.any():
        return result
    a = held[both].astype("str").str.strip()
    b = new[both].astype("str").str.strip()
    if kind(spec.type) == "email":
        result[both] = (a.str.lower() == b.str.lower()).to_numpy(bool)
        return result
    equal = (a == b).to_numpy(bool, copy=True)
    # Number form aside ("120" is 120.0): where the text differs and both sides read as numbers,
    # the float comparison is confirmed exactly so that long digit strings are not taken as equal.
    numeric = ~equal & a.str.match(_NUMBER).to_numpy(bool) & b.str.match(_NUMBER).to_numpy(bool)
    if numeric.any():
        numbers_a = pd.to_numeric(a[numeric], errors="coerce").to_numpy(float)
        numbers_b = pd.to_numeric(b[numeric], errors="coerce").to_numpy(float)
        for i in np.flatnonzero(numeric)[numbers_a == numbers_b]:
            equal[i] = same(a.iloc[i], b.iloc[i])
    result[both] = equal
    return result


# A cell a spreadsheet would run as a formula: "=", "@", a tab or carriage return first, or "+"
# or "-" followed by anything but a number or a phone number (those stay as they are).
_FORMULA = r"^(?:[=@\t\r]|[+-](?![\d\s().+-]*$))"


def neutralize_formulas(spec: FieldSpec, values: pd.Series) -> pd.Series:
    """Free-text values a spreadsheet would read as a formula, quoted with a leading apostrophe
    (OWASP's advice against CSV injection): for CRMs whose users export records to sheets."""
    if kind(spec.type) != "text" or not len(values):
        return values
    text = pd.Series(values, dtype="str")  # missing values stay missing
    risky = text.str.contains(_FORMULA, regex=True, na=False).to_numpy(bool)
    if not risky.any():
        return values
    quoted = values.astype(object).copy()
    quoted[risky] = ("'" + text[risky]).to_numpy(object)
    return quoted
