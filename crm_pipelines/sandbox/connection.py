"""How the pipeline reaches a running sandbox: the environment its CRM resources read."""

from crm_pipelines.sandbox.server import RunningSandbox


def client_environment(crm: str, sandbox: RunningSandbox) -> dict[str, str]:
    """Environment variables (see crm_pipelines.resources.connections) pointing at the sandbox."""
    base = sandbox.base_url
    if crm == "salesforce":
        from crm_pipelines.sandbox.salesforce import DEFAULTS

        return {"SALESFORCE_LOGIN_URL": base, "SALESFORCE_CLIENT_ID": DEFAULTS["client_id"],
                "SALESFORCE_CLIENT_SECRET": DEFAULTS["client_secret"]}
    if crm == "hubspot":
        from crm_pipelines.sandbox.hubspot import ACCESS_TOKEN

        return {"HUBSPOT_HOST": base, "HUBSPOT_ACCESS_TOKEN": ACCESS_TOKEN,
                "HUBSPOT_CA_BUNDLE": str(sandbox.tls.ca_bundle.resolve())}
    if crm == "pipedrive":
        from crm_pipelines.sandbox.pipedrive import API_TOKEN

        return {"PIPEDRIVE_BASE_URL": base, "PIPEDRIVE_API_TOKEN": API_TOKEN,
                "PIPEDRIVE_CA_BUNDLE": str(sandbox.tls.ca_bundle.resolve())}
    if crm == "zoho":
        from crm_pipelines.sandbox import zoho

        return {"ZOHO_ACCOUNTS_URL": base, "ZOHO_API_DOMAIN": base, "ZOHO_CLIENT_ID": zoho.CLIENT_ID,
                "ZOHO_CLIENT_SECRET": zoho.CLIENT_SECRET, "ZOHO_REFRESH_TOKEN": zoho.REFRESH_TOKEN,
                "ZOHO_CA_BUNDLE": str(sandbox.tls.ca_bundle.resolve())}
    if crm == "tribecrm":
        from crm_pipelines.sandbox.tribecrm import API, API_KEY

        return {"TRIBECRM_BASE_URL": base + API, "TRIBECRM_API_KEY": API_KEY,
                "TRIBECRM_CA_BUNDLE": str(sandbox.tls.ca_bundle.resolve())}
    if crm in ("northwind", "oldbook"):  # in-house CRMs, connected as the Custom CRM
        from crm_pipelines.config import EXAMPLES_DIR
        from crm_pipelines.resources.custom_api import load_api
        from crm_pipelines.sandbox.custom import northwind, oldbook

        api_file = EXAMPLES_DIR / "custom_api" / f"{crm}.yaml"
        module = northwind if crm == "northwind" else oldbook
        return {"CUSTOM_CRM_API_FILE": str(api_file), "CUSTOM_CRM_BASE_URL": base + module.PREFIX,
                load_api(api_file).auth.env: module.API_KEY,
                "CUSTOM_CRM_CA_BUNDLE": str(sandbox.tls.ca_bundle.resolve())}
    from crm_pipelines.sandbox.dynamics import CLIENT_ID, CLIENT_SECRET, TENANT_NAME

    return {"DYNAMICS_ENVIRONMENT_URL": base, "DYNAMICS_AUTHORITY_HOST": base, "DYNAMICS_TENANT_ID": TENANT_NAME,
            "DYNAMICS_CLIENT_ID": CLIENT_ID, "DYNAMICS_CLIENT_SECRET": CLIENT_SECRET}
