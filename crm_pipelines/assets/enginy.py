"""Source assets: each Enginy table copied into the warehouse as ``enginy_<table>``."""

from datetime import datetime
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import Field

from crm_pipelines.enginy.schema import TABLES
from crm_pipelines.resources.enginy import EnginyDatabase
from crm_pipelines.resources.warehouse import ROWS_REPLACED_BY

ENGINY_GROUP = "enginy"


class EnginyCopyScope(dg.Config):
    only_changed_since: str = Field(
        "", description="ISO timestamp: copy only the rows updated after it, in place of their earlier copies "
                        "(the Enginy change sensor sets it; a nightly run copies everything again, deletions "
                        "included); empty: the whole table")


def _metadata(frame: pd.DataFrame) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "dagster/column_schema": dg.TableSchema(columns=[dg.TableColumn(c, str(t)) for c, t in frame.dtypes.items()]),
        "preview": dg.MetadataValue.md(frame.head(5).to_markdown(index=False) if len(frame) else "(empty)"),
    }
    if "updated_at" in frame and len(frame):
        metadata["latest_update"] = dg.MetadataValue.timestamp(frame["updated_at"].max().to_pydatetime())
    return metadata


def _enginy_asset(table_name: str, description: str) -> dg.AssetsDefinition:
    @dg.asset(name=f"enginy_{table_name}", group_name=ENGINY_GROUP, description=description,
              kinds={"sql", "pandas"}, io_manager_key="warehouse_io_manager")
    def _load(context: dg.AssetExecutionContext, enginy: EnginyDatabase) -> dg.Output[pd.DataFrame]:
        frame = enginy.read(table_name)
        context.log.info("read %d rows from Enginy table %s", len(frame), table_name)
        return dg.Output(frame, metadata=_metadata(frame))

    return _load


def _changing_enginy_asset(table_name: str, description: str) -> dg.AssetsDefinition:
    """A table with updated_at, which the Enginy change sensor watches: its runs copy only the rows
    that changed, so a run after a thousand edits reads and writes a thousand rows, not a million."""

    @dg.asset(name=f"enginy_{table_name}", group_name=ENGINY_GROUP, description=description,
              kinds={"sql", "pandas"}, io_manager_key="warehouse_io_manager")
    def _load(context: dg.AssetExecutionContext, config: EnginyCopyScope,
              enginy: EnginyDatabase) -> dg.Output[pd.DataFrame]:
        since = config.only_changed_since
        frame = enginy.read(table_name, datetime.fromisoformat(since) if since else None)
        context.log.info("read %d rows %sfrom Enginy table %s", len(frame),
                         f"updated after {since} " if since else "", table_name)
        if not since:
            return dg.Output(frame, metadata=_metadata(frame))
        return dg.Output(frame, metadata={**_metadata(frame), ROWS_REPLACED_BY: "id", "rows_copied": len(frame),
                                          "scope": f"rows updated after {since}"})

    return _load


enginy_assets = [
    (_changing_enginy_asset if "updated_at" in table.c else _enginy_asset)(
        table.name, f"The Enginy {table.name.replace('_', ' ')} table, as read from the Enginy database.")
    for table in TABLES
]
