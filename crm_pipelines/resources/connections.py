"""The CRM resource for the active CRM, bound to environment variables.

Which CRM is active is the integration config's choice; how to reach it (hosts, app ids,
secrets) is the environment's. Required secrets are bound with ``EnvVar`` so Dagster never
shows them and a run without them fails naming the variable to set.
"""

import os

import dagster as dg

from crm_pipelines.resources.crm import CrmResource
from crm_pipelines.resources.custom_crm import custom_crm_resource
from crm_pipelines.resources.dynamics import DynamicsResource
from crm_pipelines.resources.hubspot import HubSpotResource
from crm_pipelines.resources.pipedrive import PipedriveResource
from crm_pipelines.resources.salesforce import SalesforceResource
from crm_pipelines.resources.tribecrm import TribeCrmResource
from crm_pipelines.resources.zoho import ZohoResource

# Variable names per CRM, documented in the README.
ENVIRONMENT = {
    "salesforce": {"login_url": "SALESFORCE_LOGIN_URL", "client_id": "SALESFORCE_CLIENT_ID",
                   "client_secret": "SALESFORCE_CLIENT_SECRET", "username": "SALESFORCE_USERNAME",
                   "password": "SALESFORCE_PASSWORD", "security_token": "SALESFORCE_SECURITY_TOKEN"},
    "hubspot": {"access_token": "HUBSPOT_ACCESS_TOKEN", "host": "HUBSPOT_HOST", "ca_bundle": "HUBSPOT_CA_BUNDLE"},
    "dynamics": {"environment_url": "DYNAMICS_ENVIRONMENT_URL", "tenant_id": "DYNAMICS_TENANT_ID",
                 "client_id": "DYNAMICS_CLIENT_ID", "client_secret": "DYNAMICS_CLIENT_SECRET",
                 "authority_host": "DYNAMICS_AUTHORITY_HOST", "token_cache_path": "DYNAMICS_TOKEN_CACHE_PATH",
                 "token_cache_key": "DYNAMICS_TOKEN_CACHE_KEY"},
    "pipedrive": {"api_token": "PIPEDRIVE_API_TOKEN", "base_url": "PIPEDRIVE_BASE_URL",
                  "ca_bundle": "PIPEDRIVE_CA_BUNDLE"},
    "zoho": {"client_id": "ZOHO_CLIENT_ID", "client_secret": "ZOHO_CLIENT_SECRET",
             "refresh_token": "ZOHO_REFRESH_TOKEN", "accounts_url": "ZOHO_ACCOUNTS_URL",
             "api_domain": "ZOHO_API_DOMAIN", "ca_bundle": "ZOHO_CA_BUNDLE",
             "token_cache_path": "ZOHO_TOKEN_CACHE_PATH", "token_cache_key": "ZOHO_TOKEN_CACHE_KEY"},
    "tribecrm": {"api_key": "TRIBECRM_API_KEY", "base_url": "TRIBECRM_BASE_URL", "ca_bundle": "TRIBECRM_CA_BUNDLE",
                 "enginy_id_label": "TRIBECRM_ENGINY_ID_LABEL"},
}
REQUIRED = {"salesforce": {"client_id", "client_secret"}, "hubspot": {"access_token"},
            "dynamics": {"environment_url", "tenant_id", "client_id", "client_secret"}, "pipedrive": {"api_token"},
            "zoho": {"client_id", "client_secret", "refresh_token"}, "tribecrm": {"api_key"}}
RESOURCES: dict[str, type[CrmResource]] = {
    "salesforce": SalesforceResource, "hubspot": HubSpotResource, "dynamics": DynamicsResource,
    "pipedrive": PipedriveResource, "zoho": ZohoResource, "tribecrm": TribeCrmResource}


def crm_resource(crm: str, environment: str = "production") -> CrmResource:
    """The resource for ``crm``: required fields from EnvVar, optional ones only when set."""
    if crm == "custom":  # its variables are named by the API description it reads
        return custom_crm_resource()
    fields: dict[str, object] = {}
    for field, variable in ENVIRONMENT[crm].items():
        if field in REQUIRED[crm] or os.environ.get(variable):
            fields[field] = dg.EnvVar(variable)
    if crm == "salesforce":
        fields["domain"] = "test" if environment == "sandbox" else "login"
    return RESOURCES[crm](**fields)
