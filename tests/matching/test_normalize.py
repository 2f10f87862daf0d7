"""Each normalisation case the identifier rules depend on, shown on plain values."""

import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from crm_pipelines.matching import normalize as n


@pytest.mark.parametrize("a, b", [
    ("José García", "JOSE GARCIA"),  # case and accents
    ("  Ana   Isabel ", "Ana Isabel"),  # whitespace collapsed and trimmed
    ("O'Brien", "OBrien"),  # apostrophes dropped
    ("O’Brien", "o'brien"),  # typographic apostrophe
    ("García-López", "Garcia Lopez"),  # hyphen is a separator
    ("Smith.", "Smith"),  # stray punctuation
    ("Weiß", "WEISS"),  # full case folding, not just lower()
    ("Søren Łukasz", "Soren Lukasz"),  # letters with a stroke, not an accent
    ("ﬁona", "Fiona"),  # NFKC: ligature
    ("Ｊｏｈｎ", "John"),  # NFKC: full-width letters
    ("Anne\u00a0Marie", "Anne Marie"),  # no-break space
])
def test_person_names_that_differ_only_in_spelling_are_equal(a, b):
    assert n.person_name(a) == n.person_name(b) is not None


@pytest.mark.parametrize("a, b", [("Jon", "Jonathan"), ("Anna", "Ana"), ("Van der Berg", "Vanderberg")])
def test_person_names_that_are_different_names_stay_different(a, b):
    assert n.person_name(a) != n.person_name(b)


@pytest.mark.parametrize("a, b", [
    ("Acme Inc.", "ACME, Inc"), ("Acme Incorporated", "Acme"), ("Acme Corp", "Acme Corporation"),
    ("Acme LLC", "Acme L.L.C."), ("Acme Ltd", "Acme Limited"), ("Acme PLC", "Acme P.L.C."),
    ("Acme GmbH", "Acme GMBH"), ("Acme AG", "Acme A.G."), ("Acme GmbH & Co. KG", "Acme GmbH & Co KG"),
    ("Acme S.L.", "Acme Sociedad Limitada"), ("Acme S.A.", "Acme SA"), ("Acme SARL", "Acme S.A.R.L."),
    ("Acme SAS", "Acme S.A.S."), ("Acme B.V.", "Acme BV"), ("Acme N.V.", "Acme NV"),
    ("Acme S.p.A.", "Acme SpA"), ("Acme Pty Ltd", "Acme Pty. Ltd."),
    ("Brand & Co", "Brand and Co"), ("Smith & Sons", "Smith and Sons"),
    ("The Acme Group", "Acme Group"), ("Nüñez Labs", "NUNEZ LABS"), ("  Zentor   Labs ", "Zentor Labs"),
])
def test_company_names_equal_without_legal_suffix_ampersand_or_leading_the(a, b):
    assert n.company_name(a) == n.company_name(b) is not None


def test_a_company_name_is_never_stripped_to_nothing():
    """A name that is all legal form or article keeps its first word rather than matching every
    other such name as blank."""
    assert n.company_name("Limited") == "limited"
    assert n.company_name("The") == "the"
    assert n.company_name("Smith & Sons Ltd") == "smith and sons"


@pytest.mark.parametrize("value", ["acme.com", "www.acme.com", "https://www.acme.com/", "http://acme.com/about?x=1",
                                   "ACME.COM", "jane.doe@acme.com", "shop.acme.com:8080/cart", "acme.com."])
def test_domains_from_bare_names_urls_and_emails(value):
    assert n.domain(value) == "acme.com"


def test_a_domain_keeps_a_multi_label_public_suffix():
    assert n.domain("https://www.acme.co.uk/") == "acme.co.uk"
    assert n.domain("acme.com.au") == "acme.com.au"


@pytest.mark.parametrize("value", ["localhost", "192.168.0.1", "co.uk", "", "not a domain", None])
def test_values_that_are_no_company_domain_are_blank(value):
    assert n.domain(value) is None


def test_any_domain_extension_compares_the_registered_name_without_its_suffix():
    names = {n.domain_any_extension(d) for d in ("acme.com", "acme.es", "www.acme.co.uk", "https://acme.com.au/x")}
    assert names == {"acme"}
    assert n.domain("acme.com") != n.domain("acme.es")


@pytest.mark.parametrize("url", [
    "https://www.linkedin.com/in/jane-doe",
    "https://es.linkedin.com/in/jane-doe",  # country subdomain
    "https://www.linkedin.com/in/jane-doe/",  # trailing slash
    "https://www.linkedin.com/in/jane-doe?originalSubdomain=uk&trk=public_profile",  # query string
    "http://www.linkedin.com/in/jane-doe",  # http
    "https://m.linkedin.com/in/jane-doe",  # mobile
    "https://www.linkedin.com/mwlite/in/jane-doe",  # LinkedIn Lite
    "linkedin.com/in/jane-doe",  # no scheme
    "https://www.linkedin.com/in/Jane-Doe/details/experience/",  # case and a sub-page
    " https://www.linkedin.com/in/jane-doe ",
])
def test_linkedin_profile_urls_reduce_to_one_slug(url):
    assert n.linkedin(url) == "in/jane-doe"


def test_linkedin_slugs_are_url_decoded():
    assert n.linkedin("https://www.linkedin.com/in/jos%C3%A9-garc%C3%ADa-1a2b3c/") == \
        n.linkedin("https://www.linkedin.com/in/josé-garcía-1a2b3c") == "in/josé-garcía-1a2b3c"


def test_company_pages_and_profiles_are_different_kinds():
    assert n.linkedin("https://www.linkedin.com/company/acme/about/") == "company/acme"
    assert n.linkedin("https://www.linkedin.com/in/acme") != n.linkedin("https://www.linkedin.com/company/acme")


@pytest.mark.parametrize("url", ["https://example.com/in/jane-doe", "https://notlinkedin.com/in/jane-doe",
                                 "https://evil.com/linkedin.com/in/jane-doe", "https://www.linkedin.com/feed/", ""])
def test_urls_that_are_not_a_linkedin_page_are_blank(url):
    assert n.linkedin(url) is None


def test_emails_compare_without_case_and_no_provider_tricks():
    assert n.email(" Jane.Doe@Acme.COM ") == n.email("jane.doe@acme.com") == "jane.doe@acme.com"
    assert n.email("mailto:jane@acme.com") == "jane@acme.com"
    # Dots and +tags mean something at most providers; they are kept.
    assert n.email("jane.doe@gmail.com") != n.email("janedoe@gmail.com")
    assert n.email("jane+crm@acme.com") != n.email("jane@acme.com")
    assert n.email("not-an-email") is None


def test_phone_numbers_compare_in_e164():
    assert n.phone("+1 (415) 555-0100") == n.phone("+1 415 555 0100") == "+14155550100"
    assert n.phone("415 555 0100") == "4155550100"  # no country code: the digits
    assert n.phone("12") is None


names = st.text(alphabet=st.characters(categories=["L", "Zs", "Pd", "Po"]), max_size=30)


@settings(max_examples=60, deadline=None)
@given(names)
def test_normalising_a_person_name_twice_changes_nothing(name):
    once = n.person_name(name)
    assert once is None or n.person_name(once) == once


@settings(max_examples=60, deadline=None)
@given(names)
@example("ᾳ")  # Greek's iota subscript: upper() makes it a letter (ΑΙ)
def test_case_and_compatibility_forms_never_change_a_person_name(name):
    assert n.person_name(unicodedata.normalize("NFKC", name).upper()) == n.person_name(name.lower())


@pytest.mark.parametrize("kind", ["text", "person_name", "company_name", "domain", "email", "linkedin"])
def test_missing_values_are_no_identifier_whatever_pandas_calls_them(kind):
    import numpy as np
    import pandas as pd

    assert n.normalize([None, np.nan, pd.NA, float("nan")], kind) == [None] * 4
    assert n.normalize(pd.Series(["x", None], dtype="string"), kind)[1] is None
