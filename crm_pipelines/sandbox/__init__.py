"""A local CRM that speaks the real wire APIs of Salesforce, HubSpot and Dynamics 365.

The official clients (simple-salesforce, hubspot-api-client, msal + requests) run unchanged
against it, so tests, the quickstart demo, benchmarks and fault drills need no real CRM.
"""
