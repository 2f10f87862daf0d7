"""TribeCRM: an API key, its OData API of persons, organizations and employments."""

from crm_pipelines.crms.facts import CrmFacts

FACTS = CrmFacts(
    name="tribecrm", label="TribeCRM", client="crm_pipelines.crms.tribecrm.client:TribeCrmResource",
    environment={"api_key": "TRIBECRM_API_KEY", "base_url": "TRIBECRM_BASE_URL", "ca_bundle": "TRIBECRM_CA_BUNDLE",
                 "enginy_id_label": "TRIBECRM_ENGINY_ID_LABEL"},
    required=frozenset({"api_key"}),
    query_language="odata",
    emulators={"tribecrm": "crm_pipelines.crms.tribecrm.emulator"},
)
