"""Normalisers: what makes two spellings of the same identifier equal before they are compared.

Each one runs as DuckDB SQL over the *distinct* values of a column — a million contacts carry
about a thousand distinct first names — with a Python step only where DuckDB has no function:
Unicode NFKC (pyarrow), the public-suffix list (tldextract, offline) and phone numbers
(phonenumbers). The engine and the plain-value functions at the bottom share this code, so what
the tests show is what matching does.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Iterable

import duckdb
import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
import tldextract

# Lower-case, then the full case foldings lower() misses (ß → ss, final sigma), then accents
# and the Latin letters that carry a stroke rather than a combining accent (ø, ł, đ, æ, œ, þ).
_FOLD = ("replace(replace(replace(translate(strip_accents(replace(replace(lower({v}), 'ß', 'ss'), 'ς', 'σ')), "
         "'øłđıħ', 'oldih'), 'æ', 'ae'), 'œ', 'oe'), 'þ', 'th')")
_APOSTROPHES = "[''’ʼ`´]"
_SEPARATORS = r"[\p{P}\p{S}\p{Z}\p{Cc}\s]+"

# Legal forms of the main jurisdictions as they read once dots are gone and "&" is "and":
# S.L. → sl, GmbH & Co. KG → gmbh and co kg (stripped as gmbh + and co + kg).
LEGAL_SUFFIXES = (
    "inc", "incorporated", "corp", "corporation", "co", "company", "llc", "lp", "llp", "ltd", "limited", "plc",
    "pty", "gmbh", "mbh", "ag", "kg", "ug", "and co", "sl", "slu", "sa", "sau", "sas", "sarl", "srl", "spa",
    "sociedad limitada", "sociedad anonima", "bv", "nv", "oy", "ab", "as", "asa", "aps", "kk", "pte", "bhd",
)
_SUFFIX_TAIL = "(?: (?:" + "|".join(sorted(LEGAL_SUFFIXES, key=len, reverse=True)) + "))+$"

# The host part before "linkedin.com/" and the path after it, checked separately: one anchored
# regular expression over the whole URL costs four times as much on a million profiles.
_LINKEDIN_HOST = r"(?:https?://)?(?:[a-z0-9-]+\.)*"
_LINKEDIN_PATH = r"^(?:mwlite/)?((?:in|company|school|showcase)/[^/?#\s]+)"


def _person_name_sql(v: str) -> str:
    folded = _FOLD.format(v=v)
    return (f"nullif(trim(regexp_replace(regexp_replace({folded}, '{_APOSTROPHES}', '', 'g'), "
            f"'{_SEPARATORS}', ' ', 'g')), '')")


def _company_name_sql(v: str) -> str:
    folded = _FOLD.format(v=v)
    joined = f"regexp_replace(regexp_replace({folded}, '&', ' and ', 'g'), '[.''’ʼ`´]', '', 'g')"
    spaced = f"trim(regexp_replace({joined}, '{_SEPARATORS}', ' ', 'g'))"
    no_article = f"regexp_replace({spaced}, '^the (.)', '\\1')"
    return f"nullif(regexp_replace({no_article}, '{_SUFFIX_TAIL}', ''), '')"


def _text_sql(v: str) -> str:
    return f"nullif(trim(regexp_replace({_FOLD.format(v=v)}, '[\\p{{Z}}\\s]+', ' ', 'g')), '')"


def _host_sql(v: str) -> str:
    # Bare domains, URLs and email addresses all reduce to a host name.
    host = f"regexp_replace(lower(trim({v})), '^.*@', '')"
    host = f"regexp_replace({host}, '^[a-z][a-z0-9+.-]*://', '')"
    return f"nullif(trim(regexp_replace({host}, '[/?#:].*$', ''), '.'), '')"


def _linkedin_sql(v: str) -> str:
    # One profile, whatever the country subdomain, scheme, mobile or lite host, trailing path,
    # query string or URL-encoding: "in/<slug>" (or "company/<slug>", …), lower-case.
    url = f"lower(trim({v}))"
    path = (f"CASE WHEN regexp_full_match(split_part({url}, 'linkedin.com/', 1), '{_LINKEDIN_HOST}') "
            f"THEN nullif(regexp_extract(split_part({url}, 'linkedin.com/', 2), '{_LINKEDIN_PATH}', 1), '') END")
    return f"nfc_normalize(lower(url_decode({path})))"


def _email_sql(v: str) -> str:
    address = f"regexp_replace(lower(trim({v})), '^mailto:', '')"
    return f"CASE WHEN regexp_matches({address}, '^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$') THEN {address} END"


def _nfkc(values: pa.Array) -> pa.Array:
    # Greek's iota subscript (ᾳ) is a combining mark that lower() keeps and strip_accents drops,
    # while upper() turns it into a letter (ΑΙ): written as that letter, both spellings read αι.
    decomposed = pc.utf8_normalize(values, "NFKD")
    return pc.utf8_normalize(pc.replace_substring(decomposed, "\u0345", "ι"), "NFKC")


@lru_cache(maxsize=1)
def _extractor() -> tldextract.TLDExtract:
    # The suffix list bundled with tldextract: matching never reaches the network.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def _registered(values: pa.Array, keep_suffix: bool) -> pa.Array:
    extract = _extractor()

    def one(host: str | None) -> str | None:
        if host is None:
            return None
        parts = extract(host)
        if not parts.suffix or not parts.domain:
            return None  # an IP address, localhost, or a public suffix itself: no company domain
        return f"{parts.domain}.{parts.suffix}" if keep_suffix else parts.domain

    return pa.array([one(h) for h in values.to_pylist()], type=pa.large_string())


def _phone(values: pa.Array) -> pa.Array:
    def one(text: str | None) -> str | None:
        if text is None:
            return None
        try:
            number = phonenumbers.parse(text, None)
        except phonenumbers.NumberParseException:
            # Without a country code the region is unknown; the digits alone still compare.
            digits = "".join(c for c in text if c.isdigit())
            return digits if len(digits) >= 7 else None
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    return pa.array([one(t) for t in values.to_pylist()], type=pa.large_string())


def _identity(v: str) -> str:
    return v


@dataclass(frozen=True)
class Normaliser:
    """SQL before a Python step (if any), the Python step, SQL after it; each over ``{v}``.

    ``per_value``: SQL alone, and cheaper on every value than on the distinct ones joined back —
    identifiers that are nearly unique anyway (LinkedIn URLs, emails).
    """

    before: Callable[[str], str]
    python: Callable[[pa.Array], pa.Array] | None
    after: Callable[[str], str]
    per_value: bool = False


NORMALISERS: dict[str, Normaliser] = {
    "exact": Normaliser(lambda v: f"nullif(trim({v}), '')", None, _identity, per_value=True),
    "text": Normaliser(_identity, _nfkc, _text_sql),
    "person_name": Normaliser(_identity, _nfkc, _person_name_sql),
    "company_name": Normaliser(_identity, _nfkc, _company_name_sql),
    "domain": Normaliser(_host_sql, lambda a: _registered(a, keep_suffix=True), _identity),
    # include_any_domain_extension: the registered name without its public suffix.
    "domain_any_extension": Normaliser(_host_sql, lambda a: _registered(a, keep_suffix=False), _identity),
    "linkedin": Normaliser(_linkedin_sql, None, _identity, per_value=True),
    "email": Normaliser(_email_sql, None, _identity, per_value=True),
    "phone": Normaliser(_identity, _phone, _identity),
}

# What `normalize: auto` means for a field, by the Enginy field's name.
AUTO = {"first_name": "person_name", "last_name": "person_name", "company_name": "company_name",
        "name": "company_name", "domain": "domain", "website": "domain", "linkedin_url": "linkedin",
        "email": "email", "phone": "phone"}


def resolve(kind: str, enginy_field: str) -> str:
    return AUTO.get(enginy_field, "text") if kind == "auto" else kind


def sql_expression(kind: str, v: str) -> str:
    """The whole normaliser as one SQL expression over ``v`` (per_value normalisers only)."""
    normaliser = NORMALISERS[kind]
    return normaliser.after(normaliser.before(v))


def create_mapping(con: duckdb.DuckDBPyConnection, table: str, values_sql: str, kind: str) -> None:
    """Create ``table(raw, norm)``: every distinct non-null value of ``values_sql`` (one column
    named ``raw``) with its normal form (NULL where the value is no identifier at all).

    ``table`` and ``values_sql`` are built by the engine from its own names, never from data.
    """
    normaliser = NORMALISERS[kind]
    first = normaliser.before("raw") if normaliser.python else sql_expression(kind, "raw")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS "
                f"SELECT raw, {first} AS norm FROM (SELECT DISTINCT raw FROM ({values_sql}) "
                f"WHERE raw IS NOT NULL)")
    if normaliser.python is not None:
        distinct = con.sql(f"SELECT DISTINCT norm FROM {table} WHERE norm IS NOT NULL").to_arrow_table()
        middle = distinct.column("norm").combine_chunks().cast(pa.large_string())
        step = pa.table({"before": middle, "after": normaliser.python(middle)})
        con.register("python_step", step)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT m.raw, {normaliser.after('s.after')} AS norm "
                    f"FROM {table} m LEFT JOIN python_step s ON s.before = m.norm")
        con.unregister("python_step")


def normalize(values: Iterable[object], kind: str) -> list[str | None]:
    """Normal forms of ``values`` (None where a value is no identifier), one per value."""
    return normalize_column(pd.Series(list(values), dtype=object), kind).tolist()


def normalize_column(values: pd.Series, kind: str) -> pd.Series:
    """``normalize`` over a column: the normal forms (None where a value is no identifier) in an
    object column with ``values``' index. Text columns take no Python step per value; only an
    object column (text mixed with numbers, say) has its values turned to text one by one."""
    # A missing value (None, NaN, pd.NA) is no identifier; as text it would be "nan", one key for all.
    missing = values.isna().to_numpy(bool)
    text = values.astype(object).where(~missing, None)
    if values.dtype == object:  # numbers or other values among the text: compared as their text
        text = text.map(lambda v: v if v is None or isinstance(v, str) else str(v))
    con = duckdb.connect()
    try:
        con.register("input_values", pd.DataFrame({"i": np.arange(len(text)),
                                                   "raw": pd.array(text.to_numpy(object), dtype=object)}))
        create_mapping(con, "mapping", "SELECT raw::VARCHAR AS raw FROM input_values", kind)
        # In the values' order by their position: a join returns rows in any order.
        norm = con.sql("SELECT m.norm FROM input_values v LEFT JOIN mapping m ON m.raw = v.raw::VARCHAR "
                       "ORDER BY v.i").to_arrow_table().column("norm").to_numpy(zero_copy_only=False)
    finally:
        con.close()
    norm = pd.Series(norm, dtype=object, index=values.index)
    return norm.where(norm.notna(), None)


def _one(kind: str) -> Callable[[object], str | None]:
    def normalise_one(value: object) -> str | None:
        return normalize([value], kind)[0]

    normalise_one.__name__ = kind
    return normalise_one


person_name = _one("person_name")
company_name = _one("company_name")
text = _one("text")
domain = _one("domain")
domain_any_extension = _one("domain_any_extension")
linkedin = _one("linkedin")
email = _one("email")
phone = _one("phone")
