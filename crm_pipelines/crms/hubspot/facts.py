"""HubSpot: a private app's access token, CRM v3 objects, batch and search APIs."""

from crm_pipelines.crms.facts import Capability, CrmFacts

FACTS = CrmFacts(
    name="hubspot", label="HubSpot", client="crm_pipelines.crms.hubspot.client:HubSpotResource",
    environment={"access_token": "HUBSPOT_ACCESS_TOKEN", "host": "HUBSPOT_HOST", "ca_bundle": "HUBSPOT_CA_BUNDLE"},
    required=frozenset({"access_token"}),
    capabilities=frozenset({Capability.ACTIVITIES}),
    # Writes per push call (a ledger save each): a hundred batch calls of 100, parallel_batches at
    # once. Ten made a chunk end on a round of two calls and left the calls idle while the ledger
    # was saved: a million-contact HubSpot push ran at 13 calls a second of the 19 allowed.
    push_chunk=10_000,
    required_on_create={"companies": ("name",)},
    emulators={"hubspot": "crm_pipelines.crms.hubspot.emulator"},
)
