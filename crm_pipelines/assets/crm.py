"""CRM snapshot assets: the CRM's contacts, companies, leads, users, associations and schema.

The three record snapshots are one step, ``crm_snapshots``, materialized together: each is the
CRM's current records, with no partitions (a snapshot is one table, and a partition per day would
show every day before the first sync as missing). A plain materialization is the incremental
sync: it pulls from the previous cursor (less an overlap) up to now. A backfill re-pulls the
records modified on a range of days, given in the run's config; ``full_refresh`` pulls everything
again. The cursor and the CRM's own change-feed state travel in the materialization metadata,
and each run records how many records it pulled per day it covered.
"""

import json
import time
from datetime import date, datetime, timezone

import dagster as dg
import pandas as pd

from crm_pipelines.canonical import CrmAssociation, CrmCompany, CrmContact, CrmUser
from crm_pipelines.crms import registry
from crm_pipelines.crms.base import CrmResource
from crm_pipelines.config import IntegrationConfig
from crm_pipelines.crms.facts import Capability
from crm_pipelines.jobs import SNAPSHOTS, SNAPSHOTS_STEP
from crm_pipelines.progress import per_second
from crm_pipelines.resources.integration import IntegrationSettings
from crm_pipelines.resources.warehouse import Warehouse
from crm_pipelines.snapshot import Window, backfill_window, fill_company_names, refresh_snapshot
from crm_pipelines.sync_rules import matches

CRM_GROUP = "crm"
MODELS = {"companies": CrmCompany, "contacts": CrmContact, "leads": CrmContact}


class SnapshotConfig(dg.Config):
    full_refresh: bool = False
    """Pull every record again and replace the snapshots (also restarts the CRM's change feed)."""
    backfill_from: str | None = None
    """Backfill: re-pull the records modified from this UTC day (YYYY-MM-DD) on, and fold them in."""
    backfill_to: str | None = None
    """The last day of the backfill, YYYY-MM-DD (included); today when left out."""

    def window(self, now: datetime) -> Window | None:
        if self.backfill_from is None:
            if self.backfill_to is not None:
                raise dg.Failure("ops.crm_snapshots.config.backfill_to is set without backfill_from — fix: give the "
                                 "first day of the backfill in backfill_from (YYYY-MM-DD)")
            return None
        days = []
        for field in ("backfill_from", "backfill_to"):
            value = getattr(self, field)
            try:
                days.append(date.fromisoformat(value) if value else now.date())
            except ValueError:
                raise dg.Failure(f"ops.crm_snapshots.config.{field}: {value!r} is not a day — fix: write it as "
                                 "YYYY-MM-DD, e.g. 2026-03-01") from None
        try:
            return backfill_window(days[0], days[1], now)
        except ValueError as exc:
            raise dg.Failure(f"ops.crm_snapshots.config: {exc}") from None


def _previous(context: dg.AssetExecutionContext, key: dg.AssetKey) -> tuple[pd.Timestamp | None, dict]:
    event = context.instance.get_latest_materialization_event(key)
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
             settings: IntegrationConfig, obj: str) -> tuple[pd.DataFrame, dict]:
    started = time.monotonic()
    name = SNAPSHOTS[obj]
    client = crm.client()
    client.progress = context.log.info
    rules = getattr(settings.inbound_sync_rules, obj, None)
    tracked = registry.facts(settings.active_crm).can(Capability.CHANGE_TRACKING)
    cursor, state = _previous(context, dg.AssetKey(name))
    now = datetime.now(timezone.utc)
    backfill = config.window(now)
    refresh = refresh_snapshot(
        lambda since, until, st: client.pull(obj, since, until, st),
        _existing(warehouse, name, MODELS[obj]), cursor.to_pydatetime() if cursor is not None else None, state,
        now, backfill=backfill, full_refresh=config.full_refresh,
        keep=(lambda raw: matches(raw, rules)) if rules else None)
    context.log.info("%s: %s pull from %s: %d records (%d new, %d updated, %d deleted, %d already held; "
                     "%d left out by the sync rules) in %d API calls", obj, refresh.mode, refresh.since or "the start",
                     refresh.pulled, refresh.created, refresh.updated, refresh.deleted, refresh.unchanged,
                     refresh.excluded_by_rules, refresh.api_calls)
    metadata = {
        "mode": refresh.mode,
        # Where an incremental pull learns what changed: the CRM's change feed or a time window.
        "changes_from": "the CRM's change tracking" if tracked else "the records' modification time",
        "records_pulled": refresh.pulled, "records_unchanged": refresh.unchanged, "records_new": refresh.created,
        "records_updated": refresh.updated, "records_deleted": refresh.deleted,
        "records_excluded_by_sync_rules": refresh.excluded_by_rules,
        # Per day the pull covered (a backfill's days, or the days since the cursor): what it found.
        "records_by_day": dg.MetadataValue.json(refresh.by_day) if refresh.by_day else None,
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


SNAPSHOT_DESCRIPTIONS = {
    "companies": "CRM companies (Salesforce Accounts, HubSpot companies, Dataverse accounts).",
    "contacts": "CRM contacts, with the company name filled from crm_companies where the CRM holds only a reference.",
    "leads": "CRM leads (Salesforce Leads, Dataverse leads; HubSpot has none).",
}
HOW_TO_REFRESH = (
    " Materialized with crm_companies, crm_contacts and crm_leads together (one pull step). Materialize: "
    "an incremental sync from the last cursor less five minutes. Backfill: open the launchpad and set "
    "backfill_from (and backfill_to; today if left out) under ops.crm_snapshots.config to re-pull the records "
    "modified on those days; records_by_day in the metadata counts them per day. full_refresh: true pulls everything.")


@dg.multi_asset(
    name=SNAPSHOTS_STEP, group_name=CRM_GROUP, can_subset=False,
    specs=[dg.AssetSpec(name, description=SNAPSHOT_DESCRIPTIONS[obj] + HOW_TO_REFRESH, kinds={"pandas"})
           .with_io_manager_key("warehouse_io_manager") for obj, name in SNAPSHOTS.items()])
def crm_snapshots(context: dg.AssetExecutionContext, config: SnapshotConfig, crm: CrmResource, warehouse: Warehouse,
                  integration: IntegrationSettings):
    # In the order of SNAPSHOTS: contacts take their company names from the companies just pulled.
    settings, companies = integration.load(), None
    for obj, name in SNAPSHOTS.items():
        snapshot, metadata = _refresh(context, config, crm, warehouse, settings, obj)
        if obj == "companies":
            companies = snapshot
        elif obj == "contacts":
            snapshot = fill_company_names(snapshot, companies)
        yield dg.Output(snapshot, output_name=name, metadata=metadata)


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
                     "option_labels": list(f.option_labels), "unique": f.unique, "external_id": f.external_id,
                     "length": f.length}
                    for f in fields)
    schema = pd.DataFrame(rows)
    return dg.Output(schema, metadata={"fields": len(schema),
                                       "objects": dg.MetadataValue.json(schema.groupby("object").size().to_dict())})
