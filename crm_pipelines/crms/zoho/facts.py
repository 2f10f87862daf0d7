"""Zoho CRM: OAuth refresh token, API v7 modules, upsert, COQL."""

from crm_pipelines.crms.facts import Capability, CrmFacts

FACTS = CrmFacts(
    name="zoho", label="Zoho CRM", client="crm_pipelines.crms.zoho.client:ZohoResource",
    environment={"client_id": "ZOHO_CLIENT_ID", "client_secret": "ZOHO_CLIENT_SECRET",
                 "refresh_token": "ZOHO_REFRESH_TOKEN", "accounts_url": "ZOHO_ACCOUNTS_URL",
                 "api_domain": "ZOHO_API_DOMAIN", "ca_bundle": "ZOHO_CA_BUNDLE",
                 "token_cache_path": "ZOHO_TOKEN_CACHE_PATH", "token_cache_key": "ZOHO_TOKEN_CACHE_KEY"},
    required=frozenset({"client_id", "client_secret", "refresh_token"}),
    capabilities=frozenset({Capability.LEADS}),
    # Zoho's mandatory fields of the Contacts, Leads and Accounts modules.
    required_on_create={"contacts": ("Last_Name",), "leads": ("Last_Name",), "companies": ("Account_Name",)},
    query_language="coql",
    emulators={"zoho": "crm_pipelines.crms.zoho.emulator"},
)
