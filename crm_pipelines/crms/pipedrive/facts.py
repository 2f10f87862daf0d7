"""Pipedrive: an API token, API v2 persons and organizations, v1 leads."""

from crm_pipelines.crms.facts import Capability, CrmFacts

FACTS = CrmFacts(
    name="pipedrive", label="Pipedrive", client="crm_pipelines.crms.pipedrive.client:PipedriveResource",
    environment={"api_token": "PIPEDRIVE_API_TOKEN", "base_url": "PIPEDRIVE_BASE_URL",
                 "ca_bundle": "PIPEDRIVE_CA_BUNDLE"},
    required=frozenset({"api_token"}),
    capabilities=frozenset({Capability.LEADS}),
    # A person needs a name too, which the client makes of the first and last name.
    required_on_create={"companies": ("name",)},
    emulators={"pipedrive": "crm_pipelines.crms.pipedrive.emulator"},
)
