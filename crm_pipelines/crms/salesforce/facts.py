"""Salesforce: OAuth client credentials (or username-password), REST, Bulk API 2.0."""

from crm_pipelines.crms.facts import Capability, CrmFacts

FACTS = CrmFacts(
    name="salesforce", label="Salesforce", client="crm_pipelines.crms.salesforce.client:SalesforceResource",
    environment={"login_url": "SALESFORCE_LOGIN_URL", "client_id": "SALESFORCE_CLIENT_ID",
                 "client_secret": "SALESFORCE_CLIENT_SECRET", "username": "SALESFORCE_USERNAME",
                 "password": "SALESFORCE_PASSWORD", "security_token": "SALESFORCE_SECURITY_TOKEN"},
    required=frozenset({"client_id", "client_secret"}),
    # A sandbox org logs in at test.salesforce.com, a production org at login.salesforce.com.
    settings=lambda environment: {"domain": "test" if environment == "sandbox" else "login"},
    capabilities=frozenset({Capability.LEADS, Capability.ACTIVITIES, Capability.BULK}),
    leads_may_be_people=True, duplicate_rules=True,
    push_chunk=200,  # the sObject Collections ceiling
    required_on_create={"contacts": ("LastName",), "leads": ("LastName", "Company"), "companies": ("Name",)},
    query_language="soql",
    emulators={"salesforce": "crm_pipelines.crms.salesforce.emulator"},
)
