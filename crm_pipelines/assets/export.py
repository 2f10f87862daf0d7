"""Export batches, the gates in front of them, and the push.

The batch assets show exactly what a push would do (each row: create, update of only the
changing fields, skip or reject, with its diff); blocking checks stop the push when a batch is
bad; ``crm_push_results`` pushes companies, then contacts (or Salesforce leads), through the
write ledger, so a re-run after any failure finishes without writing anything twice.
"""


import time
from pathlib import Path
from typing import Any, Literal, NamedTuple

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field

from crm_pipelines.assets.matching import changed_records
from crm_pipelines.config import IntegrationConfig
from crm_pipelines.export.associations import (REMOVED_ASSOCIATIONS, REMOVED_COLUMNS, link_created_companies,
                                               record_removed, removed_links, undo_batch)
from crm_pipelines.export.batch import Launch, Owners, build_batch
from crm_pipelines.export.batch_rules import (held_after_duplicate_refusal, identity_keys, known_by_enginy_id,
                                              known_in_the_other_object, leave_to_other_object, match_outcomes,
                                              matched_as_the_same, one_create_per_person,
                                              one_update_per_crm_record)
from crm_pipelines.export.dry_run import action_counts, read_dry_run, render_dry_run, write_dry_run
from crm_pipelines.export.gates import GATE_COLUMNS, expectation_suite_gates, rejection_gate, schema_gate
from crm_pipelines.export.in_doubt import records_written, superseded
from crm_pipelines.export.ledger import EXPORT_LEDGER, empty_ledger, write_ids
from crm_pipelines.export.push import outcomes, pushed_batches, run_push
from crm_pipelines.export.review import review_mapping, specs
from crm_pipelines.export.values import FieldSpec, is_empty
from crm_pipelines.enginy.quarantine import QUARANTINE_TABLE, as_rejections
from crm_pipelines.crms import registry
from crm_pipelines.crms.base import CrmResource
from crm_pipelines.crms.facts import Capability
from crm_pipelines.frames import is_in, lookup
from crm_pipelines.matching.own_id import ENGINY_ID_KEY
from crm_pipelines.matching.rules import company_rule, contact_rule
from crm_pipelines.progress import per_second
from crm_pipelines.resources.integration import IntegrationSettings
from crm_pipelines.resources.warehouse import Keys, LedgerTable, Warehouse, parse_json_columns

EXPORT_GROUP = "export"
# Every step that writes to the CRM. A deployment that sets the pool's limit (deploy/dagster.postgres.yaml:
# concurrency.pools.default_limit 1) runs one at a time across all runs: two pushes at once would
# each read the write ledger before the other recorded its writes, and both send them.
CRM_WRITES_POOL = "crm_writes"
SCOPE_EVERY_RECORD = "every Enginy record"
JSON_COLUMNS = ("fields", "diff", "writeback", "raw", "options", "option_labels")


class ExportLaunch(dg.Config):
    """The choices of the seeds' export modal, given as run config at launch."""

    sync_mode: Literal["upsert", "update_only", "create_only"] = "upsert"
    manual_values: dict[str, str] = Field(default_factory=dict, description="CRM field → value for manual fields")
    owner_id: str = Field("", description="a CRM user id to own what is exported; empty: the owner rules")
    overwrite_owner: bool = Field(False, description="the launch owner replaces owners already set in the CRM")
    association: Literal["", "additional", "primary", "primary_remove_previous"] = Field(
        "", description="how contacts are linked to their company; empty: the config's default_association_type")
    confirm_remove_previous: bool = False
    max_rejected_share: float = Field(0.05, ge=0, le=1,
                                      description="a batch with more rejected rows than this is blocked")
    only_changed_since: str = Field("", description="ISO timestamp: only Enginy records updated after it (the "
                                                    "Enginy change sensor sets it); empty: every record")
    resend_refused_duplicates: bool = Field(
        False, description="send again the creates the CRM refused as duplicates in earlier runs (say, after its "
                           "duplicate rules changed); by default each waits until its Enginy record changes")

    def launch(self, config: IntegrationConfig) -> Launch:
        return Launch(self.sync_mode, dict(self.manual_values), self.owner_id or None, self.overwrite_owner,
                      self.association or config.default_association_type, self.confirm_remove_previous,
                      config.crm.settings.neutralize_formulas)


def parse_json(frame: pd.DataFrame, columns: tuple[str, ...] = JSON_COLUMNS) -> pd.DataFrame:
    """JSON columns back to Python objects (the warehouse stores them as text); a step that reads
    only some of them names those: parsing every cell of a million-row batch costs seconds."""
    return parse_json_columns(frame, columns)


def _owners(config: IntegrationConfig, crm_users: pd.DataFrame, enginy_users: pd.DataFrame) -> Owners:
    active = crm_users[crm_users["is_active"].astype(bool)] if len(crm_users) else crm_users
    by_email = {str(e).lower(): str(i) for e, i in zip(active.get("email", []), active.get("crm_id", [])) if e}

    def user_id(value: str | None) -> str | None:
        """The users mapping names CRM users by id or by email; an email no active CRM user has
        owns nothing (the next owner rule applies) rather than being sent as an id the CRM refuses."""
        if value is None:
            return None
        return by_email.get(value.lower()) if "@" in value else value

    return Owners(
        user_mapping={k: user_id(v) for k, v in config.user_mapping.users.items()},
        enginy_user_emails=dict(zip(enginy_users["id"], enginy_users["email"])) if len(enginy_users) else {},
        crm_user_by_email=by_email, default_owner=user_id(config.user_mapping.default_owner))


def _schema(crm_schema: pd.DataFrame, obj: str) -> dict[str, FieldSpec]:
    return specs(parse_json(crm_schema.copy()), obj)


def _metadata(batch: pd.DataFrame) -> dict[str, Any]:
    counts = batch["action"].value_counts().to_dict()
    lines = [_preview_line(r) for r in _preview(batch).to_dict("records")]
    return {**{f"rows_{k}": int(v) for k, v in counts.items()}, "rows": len(batch),
            "diff_preview": dg.MetadataValue.md("| Enginy id | action | CRM id | field: CRM value → new value, or why "
                                                "it is rejected |\n| --- | --- | --- | --- |\n" + "\n".join(lines)
                                                if lines else "(nothing to write)")}


# Of the preview's twenty rows, at most these of each kind while the others have rows to show.
PREVIEW_SHARE = {"reject": 5, "update": 10, "create": 5}


def _preview(batch: pd.DataFrame, first: int = 20) -> pd.DataFrame:
    """The rows a person reads before a push: rejections first (what will not go), then updates
    (what overwrites the CRM's data), then creates — each kind its share of ``first``, a kind with
    fewer rows leaving its places to the others. Taken a column at a time: rows taken from the
    whole frame made pandas copy all its text columns into one block."""
    action = batch["action"]
    rows = {kind: np.flatnonzero(action.eq(kind).to_numpy(bool))[:first] for kind in PREVIEW_SHARE}
    counts = {kind: min(share, len(rows[kind])) for kind, share in PREVIEW_SHARE.items()}
    for kind in PREVIEW_SHARE:  # places left over go to the kinds in the same order
        counts[kind] += min(len(rows[kind]) - counts[kind], first - sum(counts.values()))
    picked = [int(i) for kind in PREVIEW_SHARE for i in rows[kind][:counts[kind]]]
    columns = [c for c in ("enginy_id", "action", "crm_id", "diff", "reason") if c in batch]
    return parse_json(pd.DataFrame({c: batch[c].iloc[picked].to_numpy(object) for c in columns}), ("diff",))


def _preview_line(row: dict[str, Any]) -> str:
    crm_id = "" if is_empty(row.get("crm_id")) else str(row["crm_id"])
    if row["action"] == "reject":
        what = str(row.get("reason") or "")
    elif row["action"] == "create":  # nothing in the CRM yet: the values it gets
        what = "; ".join(f"{d['field']}: {_shown(d['new_value'])}" for d in row["diff"] or [])
    else:
        what = "; ".join(f"{d['field']}: {_shown(d['crm_value'])} → {_shown(d['new_value'])}"
                         for d in row["diff"] or [])
    return f"| {row['enginy_id']} | {row['action']} | {crm_id} | {what.replace('|', '/')} |"


def _shown(value: Any) -> str:
    """A value as a person reads it: empty for nothing, whole numbers without a trailing .0."""
    if is_empty(value):
        return "(empty)"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, str) else str(value)


class Companies(NamedTuple):
    """What a people batch knows of their companies."""

    matched: pd.Series  # Enginy company id -> the CRM company the identifier rules matched it to
    crm_ids: pd.Series  # Enginy company id -> the CRM company it is: matched, or holding its Enginy id
    to_create: pd.Series  # Enginy ids of the companies that matched nothing: the company batch creates them


def _companies(company_matches: pd.DataFrame, company_records: pd.DataFrame, enginy_id_field: str) -> Companies:
    """``company_matches``: the people's companies' match rows; ``company_records``: the CRM
    companies holding their Enginy ids (a company an earlier export created is that company,
    whatever the rules say, as the company batch finds it)."""
    by_rules = match_outcomes(company_matches)
    company = known_by_enginy_id(by_rules, company_records, enginy_id_field)

    def crm_ids(outcomes: pd.DataFrame) -> pd.Series:
        matched = outcomes[outcomes["outcome"].eq("matched")]
        return lookup(matched["enginy_id"], matched["crm_id"].astype(object))

    return Companies(crm_ids(by_rules), crm_ids(company),
                     company.loc[company["outcome"].eq("new"), "enginy_id"].astype(str))


def _company_links(records: pd.DataFrame, companies: Companies) -> tuple[pd.Series, pd.Series]:
    """Enginy record id -> the CRM id of its company, for the records whose company is in the CRM;
    and the ids of the records whose company the company batch creates (the push links them once
    it has). A company matched ambiguously is neither: nobody is linked to it."""
    company = records["company_id"].astype("string")
    links = pd.Series(company.map(companies.crm_ids).to_numpy(object), index=records["id"].to_numpy(object),
                      dtype=object)
    awaiting = links.index[links.isna().to_numpy(bool) & is_in(company, companies.to_create).to_numpy(bool)]
    links = links.dropna()
    return lookup(links.index, links), pd.Series(awaiting.astype(str), dtype=object)


class BatchInputs(NamedTuple):
    records: pd.DataFrame  # the Enginy records the batch is for
    matches: pd.DataFrame  # their rows of the match table
    snapshot: pd.DataFrame  # the CRM records they may be: matched, or holding their Enginy id
    company_matches: pd.DataFrame | None  # the match rows of their companies (people only)
    campaign_rollups: pd.DataFrame | None  # their campaign properties, when the rollups are in the graph


def _batch_inputs(warehouse: Warehouse, since: str, tables: dict[str, str], enginy_id_field: str) -> BatchInputs:
    """What a batch is built from. Every record's rows for a full batch; for a batch of the records
    changed since ``since``, only their rows of each table, read by key: a run after a thousand
    edits reads a thousand records' rows, not a million-record snapshot. Of the CRM snapshot, in
    either case, only the records the batch can touch."""
    records = changed_records(warehouse, tables["records"], since).assign(id=lambda f: f["id"].astype(str))

    def rows(name: str, key: str, keys: list[str]) -> pd.DataFrame:
        return warehouse.rows_with_keys(name, key, keys) if since else warehouse.read_table(name)

    ids = records["id"].tolist()
    matches = rows(tables["matches"], "enginy_id", ids)
    # Only the CRM records a batch can touch, in full runs too: those matched, and those holding
    # one of the records' Enginy ids. On a first sync that is under half of a million-record snapshot.
    matched = matches.loc[matches["outcome"].eq("matched"), "crm_id"].dropna().astype(str).tolist()
    snapshot = warehouse.rows_with_any_keys(tables["crm_records"], Keys("crm_id", matched),
                                            Keys("raw", ids, json_field=enginy_id_field))
    companies = (rows("company_matches", "enginy_id", records["company_id"].dropna().astype(str).tolist())
                 if "company_matches" in tables else None)
    rollups = None
    if "campaign_rollups" in tables:
        columns = warehouse.column_names("campaign_rollups")
        rollups = rows("campaign_rollups", "contact_id" if "contact_id" in columns else columns[0], ids)
    return BatchInputs(records, matches, snapshot, companies, rollups)


def _batch_asset(obj: str, enginy_table: str, crm_table: str, matches_table: str, tab: str, rollups: bool):
    # The big tables are read by the step itself (_batch_inputs), not loaded whole by the IO manager.
    tables = {"records": enginy_table, "matches": matches_table, "crm_records": crm_table}
    if obj in ("contacts", "leads"):
        tables["company_matches"] = "company_matches"
    if rollups:
        tables["campaign_rollups"] = "campaign_rollups"
    ins = {"crm_schema": dg.AssetIn("crm_schema"), "crm_users": dg.AssetIn("crm_users"),
           "enginy_users": dg.AssetIn("enginy_users")}

    @dg.asset(name=f"{'lead' if tab == 'leads' else obj[:-1] if obj != 'companies' else 'company'}_export_batch",
              group_name=EXPORT_GROUP, io_manager_key="warehouse_io_manager", ins=ins, deps=list(tables.values()),
              kinds={"pandas"},
              description=f"One row per Enginy {obj[:-1] if obj != 'companies' else 'company'}: the create, the "
                          "update of only the fields that change (with its diff), or why it is skipped or rejected.")
    def _batch(context: dg.AssetExecutionContext, config: ExportLaunch, integration: IntegrationSettings,
               crm: CrmResource, warehouse: Warehouse, crm_schema: pd.DataFrame, crm_users: pd.DataFrame,
               enginy_users: pd.DataFrame) -> dg.Output[pd.DataFrame]:
        # Stamped before the inputs are read: a CRM change or a push after it is one the batch may not know.
        built_at = pd.Timestamp.now(tz="UTC")
        integration_config = integration.load()
        mappings = getattr(integration_config.field_mapping, tab) or []
        client = crm.client()
        # The snapshot's records hold their CRM fields (raw) as JSON text still.
        records, match_rows, snapshot, company_match_rows, rollups = _batch_inputs(
            warehouse, config.only_changed_since, tables, client.enginy_id_field)
        matches = known_by_enginy_id(match_outcomes(match_rows), snapshot, client.enginy_id_field)
        other_object = "leads" if tab == "contacts" else "contacts"
        if "crm_object" in match_rows and obj != "companies" and f"crm_{other_object}" in warehouse.table_names():
            held = warehouse.rows_with_keys(f"crm_{other_object}", "raw", records["id"].tolist(),
                                            json_field=client.enginy_id_field)
            match_rows = known_in_the_other_object(match_rows, matches, held, other_object, client.enginy_id_field)
        # What makes two of the records one person (or company): the creates they make and the
        # CRM record one of them already is.
        rule = (company_rule(integration_config.company_identifier) if obj == "companies"
                else contact_rule(integration_config.contact_identifier))
        companies = None
        if company_match_rows is not None:
            company_records = warehouse.rows_with_keys("crm_companies", "raw", company_match_rows["enginy_id"]
                                                       .astype(str).tolist(), json_field=client.enginy_id_field)
            companies = _companies(company_match_rows, company_records, client.enginy_id_field)
        # People at two Enginy companies that matched one CRM company are at that company, as matching reads it.
        keys = identity_keys(records, obj, rule, None if companies is None else companies.matched)
        elsewhere = None
        if "crm_object" in match_rows and obj != "companies":
            other = match_rows[match_rows["outcome"].eq("matched") & match_rows["crm_object"].ne(tab)]
            elsewhere = other["enginy_id"].astype(str)
        matches = matched_as_the_same(matches, keys, elsewhere)
        # Only the records this batch can update; their CRM fields stay JSON text, read a mapped
        # field at a time by the batch.
        can_update = is_in(snapshot["crm_id"], matches["crm_id"].dropna().unique())
        crm_records = snapshot if can_update.all() else snapshot[can_update]
        del snapshot
        campaign, campaign_mapping, links, awaiting = None, None, None, ()
        # Salesforce and Dataverse leads name their company in a text field; Pipedrive's hang on one.
        linked = obj == "contacts" or (obj == "leads" and getattr(client, "leads_link_to_companies", False))
        if linked and integration_config.associations.contacts_to_companies:
            links, awaiting = _company_links(records, companies)
        if rollups is not None:
            key = "contact_id" if "contact_id" in rollups else rollups.columns[0]
            campaign = rollups.assign(**{key: rollups[key].astype(str)}).set_index(key)
            campaign_mapping = getattr(integration_config.campaign_mapping, tab) or {}
        batch = build_batch(records, matches, crm_records, mappings,
                            _schema(crm_schema, tab), config.launch(integration_config),
                            _owners(integration_config, crm_users, enginy_users),
                            campaign, campaign_mapping, links,
                            one_company_per_contact=not getattr(client, "contacts_link_many_companies", False),
                            companies_to_create=awaiting,
                            required=registry.facts(integration_config.active_crm).required_on_create.get(tab, ()))
        # Let go of what only the build needed: at a million, the matched records' parsed fields
        # alone are a gigabyte the rules below would otherwise run beside.
        del crm_records, company_match_rows, companies, rollups, campaign, links, awaiting
        batch = batch.merge(matches[["enginy_id", "outcome"]], on="enginy_id", how="left")
        batch = leave_to_other_object(batch, match_rows, tab)
        batch = one_create_per_person(batch, records, obj, keys)
        batch = one_update_per_crm_record(batch, records)
        if not config.resend_refused_duplicates and EXPORT_LEDGER in warehouse.table_names():
            batch = held_after_duplicate_refusal(batch, records,
                                                 LedgerTable(warehouse, EXPORT_LEDGER).refused_as_duplicates(tab))
        batch["batch_id"] = context.run_id  # the write ledger keys writes by the batch they belong to
        batch["built_at"] = built_at  # the dry run says how old the batch it describes is
        if linked:
            # Contacts of a company this export creates get its id when the push has it.
            company_of = pd.Series(records["company_id"].astype("string").to_numpy(), index=records["id"])
            batch["company_enginy_id"] = batch["enginy_id"].map(lookup(company_of.index, company_of))
        context.log.info("%s batch: %s", obj, batch["action"].value_counts().to_dict())
        scope = (f"Enginy records updated after {config.only_changed_since}" if config.only_changed_since
                 else SCOPE_EVERY_RECORD)
        return dg.Output(batch, metadata={**_metadata(batch), "max_rejected_share": config.max_rejected_share,
                                          "scope": scope})

    return _batch


def build_export_assets(with_rollups: bool, with_leads: bool) -> list:
    """The batches, their blocking gates and the push; contacts carry the campaign properties
    when the campaign_rollups model is in the graph; a lead batch where the CRM has Leads."""
    batches = {"companies": _batch_asset("companies", "enginy_companies", "crm_companies", "company_matches",
                                         "companies", False),
               "contacts": _batch_asset("contacts", "enginy_contacts", "crm_contacts", "contact_matches", "contacts",
                                        with_rollups)}
    if with_leads:
        batches["leads"] = _batch_asset("leads", "enginy_contacts", "crm_leads", "contact_matches", "leads",
                                        with_rollups)
    checks = [_gate_check(asset, obj) for obj, asset in batches.items()]
    names = [asset.key.path[-1] for asset in batches.values()]
    return [*batches.values(), *checks, _push_asset(names), export_rejections, enginy_writeback,
            _dry_run_asset(names)]


class DryRunConfig(dg.Config):
    report_dir: str = "data/reports"
    """Folder the full dry run is written to (the UI shows its path)."""
    as_leads: bool = Field(False, description="describe a push launched with as_leads: true (the lead batch "
                                              "sent instead of the contact batch)")


def _dry_run_asset(batches: list[str]) -> dg.AssetsDefinition:
    @dg.asset(name="export_dry_run", group_name=EXPORT_GROUP, io_manager_key="warehouse_io_manager",
              kinds={"pandas"}, deps=batches,
              description="What the next push would do: when each batch was built, a warning when the CRM "
                          "changed since, which batches a push sends, then record by record each rejection and "
                          "skip with its reason and each write's field diff — without pushing. The nightly "
                          "reconciliation attaches it.")
    def export_dry_run(config: DryRunConfig, warehouse: Warehouse) -> dg.Output[pd.DataFrame]:
        described = read_dry_run(warehouse, config.as_leads)
        path = Path(config.report_dir) / "export_dry_run.txt"
        summary = write_dry_run(described, path)
        counts = action_counts(described)
        shown = "\n".join(render_dry_run(described, limit=20))
        return dg.Output(counts, metadata={
            **{f"{row.batch}_{row.action}": row.rows for row in counts.itertuples()
               if row.action in ("create", "update")},
            **{f"{name}_built_at": dg.MetadataValue.timestamp(moment)
               for name, moment in described.built_at.items() if moment is not None},
            "crm_changed_since_built": dg.MetadataValue.text(described.warning or "no"),
            "summary": dg.MetadataValue.md("\n".join(f"- {line}" for line in summary) or "(no batch yet)"),
            "diff": dg.MetadataValue.md(f"```\n{shown.strip() or '(no batch yet)'}\n```"),
            "full_dry_run": dg.MetadataValue.path(str(path.resolve()))})

    return export_dry_run


def _gate_check(asset: dg.AssetsDefinition, obj: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=asset, blocking=True, name="export_gates",
                    description="Blocks the push of this batch: its shape, a great-expectations suite of the batch "
                                "as a whole, the share of rejected rows, and the field mapping's review. The people "
                                "batch a push does not send (leads, or contacts when pushed as_leads) only warns.",
                    additional_ins={"crm_schema": dg.AssetIn("crm_schema")})
    def _check(context: dg.AssetCheckExecutionContext, integration: IntegrationSettings, warehouse: Warehouse,
               crm_schema: pd.DataFrame) -> dg.AssetCheckResult:
        name = asset.key.path[-1]
        held = warehouse.column_names(name)
        batch = warehouse.read_table(name, tuple(c for c in GATE_COLUMNS if c in held))
        batch["fields"] = batch["fields"].astype(object)
        config = integration.load()
        previous, limit = _previous_rows(context, asset.key)
        rejection = rejection_gate(batch, limit)
        gates = [schema_gate(batch), rejection, *expectation_suite_gates(batch, previous)]
        review = review_mapping(config, parse_json(crm_schema.copy()))
        errors = review[(review["status"] == "error") & (review["tab"] == obj)]
        failed = [g for g in gates if not g.passed]
        why = [g.description for g in failed] + [f"mapping {r['crm_field']}: {r['message']}"
                                                 for r in errors.to_dict("records")]
        pushed = _pushed_in_this_run(context, obj)
        if why and not pushed:
            why.append(f"(a warning: this run's push does not send the {obj} batch)")
        rejected = rejection.details
        return dg.AssetCheckResult(
            passed=not why, severity=dg.AssetCheckSeverity.ERROR if pushed else dg.AssetCheckSeverity.WARN,
            description="; ".join(why) if why else f"all {len(gates)} gates passed",
            metadata={"rejected": rejected["rejected"],
                      "rejected_rows": dg.MetadataValue.md(_rejected_table(rejected["rows"], rejected["rejected"])),
                      "gates": dg.MetadataValue.json([g.__dict__ for g in gates]),
                      "mapping_errors": len(errors)})

    return _check


def _pushed_in_this_run(context: dg.AssetCheckExecutionContext, obj: str) -> bool:
    """Whether a push launched with this run's config sends the ``obj`` batch: the lead batch is not
    sent unless the push says as_leads (nor then the contact batch), and its gates, failing on
    contacts that are no valid leads (no company name), must not stop the contacts from going."""
    push = (context.run.run_config.get("ops") or {}).get("crm_push_results") or {}
    return obj in {o for o, _ in pushed_batches(bool((push.get("config") or {}).get("as_leads")))}


def _rejected_table(rows: list[dict[str, str]], total: int) -> str:
    """The rejected rows as the check's metadata shows them, each with its reason; the first of how many."""
    if not rows:
        return "(no row rejected)"
    lines = [f"| {r['enginy_id']} | {r['reason'].replace('|', '/')} |" for r in rows]
    more = f"\n\nThe first {len(rows)} of {total:,} rejected rows." if total > len(rows) else ""
    return "| Enginy id | why it is rejected |\n| --- | --- |\n" + "\n".join(lines) + more


def _previous_rows(context: dg.AssetCheckExecutionContext, key: dg.AssetKey) -> tuple[int | None, float]:
    """The previous full batch's row count (for the bounds) and the rejected share allowed at
    launch. A batch of only the records changed since the last sync has no bounds to keep."""
    records = context.instance.fetch_materializations(key, limit=20).records
    metadata = records[0].asset_materialization.metadata if records else {}
    limit = float(metadata["max_rejected_share"].value) if "max_rejected_share" in metadata else 0.05

    def full(meta: dict) -> bool:
        return "scope" not in meta or meta["scope"].value == SCOPE_EVERY_RECORD

    if not records or not full(metadata):
        return None, limit
    earlier = [r.asset_materialization.metadata for r in records[1:] if full(r.asset_materialization.metadata)]
    value = earlier[0].get("rows") if earlier else None
    return (int(value.value) if value is not None else None), limit


class PushLaunch(dg.Config):
    as_leads: bool = Field(False, description="CRMs with Leads (Salesforce, Pipedrive): push the lead batch "
                                              "rather than the contact batch")


def _load_table(warehouse: Warehouse, name: str, empty: pd.DataFrame) -> pd.DataFrame:
    return parse_json(warehouse.read_table(name)) if name in warehouse.table_names() else empty


def _built_in_this_run(context: dg.AssetExecutionContext) -> set[str]:
    """The assets this run has materialized so far."""
    records = context.instance.get_records_for_run(
        context.run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION, limit=10_000).records
    return {r.event_log_entry.dagster_event.asset_key.path[-1] for r in records}


def _check_same_batch(batch: pd.DataFrame, table: str, run_id: str, built_here: set[str]) -> None:
    """A batch this run built and gated must be the one it pushes. Another run (a sensor's sync
    while this push waited for the crm_writes slot) may have rebuilt the table since, for other
    records or with other choices, and its gates have not run in this run: stop, send nothing of it."""
    if table not in built_here or "batch_id" not in batch or not len(batch):
        return
    other = batch.loc[batch["batch_id"].astype(str).ne(run_id), "batch_id"]
    if len(other):
        raise dg.Failure(
            f"{table} was rebuilt by run {other.iloc[0]} after this run built and gated it (runs beside "
            f"this push); nothing of it was pushed by this run. That run's batch waits for its own push: "
            f"launch export_push again to build, gate and push the batches anew.")


# The match table of each pushed object.
MATCHES_OF = {"companies": "company_matches", "contacts": "contact_matches", "leads": "contact_matches"}


def _carrying_own_id(warehouse: Warehouse, obj: str, unanswered: pd.DataFrame) -> list[str]:
    """Of the records whose create a stopped push sent without an answer, those the matching has
    since found by the Enginy id they carry: that create landed."""
    sent = unanswered["action"].eq("create") & unanswered["status"].eq("sent")
    creates = unanswered.loc[sent, "enginy_id"].astype(str).tolist()
    table = MATCHES_OF[obj]
    if not creates or table not in warehouse.table_names() or "matched_by" not in warehouse.column_names(table):
        return []
    rows = warehouse.rows_with_keys(table, "enginy_id", creates)
    return rows.loc[rows["matched_by"].eq(ENGINY_ID_KEY), "enginy_id"].astype(str).tolist()


def _push_asset(batches: list[str]) -> dg.AssetsDefinition:
    # The ledgers are written while the push runs (after every chunk, so a killed push loses no
    # outcome), not handed to an IO manager at the end: Nothing-typed outputs make them assets
    # Dagster shows, materialized by this step, with their row counts.
    @dg.multi_asset(
        name="crm_push_results", group_name=EXPORT_GROUP, deps=batches, can_subset=False, pool=CRM_WRITES_POOL,
        outs={"crm_push_results": dg.AssetOut(
                  io_manager_key="warehouse_io_manager", kinds={"pandas"},
                  description="Every batch row as it ended: created / updated / skipped / rejected (with the "
                              "CRM's error) / failed (retried next run). Writes go through export_ledger."),
              EXPORT_LEDGER: dg.AssetOut(
                  dagster_type=dg.Nothing, kinds={"pandas"},
                  description="Every write a push intended, recorded before it is sent and its outcome after: "
                              "a re-run after any failure sends only what is not done."),
              REMOVED_ASSOCIATIONS: dg.AssetOut(
                  dagster_type=dg.Nothing, kinds={"pandas"}, is_required=False,
                  description="Company links a push with primary_remove_previous removed, so the "
                              "undo_associations job can put them back.")})
    def crm_push_results(context: dg.AssetExecutionContext, config: PushLaunch, crm: CrmResource,
                         warehouse: Warehouse, integration: IntegrationSettings):
        started = time.monotonic()
        integration_config = integration.load()
        client = crm.client()
        client.progress = context.log.info
        ledger_table = LedgerTable(warehouse, EXPORT_LEDGER)
        facts = registry.facts(integration_config.active_crm)
        chunk = client.writes_per_push if facts.can(Capability.BULK) else facts.push_chunk
        ended, counts, calls_before = [], {}, getattr(client, "api_calls", 0)
        company_ids: dict[str, str] = {}
        removed_total, sent = None, 0
        built_here = _built_in_this_run(context)
        for obj, table in pushed_batches(config.as_leads):
            # Not the diff, a batch's largest column, nor its build time: they are for people (the dry run).
            pushed = tuple(c for c in warehouse.column_names(table) if c not in ("diff", "built_at"))
            # Its fields stay JSON text: the write ids hash that text, and only the rows sent are parsed.
            batch = warehouse.read_table(table, pushed)
            _check_same_batch(batch, table, context.run.run_id, built_here)
            if obj != "companies" and "company_enginy_id" in batch:
                batch = link_created_companies(batch, company_ids)
            removed = removed_links(batch)
            if len(removed):
                held = _load_table(warehouse, REMOVED_ASSOCIATIONS, pd.DataFrame(columns=REMOVED_COLUMNS))
                removed_total = warehouse.write_table(REMOVED_ASSOCIATIONS, record_removed(held, removed))

            # The ledger entries of this batch's writes only: what is left to send is one join, and an
            # incremental run of a thousand changes reads a thousand entries, not the whole ledger.
            ids = write_ids(obj, batch)
            held = ledger_table.read([i for i in ids if i is not None])
            # Records an earlier write of ours finished on: a create of theirs answered "updated" is one.
            creates = batch.loc[batch["action"].eq("create"), "enginy_id"].astype(str).tolist()
            existed = records_written(ledger_table.of_records(obj, creates), ids) if creates else ()
            if facts.can(Capability.BULK):
                push = lambda writes, job_started, o=obj: client.push(o, writes, job_started)  # noqa: E731
                resume = lambda job_id, writes, o=obj: client.bulk_job_results(o, job_id, writes)  # noqa: E731
            else:
                push, resume = (lambda writes, o=obj: client.push(o, writes)), None
            outcome = run_push(push, obj, batch, held, ledger_table.save, chunk,
                               integration_config.create_on_duplicate_warning, context.log.info, ids=ids,
                               resume=resume, existed=existed)
            result = outcomes(batch, obj, outcome.ledger, ids).assign(object=obj)
            if len(batch):
                # A stopped push's unanswered writes of records this batch has now ended wait no longer.
                unanswered = ledger_table.unanswered(obj)
                resolved = superseded(unanswered, ids, result, str(batch["batch_id"].iloc[0]),
                                      _carrying_own_id(warehouse, obj, unanswered))
                if len(resolved):
                    ledger_table.save(resolved)
                    outcome.counts["superseded"] = len(resolved)
            if obj == "companies":
                company_ids = dict(zip(result["enginy_id"], result["crm_id"]))
                # A company skipped as the same as another: its contacts link to that one's record.
                if "same_as" in batch:
                    twins = batch[batch["same_as"].notna()]
                    company_ids.update((e, company_ids.get(s)) for e, s in zip(twins["enginy_id"], twins["same_as"]))
            ended.append(result)
            counts[obj] = outcome.counts
            sent += outcome.sent
        results = pd.concat(ended, ignore_index=True)
        summary = results["status"].value_counts().to_dict()
        statuses = ledger_table.status_counts()
        yield dg.Output(None, EXPORT_LEDGER, metadata={
            "dagster/row_count": sum(statuses.values()),
            "warehouse_table": dg.MetadataValue.text(f"{warehouse.schema}.{EXPORT_LEDGER}"),
            **{f"writes_{k}": v for k, v in statuses.items()}})
        if removed_total is not None:
            yield dg.Output(None, REMOVED_ASSOCIATIONS, metadata={
                "dagster/row_count": removed_total,
                "warehouse_table": dg.MetadataValue.text(f"{warehouse.schema}.{REMOVED_ASSOCIATIONS}")})
        yield dg.Output(results, "crm_push_results", metadata={
            **{f"rows_{k}": int(v) for k, v in summary.items()},
            "per_object": dg.MetadataValue.json(counts),
            "api_calls": getattr(client, "api_calls", 0) - calls_before,
            "writes_sent": sent, "writes_per_second": round(per_second(sent, started), 1),
            "seconds": round(time.monotonic() - started, 2)})

    return crm_push_results


@dg.asset(group_name=EXPORT_GROUP, io_manager_key="warehouse_io_manager", kinds={"pandas"},
          ins={"results": dg.AssetIn("crm_push_results")}, deps=[QUARANTINE_TABLE],
          description="Rows that were not written, with the reason: refused by the export (a value the CRM "
                      "would not take), by the CRM itself (its error), or left out before the batches because "
                      "they break the Enginy data contract's key (no id, or an id several rows hold: the "
                      "enginy_quarantine model). Nothing is lost: fix and re-run.")
def export_rejections(results: pd.DataFrame, warehouse: Warehouse) -> dg.Output[pd.DataFrame]:
    rejected = results[results["status"].eq("rejected")]
    quarantined = (as_rejections(warehouse.read_table(QUARANTINE_TABLE))
                   if QUARANTINE_TABLE in warehouse.table_names() else None)
    if quarantined is not None and len(quarantined):
        rejected = pd.concat([quarantined, rejected], ignore_index=True)
    return dg.Output(rejected.reset_index(drop=True), metadata={"rejected": len(rejected)})


@dg.asset(group_name=EXPORT_GROUP, io_manager_key="warehouse_io_manager", kinds={"pandas"},
          deps=["company_export_batch", "contact_export_batch"],
          description="Enginy records and fields to update from the CRM: crm_overwrites_enginy fields, and "
                      "bidirectional fields the CRM changed last.")
def enginy_writeback(warehouse: Warehouse) -> dg.Output[pd.DataFrame]:
    rows = []
    for obj, table in (("companies", "company_export_batch"), ("contacts", "contact_export_batch"),
                       ("leads", "lead_export_batch")):
        if table not in warehouse.table_names():
            continue
        batch = parse_json(warehouse.read_table(table, ("enginy_id", "writeback")), ("writeback",))
        for row in batch[batch["writeback"].map(bool)].to_dict("records"):
            rows.extend({"object": obj, "enginy_id": row["enginy_id"], "field": f, "value": v}
                        for f, v in row["writeback"].items())
    frame = pd.DataFrame(rows, columns=["object", "enginy_id", "field", "value"])
    return dg.Output(frame, metadata={"fields": len(frame)})


@dg.op(description="Make each company that primary_remove_previous unlinked a contact's primary company again.",
       pool=CRM_WRITES_POOL)
def restore_removed_associations(context: dg.OpExecutionContext, crm: CrmResource, warehouse: Warehouse) -> int:
    if REMOVED_ASSOCIATIONS not in warehouse.table_names():
        context.log.info("no association was removed by an export")
        return 0
    removed = warehouse.read_table(REMOVED_ASSOCIATIONS)
    batch = undo_batch(removed)
    client = crm.client()
    outcome = run_push(lambda writes: client.push("contacts", writes), "contacts", batch, empty_ledger(),
                       lambda frame: None, 100, log=context.log.info)
    done = set(outcomes(batch, "contacts", outcome.ledger).query("status == 'updated'")["crm_id"])
    rows = warehouse.write_table(REMOVED_ASSOCIATIONS, removed.assign(
        restored=removed["restored"].astype(bool) | removed["contact_crm_id"].isin(done)))
    context.log_event(dg.AssetMaterialization(REMOVED_ASSOCIATIONS, description="links put back marked restored",
                                              metadata={"dagster/row_count": rows, "restored_this_run": len(done)}))
    context.log.info("restored %d links", len(done))
    return len(done)


@dg.job(description="Put back the company links an export with primary_remove_previous removed.")
def undo_associations() -> None:
    restore_removed_associations()
