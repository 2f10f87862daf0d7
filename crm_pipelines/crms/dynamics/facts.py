"""Microsoft Dynamics 365 (Dataverse Web API), reached with an app registration through msal."""

from crm_pipelines.crms.facts import Capability, CrmFacts

FACTS = CrmFacts(
    name="dynamics", label="Microsoft Dynamics 365", client="crm_pipelines.crms.dynamics.client:DynamicsResource",
    environment={"environment_url": "DYNAMICS_ENVIRONMENT_URL", "tenant_id": "DYNAMICS_TENANT_ID",
                 "client_id": "DYNAMICS_CLIENT_ID", "client_secret": "DYNAMICS_CLIENT_SECRET",
                 "authority_host": "DYNAMICS_AUTHORITY_HOST", "token_cache_path": "DYNAMICS_TOKEN_CACHE_PATH",
                 "token_cache_key": "DYNAMICS_TOKEN_CACHE_KEY"},
    required=frozenset({"environment_url", "tenant_id", "client_id", "client_secret"}),
    capabilities=frozenset({Capability.ACTIVITIES, Capability.CHANGE_TRACKING}),
    # Writes per push call (a ledger save each): a hundred $batch requests of 100, parallel_batches at
    # once. Ten made a chunk end on a round of two requests and left the requests idle while the
    # ledger was saved (a million-contact HubSpot push of the same shape used 13 calls a second of 19).
    push_chunk=10_000,
    required_on_create={"contacts": ("lastname",), "companies": ("name",)},
    query_language="odata",
    emulators={"dynamics": "crm_pipelines.crms.dynamics.emulator"},
)
