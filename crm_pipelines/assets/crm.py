"""CRM snapshot assets: the CRM's contacts, companies, leads, users, associations and schema.

Snapshots are partitioned by day of last modification so a data engineer can backfill any
range from the UI (one run per range: a snapshot is one table, folded in order). The latest
partition is the incremental sync: it pulls from the previous cursor (less an overlap) up to
now. The cursor and the CRM's own change-feed state travel in the materialization metadata.
"""

import json
import time

import dagster as dg
import pandas as pd

from crm_pipelines.canonical import CrmAssociation, CrmCompany, CrmContact, CrmUser
from crm_pipelines.crms import registry
from crm_pipelines.crms.base import CrmResource
from crm_pipelines.crms.facts import Capability
from crm_pipelines.progress import per_second
from crm_pipelines.resources.integration import IntegrationSettings
from crm_pipelines.resources.warehouse import Warehouse
from crm_pipelines.snapshot import fill_company_names, refresh_snapshot
from crm_pipelines.sync_rules import matches

CRM_GROUP = "crm"


class SnapshotConfig(dg.Config):
    full_refresh: bool = False
    """Pull every record again and replace the snapshot (also restarts the CRM's change feed)."""


def _previous(context: dg.AssetExecutionContext) -> tuple[pd.Timestamp | None, dict]:
    event = context.instance.get_latest_materialization_event(context.asset_key)
    if event is None or event.asset_materialization is None:
        return None, {}
    metadata = event.asset_materialization.metadata
    cursor = metadata.get("cursor_after")
    state = metadata.get("sync_state")
    # Timestamp metadata is float seconds: back to whole microseconds, the CRMs' finest grain.
    return (pd.Timestamp(round(cursor.value * 1_000_000), unit="us", tz="UTC") if cursor and cursor.value else None,
            json.loads(state.value) if state else {})


def _existing(warehouse: Warehouse, table: str, model) -> pd.DataFrame | None:
    if table not in warehouse.table_names():
        return None
    # ``raw`` stays the JSON text it is stored as: the fold only carries it along, and parsing a
    # million records' fields into dicts cost gigabytes and seconds on every incremental run.
    return model.validate(warehouse.read_table(table))


def _refresh(context: dg.AssetExecutionContext, config: SnapshotConfig, crm: CrmResource, warehouse: Warehouse,
             integration: IntegrationSettings, obj: str, model) -> tuple[pd.DataFrame, dict]:
    started = time.monotonic()
    name = context.asset_key.path[-1]
    client = crm.client()
    client.progress = context.log.info
    config_now = integration.load()
    rules = getattr(config_now.inbound_sync_rules, obj, None)
    tracked = registry.facts(config_now.active_crm).can(Capability.CHANGE_TRACKING)
    cursor, state = _previous(context)
    window = context.partition_time_window
    last = context.assets_def.partitions_def.get_last_partition_window()
    context.log.info("pulling %s from %s for %s – %s", obj, client.crm, window.start, window.end)
    refresh = refresh_snapshot(
        lambda since, until, st: client.pull(obj, since, until, st),
        _existing(warehouse, name, model), cursor.to_pydatetime() if cursor is not None else None, state,
        window.start, window.end, includes_latest=last is not None and window.end >= last.end,
        full_refresh=config.full_refresh, keep=(lambda raw: matches(raw, rules)) if rules else None)
    context.log.info("%s: %d records pulled (%d new, %d updated, %d deleted, %d already held) in %d API calls",
                     obj, refresh.pulled, refresh.created, refresh.updated, refresh.deleted, refresh.unchanged,
                     refresh.api_calls)
    metadata = {
        "mode": refresh.mode,
        # Where an incremental pull learns what changed: the CRM's change feed or a time window.
        "changes_from": "the CRM's change tracking" if tracked else "the records' modification time",
        "records_pulled": refresh.pulled, "records_unchanged": refresh.unchanged, "records_new": refresh.created, "records_updated": refresh.updated,
        "records_deleted": refresh.deleted, "records_excluded_by_sync_rules": refresh.excluded_by_rules,
        "api_calls": refresh.api_calls, "pages": refresh.pages,
        "pull_since": str(refresh.since) if refresh.since else "everything",
        "pull_until": str(refresh.until) if refresh.until else "now",
        "cursor_before": dg.MetadataValue.timestamp(refresh.cursor_before) if refresh.cursor_before else None,
        "cursor_after": dg.MetadataValue.timestamp(refresh.cursor_after) if refresh.cursor_after else None,
        "sync_state": json.dumps(refresh.state),
        "seconds": round(time.monotonic() - started, 2),
        "records_per_second": round(per_second(refresh.pulled, started), 1),
        "snapshot_records": len(refresh.snapshot),
    }
    return refresh.snapshot, {k: v for k, v in metadata.items() if v is not None}


def build_crm_assets(start_date: str) -> list[dg.AssetsDefinition]:
    """The snapshot assets, partitioned daily from ``start_date`` (the backfill horizon)."""
    partitions = dg.DailyPartitionsDefinition(start_date=start_date, end_offset=1)
    common = dict(group_name=CRM_GROUP, partitions_def=partitions, backfill_policy=dg.BackfillPolicy.single_run(),
                  io_manager_key="warehouse_io_manager", kinds={"pandas"})

    @dg.asset(description="CRM companies (Salesforce Accounts, HubSpot companies, Dataverse accounts).", **common)
    def crm_companies(context: dg.AssetExecutionContext, config: SnapshotConfig, crm: CrmResource,
                      warehouse: Warehouse, integration: IntegrationSettings) -> dg.Output[pd.DataFrame]:
        snapshot, metadata = _refresh(context, config, crm, warehouse, integration, "companies", CrmCompany)
        return dg.Output(snapshot, metadata=metadata)

    @dg.asset(description="CRM contacts, with the company name filled from crm_companies where the CRM "
                          "holds only a reference.", **common)
    def crm_contacts(context: dg.AssetExecutionContext, config: SnapshotConfig, crm: CrmResource,
                     warehouse: Warehouse, integration: IntegrationSettings,
                     crm_companies: pd.DataFrame) -> dg.Output[pd.DataFrame]:
        snapshot, metadata = _refresh(context, config, crm, warehouse, integration, "contacts", CrmContact)
        return dg.Output(fill_company_names(snapshot, crm_companies), metadata=metadata)

    @dg.asset(description="CRM leads (Salesforce Leads, Dataverse leads; HubSpot has none).", **common)
    def crm_leads(context: dg.AssetExecutionContext, config: SnapshotConfig, crm: CrmResource,
                  warehouse: Warehouse, integration: IntegrationSettings) -> dg.Output[pd.DataFrame]:
        snapshot, metadata = _refresh(context, config, crm, warehouse, integration, "leads", CrmContact)
        return dg.Output(snapshot, metadata=metadata)

    return [crm_companies, crm_contacts, crm_leads]


@dg.asset(group_name=CRM_GROUP, io_manager_key="warehouse_io_manager", kinds={"pandas"},
          description="CRM users who can own records and be credited with activities (full pull).")
def crm_users(crm: CrmResource) -> dg.Output[pd.DataFrame]:
    users = CrmUser.validate(crm.client().users())
    return dg.Output(users, metadata={"users": len(users), "active": int(users["is_active"].sum())})


@dg.asset(group_name=CRM_GROUP, io_manager_key="warehouse_io_manager", kinds={"pandas"}, deps=["crm_contacts"],
          description="Contact ↔ company links as the CRM holds them (the contact's primary company).")
def crm_associations(warehouse: Warehouse) -> dg.Output[pd.DataFrame]:
    # The three columns the links are made of, not the whole snapshot with every record's raw fields.
    contacts = warehouse.read_table("crm_contacts", ("crm_id", "account_id", "is_deleted"))
    live = contacts[~contacts["is_deleted"].astype(bool) & contacts["account_id"].notna()]
    links = CrmAssociation.validate(pd.DataFrame({
        "contact_id": live["crm_id"], "company_id": live["account_id"], "is_primary": True}))
    return dg.Output(links.reset_index(drop=True), metadata={"associations": len(links)})


@dg.asset(group_name=CRM_GROUP, io_manager_key="warehouse_io_manager", kinds={"pandas"},
          description="Fields of each CRM object as the CRM describes them: types, picklist values, "
                      "whether they can be created or updated. Mapping review checks against it.")
def crm_schema(crm: CrmResource) -> dg.Output[pd.DataFrame]:
    client = crm.client()
    rows = []
    for obj in ("contacts", "companies", "leads"):
        try:
            fields = client.describe(obj)
        except LookupError:  # the CRM has no such object (HubSpot leads)
            continue
        rows.extend({"object": obj, "field": f.name, "label": f.label, "type": f.type, "createable": f.createable,
                     "updateable": f.updateable, "required": f.required, "options": list(f.options),
                     "option_labels": list(f.option_labels), "unique": f.unique, "external_id": f.external_id}
                    for f in fields)
    schema = pd.DataFrame(rows)
    return dg.Output(schema, metadata={"fields": len(schema),
                                       "objects": dg.MetadataValue.json(schema.groupby("object").size().to_dict())})
