"""The integration config as a resource, so assets read the same validated config the code
location was loaded with."""

import dagster as dg
from pydantic import Field

from crm_pipelines.config import IntegrationConfig, load_config


class IntegrationSettings(dg.ConfigurableResource):
    """The four setup steps (CRM_PIPELINES_CONFIG; default: the bundled Salesforce example)."""

    config_path: str = Field("", description="path of the integration config YAML; empty: the bundled example")

    def load(self) -> IntegrationConfig:
        return load_config(self.config_path or None)
