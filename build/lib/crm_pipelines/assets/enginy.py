"""Source assets: each Enginy table copied into the warehouse as ``enginy_<table>``."""


import dagster as dg
import pandas as pd

from crm_pipelines.enginy.schema import TABLES
from crm_pipelines.resources.enginy import EnginyDatabase

ENGINY_GROUP = "enginy"


def _enginy_asset(table_name: str, description: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"enginy_{table_name}",
        group_name=ENGINY_GROUP,
        description=description,
        kinds={"sql", "pandas"},
        io_manager_key="warehouse_io_manager",
    )
    def _load(context: dg.AssetExecutionContext, enginy: EnginyDatabase) -> dg.Output[pd.DataFrame]:
        frame = enginy.read(table_name)
        metadata: dict[str, dg.RawMetadataValue] = {
            "dagster/column_schema": dg.TableSchema(
                columns=[dg.TableColumn(c, str(t)) for c, t in frame.dtypes.items()]),
            "preview": dg.MetadataValue.md(frame.head(5).to_markdown(index=False) if len(frame) else "(empty)"),
        }
        if "updated_at" in frame and len(frame):
            metadata["latest_update"] = dg.MetadataValue.timestamp(frame["updated_at"].max().to_pydatetime())
        context.log.info("read %d rows from Enginy table %s", len(frame), table_name)
        return dg.Output(frame, metadata=metadata)

    return _load


enginy_assets = [
    _enginy_asset(table.name, f"The Enginy {table.name.replace('_', ' ')} table, as read from the Enginy database.")
    for table in TABLES
]
