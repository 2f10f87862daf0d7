"""The integration config as a resource, so assets read the same validated config the code
location was loaded with."""

from pathlib import Path

import dagster as dg
from pydantic import Field

from crm_pipelines.config import DEFAULT_CONFIG, IntegrationConfig, load_config


class IntegrationSettings(dg.ConfigurableResource):
    """The four setup steps (CRM_PIPELINES_CONFIG; default: the bundled Salesforce example)."""

    config_path: str = Field("", description="path of the integration config YAML; empty: the bundled example")

    def path(self) -> Path:
        """The file the config is read from (the report names it)."""
        return Path(self.config_path) if self.config_path else DEFAULT_CONFIG

    def load(self) -> IntegrationConfig:
        return load_config(self.path())
