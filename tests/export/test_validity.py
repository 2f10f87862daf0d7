"""One validator of email and web addresses for every CRM: the values each refuses, the values
it must let through (the forms Enginy's contract allows), and its pace on a million values."""

import time

import numpy as np
import pandas as pd
import pytest

from crm_pipelines.export.validity import is_email, is_url, valid_emails, valid_urls

GOOD_EMAILS = ["john.doe@example.com", "a.b+tag@sub.example.co.uk", "o'neil@acme.io", "JÖRG@müller.de",
               "x_y-z@xn--mller-kva.de"]
BAD_EMAILS = ["john.doe@@example.com", "john@localhost", "john@example", "john@example.zzz", ".john@example.com",
              "john..doe@example.com", "john doe@example.com", "john@-acme.com", "john@acme-.com", "john@acme.com.",
              "@example.com", "john@", "x" * 65 + "@example.com", "a@" + "b" * 250 + ".com", ""]
GOOD_URLS = ["https://www.linkedin.com/in/john-doe/", "es.linkedin.com/in/john?trk=x", "acme.com", "HTTP://ACME.COM",
             "www.acme.com:8080/path#part", "https://xn--mller-kva.de/über"]
BAD_URLS = ["javascript:alert(1)", "javascript://acme.com/%0aalert(1)", "data:text/html,<b>x</b>", "ftp://acme.com",
            "http://localhost:8080", "http://10.0.0.1/", "acme", "not a url.com", "http://", "https://acme.com/a b",
            "http://user@evil.com", "https://acme.zzz", ""]


@pytest.mark.parametrize("value", GOOD_EMAILS)
def test_real_addresses_pass_internationalised_ones_too(value) -> None:
    assert is_email(value)


@pytest.mark.parametrize("value", BAD_EMAILS)
def test_malformed_addresses_and_addresses_without_a_public_domain_are_refused(value) -> None:
    assert not is_email(value)


@pytest.mark.parametrize("value", GOOD_URLS)
def test_web_addresses_pass_with_or_without_a_scheme(value) -> None:
    assert is_url(value)


@pytest.mark.parametrize("value", BAD_URLS)
def test_script_urls_other_schemes_and_hosts_that_are_no_public_domain_are_refused(value) -> None:
    assert not is_url(value)


def test_a_column_is_answered_value_by_value_and_a_missing_value_is_not_valid() -> None:
    column = pd.Series(["ada@acme.com", None, "john@localhost", np.nan, "bo@acme.com"], dtype=object)
    assert valid_emails(column).tolist() == [True, False, False, False, True]
    assert valid_urls(pd.Series(["acme.com", None], dtype="str")).tolist() == [True, False]


def test_a_million_values_are_checked_in_a_couple_of_seconds() -> None:
    n = 1_000_000
    domains = np.random.default_rng(0).choice(["example.com", "acme.co.uk", "localhost", "x@y.io"], n)
    emails = pd.Series([f"person.{i}@{d}" for i, d in enumerate(domains)], dtype="str")
    urls = pd.Series([f"https://www.linkedin.com/in/person-{i}/" for i in range(n)], dtype="str")
    started = time.perf_counter()
    ok = valid_emails(emails)
    valid_urls(urls)
    # About a second each on one core; the bound leaves room for a loaded CI machine.
    assert time.perf_counter() - started < 6
    assert ok.sum() == np.isin(domains, ["example.com", "acme.co.uk"]).sum()
