"""Whether a value is an email address or a web address: one rule for every CRM, applied by what
the value is rather than by how a CRM names the field's type (a Salesforce ``email`` field, a
HubSpot ``string`` property and a Dataverse ``String`` column all hold addresses), so a value
refused before a push to one CRM is refused before a push to any.

Column-wise (RE2 through Arrow) for batches of a million rows: a structural pattern first, then
the top-level domain against the public-suffix list (tldextract's bundled copy, offline) once per
distinct domain ending — so ``john@localhost`` and ``javascript:alert(1)`` are refused while any
real domain, internationalised ones included, passes.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import tldextract

# A letter, a digit or any non-ASCII character (internationalised names, before punycode), as one
# class: alternatives and bounded repeats made the automaton, and a million values, several times slower.
_ALNUM = r"[^\x00-\x2F\x3A-\x40\x5B-\x60\x7B-\x7F]"
# A host name's label: no hyphen first or last (its 63-character limit is left to the whole value's).
_ALNUM_OR_HYPHEN = r"[^\x00-\x2C\x2E\x2F\x3A-\x40\x5B-\x60\x7B-\x7F]"
_LABEL = rf"{_ALNUM}(?:{_ALNUM_OR_HYPHEN}*{_ALNUM})?"
_HOST = rf"(?:{_LABEL}\.)+(?P<tld>{_LABEL})"
# RFC 5322's dot-atom: what CRMs and mail servers take unquoted (quoted local parts are refused).
_ATOM = r"[^\x00-\x20\x22\x28\x29\x2C\x2E\x3A-\x3C\x3E\x40\x5B-\x5D\x7F]+"
EMAIL_PATTERN = rf"^(?P<local>{_ATOM}(?:\.{_ATOM})*)@{_HOST}$"
# An optional scheme (Enginy's LinkedIn URLs come as ``es.linkedin.com/in/…``), a host name, an
# optional port, then anything but whitespace and control characters.
URL_PATTERN = rf"^(?:(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://)?{_HOST}(?::[0-9]{{1,5}})?(?:[/?#][^\s\x00-\x1F\x7F]*)?$"
WEB_SCHEMES = ("http", "https")
MAX_EMAIL = 254  # RFC 5321's limits on a deliverable address and on its local part
MAX_LOCAL = 64


def valid_emails(values: pd.Series | pa.Array) -> np.ndarray:
    """Per value, whether it is an email address (missing values: False)."""
    text = _text(values)
    parts = pc.extract_regex(text, EMAIL_PATTERN)
    ok = _known_tlds(parts.field("tld"))
    ok = pc.and_kleene(ok, pc.less_equal(pc.utf8_length(parts.field("local")), MAX_LOCAL))
    ok = pc.and_kleene(ok, pc.less_equal(pc.utf8_length(text), MAX_EMAIL))
    return _mask(ok)


def valid_urls(values: pd.Series | pa.Array) -> np.ndarray:
    """Per value, whether it is a web address: http, https or no scheme, and a host name under a
    public top-level domain (missing values: False). ``javascript:``, ``data:`` or ``ftp:`` URLs,
    bare words, IP addresses and ``localhost`` are not."""
    parts = pc.extract_regex(_text(values), URL_PATTERN)
    scheme = pc.utf8_lower(parts.field("scheme"))
    web = pc.or_kleene(pc.equal(scheme, ""), pc.is_in(scheme, pa.array(WEB_SCHEMES)))
    return _mask(pc.and_kleene(_known_tlds(parts.field("tld")), web))


def is_email(text: str) -> bool:
    return bool(valid_emails(pa.array([text], pa.string()))[0])


def is_url(text: str) -> bool:
    return bool(valid_urls(pa.array([text], pa.string()))[0])


def _text(values: pd.Series | pa.Array) -> pa.Array:
    if isinstance(values, pa.Array):
        return values
    text = values.astype("str") if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty") \
        else values
    array = pa.array(text, type=pa.large_string(), from_pandas=True)
    # An Arrow-backed column comes out chunked, which has no struct fields to read.
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _known_tlds(tlds: pa.Array) -> pa.Array:
    """Per top-level domain (null where the pattern did not match), whether the public-suffix list
    knows it: decided once per distinct ending, a handful in a million addresses."""
    lowered = pc.utf8_lower(tlds)
    distinct = pc.unique(lowered).drop_null()
    known = [tld for tld in distinct.to_pylist() if _public(tld)]
    return pc.is_in(lowered, pa.array(known, lowered.type))


def _mask(ok: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(ok, False).to_numpy(zero_copy_only=False), dtype=bool)


@lru_cache(maxsize=4096)
def _public(tld: str) -> bool:
    return bool(_suffixes()(f"x.{tld}").suffix)


@lru_cache(maxsize=1)
def _suffixes() -> tldextract.TLDExtract:
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)  # the bundled list: no network
