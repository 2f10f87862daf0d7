"""Toybook, a CRM that exists only in the tests: it shows that a CRM is its folder and one
registration — here the CRM_PIPELINES_CRMS variable, in the package a line of crms/registry.py."""

from crm_pipelines.crms.facts import CrmFacts

FACTS = CrmFacts(
    name="toybook", label="Toybook", client="tests.crms.toy.client:ToybookResource",
    environment={"api_key": "TOYBOOK_API_KEY", "base_url": "TOYBOOK_BASE_URL"},
    required=frozenset({"api_key", "base_url"}),
    required_on_create={"contacts": ("surname",)},
    emulators={"toybook": "tests.crms.toy.emulator"},
)
