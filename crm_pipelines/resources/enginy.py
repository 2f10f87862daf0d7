"""The Enginy source database, read through SQLAlchemy at any URL."""

from datetime import datetime

import dagster as dg
import pandas as pd
from pydantic import Field

from crm_pipelines.enginy.database import changes_since, default_enginy_url, make_engine, read_table

ENGINY_URL_ENV = "ENGINY_DATABASE_URL"


class EnginyDatabase(dg.ConfigurableResource):
    """Where the outreach tool's contacts, companies and campaigns are read from."""

    url: str = Field(default_factory=default_enginy_url, description=(
        "SQLAlchemy URL of the Enginy database; default: the embedded data/enginy.sqlite"))

    def read(self, table: str, updated_since: datetime | None = None, since_column: str = "updated_at") -> pd.DataFrame:
        engine = make_engine(self.url)
        try:
            return read_table(engine, table, updated_since, since_column)
        finally:
            engine.dispose()

    def changes_since(self, table: str, since: datetime | None,
                      until: datetime | None = None) -> tuple[int, datetime | None]:
        """Rows of ``table`` updated after ``since`` (at or before ``until``), and the latest update among them."""
        engine = make_engine(self.url)
        try:
            return changes_since(engine, table, since, until)
        finally:
            engine.dispose()
