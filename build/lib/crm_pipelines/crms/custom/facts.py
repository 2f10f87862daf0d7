"""The Custom CRM (beta): any REST API that a YAML description (CUSTOM_CRM_API_FILE) explains.
In the sandbox two in-house CRMs of different styles stand for it, Northwind and Oldbook."""

from crm_pipelines.crms.facts import CrmFacts

FACTS = CrmFacts(
    name="custom", label="Custom CRM", client="crm_pipelines.crms.custom.client:custom_crm_resource",
    emulators={"northwind": "crm_pipelines.crms.custom.emulator.northwind",
               "oldbook": "crm_pipelines.crms.custom.emulator.oldbook"},
    description="Custom CRM (beta): the REST API the YAML file named by CUSTOM_CRM_API_FILE describes",
)
