"""crm_activity_push: campaign events logged in the CRM as completed activities, after the record
push, so the contacts it created are there to log them on. The plan is
crm_pipelines.export.activities; the wire is each CRM client's ``log_activities``."""

import time

import dagster as dg
import pandas as pd

from crm_pipelines.assets.export import CRM_WRITES_POOL, EXPORT_GROUP, parse_json
from crm_pipelines.crms import registry
from crm_pipelines.config import IntegrationConfig
from crm_pipelines.export.activities import (
    ACTIVITY_COLUMNS, Attribution, crm_records, outcomes, plan_activities, run_activity_push, unlogged_events_sql,
)
from crm_pipelines.export.ledger import ACTIVITY_LEDGER, EXPORT_LEDGER, FINAL, empty_ledger
from crm_pipelines.progress import per_second
from crm_pipelines.crms.base import CrmResource
from crm_pipelines.crms.facts import Capability
from crm_pipelines.frames import is_in
from crm_pipelines.resources.integration import IntegrationSettings
from crm_pipelines.resources.warehouse import LedgerTable, Warehouse

ENGINY_TABLES = ("enginy_campaign_events", "enginy_campaign_steps", "enginy_campaigns", "enginy_identities",
                 "enginy_users")
RESULT_COLUMNS = [c for c in ACTIVITY_COLUMNS if c != "body"] + ["crm_activity_id"]


def _table(warehouse: Warehouse, name: str, empty: pd.DataFrame | None = None) -> pd.DataFrame:
    if name in warehouse.table_names():
        return warehouse.read_table(name)
    if empty is None:
        raise dg.Failure(f"the warehouse has no {name} table yet: materialize {name} first")
    return empty


def _attribution(config: IntegrationConfig, warehouse: Warehouse) -> Attribution:
    identities, users = warehouse.read_table("enginy_identities"), warehouse.read_table("enginy_users")
    crm_users = _table(warehouse, "crm_users", pd.DataFrame(columns=["crm_id", "email", "is_active"]))
    active = crm_users[crm_users["is_active"].astype(bool)] if len(crm_users) else crm_users
    return Attribution(
        config.user_mapping,
        identity_users={str(i): str(u) for i, u in zip(identities["id"], identities["user_id"]) if pd.notna(u)},
        enginy_user_emails=dict(zip(users["id"].astype(str), users["email"])),
        crm_user_by_email={str(e).lower(): str(i) for e, i in zip(active["email"], active["crm_id"]) if pd.notna(e)})


def _as_others(warehouse: Warehouse, batch: str, obj: str, contacts: list[str]) -> tuple[pd.Series, pd.DataFrame]:
    """Of ``contacts``, what the ``batch`` (of CRM object ``obj``) knows that contact_matches does
    not: whose create it skipped as the same person as another (Enginy id → the other's), and which
    CRM record it took people matching none to be, being one with someone matched (as match rows)."""
    none = pd.Series(dtype=object), pd.DataFrame(columns=["enginy_id", "outcome", "crm_id", "crm_object"])
    if batch not in warehouse.table_names() or "same_as" not in warehouse.column_names(batch):
        return none
    # Few rows are so: read them all, not the batch rows of every contact.
    rows = warehouse.query(
        f"SELECT b.enginy_id, b.same_as, b.crm_id FROM {warehouse.table(batch)} b WHERE b.same_as IS NOT NULL "
        f"OR (b.crm_id IS NOT NULL AND b.outcome = 'matched' AND b.enginy_id IN "
        f"(SELECT m.enginy_id FROM {warehouse.table('contact_matches')} m WHERE m.outcome <> 'matched'))")
    rows = rows[is_in(rows["enginy_id"].astype(str), pd.Series(contacts, dtype=object))]
    twins = rows[rows["same_as"].notna()]
    found = rows[rows["same_as"].isna()]
    return (pd.Series(twins["same_as"].astype(str).to_numpy(object), index=twins["enginy_id"].astype(str),
                      dtype=object),
            pd.DataFrame({"enginy_id": found["enginy_id"].astype(str), "outcome": "matched",
                          "crm_id": found["crm_id"].astype(str), "crm_object": obj}))


def _skipped(note: str) -> dg.Output[pd.DataFrame]:
    return dg.Output(pd.DataFrame(columns=RESULT_COLUMNS), "crm_activity_push", metadata={"skipped": note, "rows": 0})


# The activity ledger is written after every chunk of the push (see assets/export.py's ledgers).
@dg.multi_asset(
    group_name=EXPORT_GROUP, can_subset=False, pool=CRM_WRITES_POOL,
    deps=["crm_push_results", EXPORT_LEDGER, "contact_matches", "crm_users", *ENGINY_TABLES],
    outs={"crm_activity_push": dg.AssetOut(
              io_manager_key="warehouse_io_manager", kinds={"pandas"},
              description="The campaign events (emails sent, LinkedIn messages and invitations sent, calls) this "
                          "run dealt with — every one not logged before it: logged once as a completed activity on "
                          "the matched CRM contact or lead, credited to the campaign identity's CRM user, or "
                          "waiting (its contact is not in the CRM yet) for a later run. What earlier runs logged "
                          "is in activity_ledger."),
          ACTIVITY_LEDGER: dg.AssetOut(
              dagster_type=dg.Nothing, kinds={"pandas"}, is_required=False,
              description="Every activity the activity push intended, recorded before it is sent and its "
                          "outcome after, so each campaign event is logged in the CRM once.")})
def crm_activity_push(context: dg.AssetExecutionContext, crm: CrmResource, warehouse: Warehouse,
                      integration: IntegrationSettings):
    started = time.monotonic()
    config = integration.load()
    settings = config.activity_sync
    if not settings.enabled:
        yield _skipped("activity_sync.enabled is false in the integration config: no activity was sent")
        return
    if not registry.facts(config.active_crm).can(Capability.ACTIVITIES):
        yield _skipped(f"logging activities is not supported for {config.active_crm} yet: no activity was sent")
        return
    client = crm.client()
    client.progress = context.log.info
    ledger = LedgerTable(warehouse, ACTIVITY_LEDGER)
    logged_before = sum(n for status, n in ledger.status_counts().items() if status in FINAL)
    # Only the events not logged yet, and only their contacts' records: after the first sync a run
    # reads what is new or still waiting, not every event and match again.
    events = warehouse.query(unlogged_events_sql(warehouse.table("enginy_campaign_events"),
                                                 warehouse.table(ACTIVITY_LEDGER)))
    contacts = events["contact_id"].astype(str).drop_duplicates().tolist()
    # People a batch found to be the same person as another: their activities go on that one's record.
    known = [_as_others(warehouse, table, obj, contacts)
             for table, obj in (("contact_export_batch", "contacts"), ("lead_export_batch", "leads"))]
    twins = pd.concat([twin for twin, _ in known])
    people = list(dict.fromkeys([*contacts, *twins.astype(str)]))
    pushed = (parse_json(warehouse.rows_with_keys(EXPORT_LEDGER, "enginy_id", people))
              if EXPORT_LEDGER in warehouse.table_names() else empty_ledger())
    # A person both batches found once: the contact batch's record counts.
    found = pd.concat([found for _, found in known], ignore_index=True).drop_duplicates("enginy_id")
    matches = pd.concat([warehouse.rows_with_keys("contact_matches", "enginy_id", people), found], ignore_index=True)
    records = crm_records(matches, pushed, twins)
    planned = plan_activities(events, warehouse.read_table("enginy_campaign_steps"),
                              warehouse.read_table("enginy_campaigns"), records, settings,
                              _attribution(config, warehouse))
    calls_before = getattr(client, "api_calls", 0)
    facts = registry.facts(config.active_crm)
    chunk = client.activities_per_push if facts.can(Capability.BULK) else facts.push_chunk
    outcome = run_activity_push(client.log_activities, planned, ledger.read(planned["event_id"].tolist()),
                                ledger.save, chunk, context.log.info)
    results = outcomes(planned, outcome.ledger)[RESULT_COLUMNS]
    waiting = results[results["status"].eq("waiting")]
    statuses = ledger.status_counts()
    yield dg.Output(None, ACTIVITY_LEDGER, metadata={
        "dagster/row_count": sum(statuses.values()),
        "warehouse_table": dg.MetadataValue.text(f"{warehouse.schema}.{ACTIVITY_LEDGER}"),
        **{f"activities_{k}": v for k, v in statuses.items()}})
    yield dg.Output(results, "crm_activity_push", metadata={
        **{f"events_{k}": int(v) for k, v in results["status"].value_counts().items()},
        "logged_this_run": outcome.counts.get("created", 0),
        "logged_before": logged_before,
        "waiting_reasons": dg.MetadataValue.json(waiting["reason"].value_counts().to_dict()),
        "credited_by": dg.MetadataValue.json(results["owner_rule"].value_counts().to_dict()),
        "include_message_body": settings.include_message_body,
        "api_calls": getattr(client, "api_calls", 0) - calls_before,
        "activities_per_second": round(per_second(outcome.sent, started), 1),
        "seconds": round(time.monotonic() - started, 2)})
