"""String literals of the CRMs' query languages: the one place a value enters a query.

Each CRM's facts name its language (``CrmFacts.query_language``); its client quotes every value it
splices into a query with the helper of that language here, and tests/crms/test_query_literals.py
reads awkward values back through each emulator's parser.
"""

from collections.abc import Callable

from simple_salesforce.format import quote_soql_value


def soql_string(value: str) -> str:
    """A SOQL string literal (Salesforce), escaped as simple-salesforce escapes it."""
    return quote_soql_value(str(value))


def odata_string(value: str) -> str:
    """An OData v4 string literal (Dataverse, TribeCRM): single quotes doubled. In a URL path
    (an alternate key) or a query it still needs percent-encoding, which the HTTP layer does."""
    return "'" + str(value).replace("'", "''") + "'"


def coql_string(value: str) -> str:
    """A COQL string literal (Zoho CRM): backslash and single quote escaped by a backslash."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


# By the language a CRM's facts declare; HubSpot's search filters, Pipedrive's search term and the
# Custom API's parameters are JSON or query parameters, which need no quoting of their own.
STRING_LITERALS: dict[str, Callable[[str], str]] = {"soql": soql_string, "odata": odata_string, "coql": coql_string}
