"""What the CRM benchmarks share: the sandbox in a thread, and a resource for each of its CRMs."""

import os
import tempfile

from crm_pipelines.crms.base import CrmResource
from crm_pipelines.crms.dynamics.client import DynamicsResource
from crm_pipelines.crms.hubspot.client import HubSpotResource
from crm_pipelines.crms.salesforce.client import SalesforceResource
from crm_pipelines.crms.dynamics import emulator as dynamics
from crm_pipelines.crms.hubspot import emulator as hubspot
from crm_pipelines.sandbox.app import SandboxContext
from crm_pipelines.sandbox.server import RunningSandbox, start_in_thread


def start_sandbox() -> RunningSandbox:
    running = start_in_thread(SandboxContext(), tls_dir=tempfile.mkdtemp())
    os.environ["REQUESTS_CA_BUNDLE"] = str(running.tls.ca_bundle)
    # Production HubSpot allows 190 calls per 10 s: a bench would only measure the waiting.
    running.ctx.crm_settings("hubspot").update({"burst_limit": None, "search_per_second": None})
    return running


def resources(running: RunningSandbox, **salesforce_options: int) -> dict[str, CrmResource]:
    base = running.base_url
    return {
        "salesforce": SalesforceResource(login_url=base, client_id="sandbox-client", client_secret="sandbox-secret",
                                         **salesforce_options),
        "hubspot": HubSpotResource(access_token=hubspot.ACCESS_TOKEN, host=base, ca_bundle=str(running.tls.ca_bundle)),
        "dynamics": DynamicsResource(environment_url=base, tenant_id=dynamics.TENANT_NAME, client_id=dynamics.CLIENT_ID,
                                     client_secret=dynamics.CLIENT_SECRET, authority_host=base),
    }
