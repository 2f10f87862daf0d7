"""Source assets: each Enginy table copied into the warehouse as ``enginy_<table>``."""

from datetime import datetime, timedelta
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import Field

from crm_pipelines.enginy.schema import TABLES
from crm_pipelines.resources.enginy import EnginyDatabase
from crm_pipelines.resources.warehouse import ROWS_REPLACED_BY, Warehouse

ENGINY_GROUP = "enginy"
# Days of campaign events a scoped run copies again before the newest one copied: the same window
# as the dbt var event_lookback_days, for the same reason (opens and replies land late).
EVENT_LOOKBACK_DAYS = 3


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


class EventCopyScope(dg.Config):
    lookback_days: int = Field(
        0, ge=0, description="above 0: copy only the events that occurred in the last this many days before the "
                             "newest event already copied, in place of their earlier copies (the Enginy change "
                             "sensor sets it; an event that lands later than that arrives with the nightly full "
                             "copy); 0: every event")


@dg.asset(name="enginy_campaign_events", group_name=ENGINY_GROUP, kinds={"sql", "pandas"},
          io_manager_key="warehouse_io_manager",
          description="The Enginy campaign events table, as read from the Enginy database.")
def enginy_campaign_events(context: dg.AssetExecutionContext, config: EventCopyScope, enginy: EnginyDatabase,
                           warehouse: Warehouse) -> dg.Output[pd.DataFrame]:
    """Events are only ever added (and a late one lands within days): a run the change sensor
    scopes copies the last few days of them, not every event of every campaign again."""
    newest = None
    if config.lookback_days and "enginy_campaign_events" in warehouse.table_names():
        newest = warehouse.query(f"SELECT max(occurred_at) AS newest FROM {warehouse.table('enginy_campaign_events')}")
        newest = newest["newest"].iloc[0] if len(newest) else None
    if newest is None or pd.isna(newest):
        frame = enginy.read("campaign_events")
        context.log.info("read %d rows from Enginy table campaign_events", len(frame))
        return dg.Output(frame, metadata=_metadata(frame))
    since = pd.Timestamp(newest)
    since = (since.tz_localize("UTC") if since.tzinfo is None else since.tz_convert("UTC")).to_pydatetime()
    since -= timedelta(days=config.lookback_days)
    frame = enginy.read("campaign_events", since, since_column="occurred_at")
    context.log.info("read %d events that occurred after %s from Enginy", len(frame), since.isoformat())
    return dg.Output(frame, metadata={**_metadata(frame), ROWS_REPLACED_BY: "id", "rows_copied": len(frame),
                                      "scope": f"events that occurred after {since.isoformat()}"})


enginy_assets = [
    (_changing_enginy_asset if "updated_at" in table.c else _enginy_asset)(
        table.name, f"The Enginy {table.name.replace('_', ' ')} table, as read from the Enginy database.")
    for table in TABLES if table.name != "campaign_events"
] + [enginy_campaign_events]
