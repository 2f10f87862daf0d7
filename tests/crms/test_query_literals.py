"""Every query language a registered CRM declares: a value quoted by crms/wire/query_literals.py
reads back as itself through the emulator's parser of that language, so a name such as O'Brien
finds its record and cannot change the query around it."""

import pytest

from crm_pipelines.crms import registry
from crm_pipelines.crms.salesforce.emulator import soql
from crm_pipelines.crms.wire.query_literals import STRING_LITERALS
from crm_pipelines.crms.zoho.emulator import coql
from crm_pipelines.sandbox import odata

AWKWARD = ["O'Brien", "''", "back\\slash", "ends with \\", "\\'", "x' or name != 'y", "50% _off", 'say "hi"',
           "new\nline", "Zoë Ångström 名前", ""]


def _soql_finds(literal: str, value: str) -> bool:
    where = soql.parse(f"SELECT Id FROM Contact WHERE LastName = {literal}").where
    return where[0] == "cmp" and where[3].value == value


def _odata_finds(literal: str, value: str) -> bool:
    matches = odata.compile_filter(f"lastname eq {literal}", lambda name: True)
    return matches({"lastname": value}) and not matches({"lastname": value + "x"})


def _coql_finds(literal: str, value: str) -> bool:
    query = coql.parse(f"select id from Contacts where Last_Name = {literal}")
    found, _ = coql.run(query, [{"id": "1", "Last_Name": value}, {"id": "2", "Last_Name": value + "x"}])
    return [row["id"] for row in found] == ["1"]


# The emulator's parser of each language (the sandbox speaks them as the CRMs do).
FINDS = {"soql": _soql_finds, "odata": _odata_finds, "coql": _coql_finds}
LANGUAGES = sorted({f.query_language for f in registry.FACTS.values() if f.query_language})


def test_every_declared_query_language_has_one_quoting_helper() -> None:
    assert LANGUAGES and set(LANGUAGES) <= set(STRING_LITERALS), \
        "a CRM's facts declare a query_language that crms/wire/query_literals.py cannot quote"


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("value", AWKWARD)
def test_a_quoted_value_reads_back_as_itself(language: str, value: str) -> None:
    assert FINDS[language](STRING_LITERALS[language](value), value)
