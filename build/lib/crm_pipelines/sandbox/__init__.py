"""The sandbox CRM's kernel: one HTTPS server, its store, faults, call counts and TLS, serving the
emulator of every CRM the registry lists (crms/<crm>/emulator: the real wire APIs of Salesforce,
HubSpot, Dynamics 365, Pipedrive, Zoho CRM and TribeCRM, and two in-house APIs for the Custom CRM).

The official clients (simple-salesforce, hubspot-api-client, msal + requests) run unchanged
against it, so tests, the quickstart demo, benchmarks and fault drills need no real CRM.
"""
