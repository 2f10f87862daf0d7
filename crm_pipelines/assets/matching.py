"""Matching assets: which Enginy records already exist in the CRM, which records the CRM already
holds twice, and the report analysts read. The rules come from Step 1 of the integration config;
the work is done by crm_pipelines.matching.

These assets read every record of each snapshot (not the records' raw fields, which matching
does not use), because a match is only right against every record the CRM holds. A run the
Enginy change sensor scopes matches only the Enginy records changed since, and writes just their
rows. The assets that read whole snapshots read them without the raw fields (crm_snapshot), not
through the IO manager.
"""

from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pandas as pd

from crm_pipelines.crms import registry
from crm_pipelines.crms.base import CrmResource
from crm_pipelines.enginy.quarantine import keyed
from crm_pipelines.frames import is_in
from crm_pipelines.matching import near_miss
from crm_pipelines.matching.engine import CrmIndex, company_links, fill_rates
from crm_pipelines.matching.own_id import carriers, matched_by_own_id
from crm_pipelines.matching.report import Records, ReportHeader, build_report
from crm_pipelines.matching.rules import company_rule, contact_rule
from crm_pipelines.resources.integration import IntegrationSettings
from crm_pipelines.resources.warehouse import ROWS_REPLACED_BY, Warehouse

MATCHING_GROUP = "matching"
REPORT_FILE = "match_quality_report.html"
_common = dict(group_name=MATCHING_GROUP, io_manager_key="warehouse_io_manager", kinds={"duckdb", "pandas"})


def crm_people(crm: str, contacts: pd.DataFrame, leads: pd.DataFrame) -> pd.DataFrame:
    """The CRM records an Enginy contact may already be: Contacts, and Leads too where a person
    is often still a Lead (Salesforce)."""
    frames = [contacts.assign(object="contacts")]
    if registry.facts(crm).leads_may_be_people and len(leads):
        frames.append(leads.assign(object="leads"))
    return pd.concat(frames, ignore_index=True)


def _counts(matches: pd.DataFrame) -> dict[str, int]:
    counts = matches["outcome"].value_counts()
    return {f"records_{o}": int(counts.get(o, 0)) for o in ("matched", "new", "ambiguous")}


class MatchScope(dg.Config):
    only_changed_since: str = ""
    """ISO timestamp: match again only the Enginy records updated after it and keep the last
    outcome of the others (the Enginy change sensor sets it); empty: match every record."""


def changed_since(records: pd.DataFrame, since: str) -> pd.DataFrame:
    """The Enginy records updated after ``since`` (all of them when it is empty)."""
    if not since:
        return records
    return records[pd.to_datetime(records["updated_at"], utc=True) > pd.to_datetime(since, utc=True)]


def changed_records(warehouse: Warehouse, table: str, since: str) -> pd.DataFrame:
    """The Enginy records of warehouse ``table`` updated after ``since`` (every one when it is
    empty): their ids and update times read first, then just their rows. Without the records
    that break their key (no id, an id several rows hold): nothing can match or push them, and
    export_rejections says why (crm_pipelines/enginy/quarantine.py)."""
    if not since:
        return keyed(warehouse.read_table(table))
    changed = changed_since(warehouse.read_table(table, ("id", "updated_at")), since)
    return keyed(warehouse.rows_with_keys(table, "id", changed["id"].dropna().astype(str).tolist()))


def crm_snapshot(warehouse: Warehouse, table: str) -> pd.DataFrame:
    """A CRM snapshot without each record's raw fields, which matching does not read: at a million
    records they are most of the table's bytes."""
    return warehouse.read_table(table, tuple(c for c in warehouse.column_names(table) if c != "raw"))


def _written(name: str, fresh: pd.DataFrame, scope: MatchScope, warehouse: Warehouse) -> pd.DataFrame:
    """The outcome columns of table ``name`` as this run leaves it: a scoped match's rows in place
    of the same records' rows, the others as the last run left them."""
    if not scope.only_changed_since or name not in warehouse.table_names():
        return fresh
    columns = ("enginy_id", "outcome", *(["near_miss_crm_id"] if "near_miss_crm_id" in fresh else []))
    kept = warehouse.read_table(name, columns)
    kept = kept[~is_in(kept["enginy_id"].astype(str), fresh["enginy_id"].astype(str))]
    return pd.concat([kept, fresh[list(columns)]], ignore_index=True)


def ours(warehouse: Warehouse, tables: dict[str, str], enginy_ids: list[str], field: str) -> pd.DataFrame:
    """The records of the CRM snapshots ``tables`` (object → table) that hold one of ``enginy_ids``
    in the Enginy id ``field`` (see own_id.carriers): one query per table for just those records."""
    held = [warehouse.rows_with_keys(table, "raw", enginy_ids, json_field=field).assign(object=obj)
            for obj, table in tables.items() if table in warehouse.table_names()]
    return carriers(pd.concat(held, ignore_index=True) if held else pd.DataFrame(), field)


def _scope_metadata(scope: MatchScope, matched: int) -> dict[str, object]:
    if not scope.only_changed_since:
        return {"scope": "every Enginy record"}
    # The IO manager puts the rows of the records matched again in place of theirs, keeping the rest.
    return {"scope": f"Enginy records updated after {scope.only_changed_since}", "records_rematched": matched,
            ROWS_REPLACED_BY: "enginy_id"}


@dg.asset(description="Each Enginy company's outcome against the CRM's companies: a company our push created "
                      "by the Enginy id it carries, the others under the company identifier: new (create), "
                      "matched (update) or ambiguous (held for review).",
          deps=["enginy_companies", "crm_companies"], **_common)
def company_matches(config: MatchScope, integration: IntegrationSettings, crm: CrmResource,
                    warehouse: Warehouse) -> dg.Output[pd.DataFrame]:
    rule = company_rule(integration.load().company_identifier)
    changed = changed_records(warehouse, "enginy_companies", config.only_changed_since)
    fresh = CrmIndex(rule, crm_snapshot(warehouse, "crm_companies").assign(object="companies")).match(changed)
    # A company our push created is found by the Enginy id it carries, before the rules.
    fresh = matched_by_own_id(fresh, ours(warehouse, {"companies": "crm_companies"},
                                          changed["id"].astype(str).tolist(), crm.client().enginy_id_field))
    return dg.Output(fresh, metadata={"rule": rule.name,
                                      **_counts(_written("company_matches", fresh, config, warehouse)),
                                      **_scope_metadata(config, len(fresh))})


@dg.asset(description="Each Enginy contact's outcome against the CRM's contacts (and Salesforce leads): a "
                      "person our push created by the Enginy id they carry, the others under the contact "
                      "identifier, with a near miss proposed for review where the rule found nothing.",
          deps=["enginy_contacts", "crm_contacts", "crm_leads", "company_matches"], **_common)
def contact_matches(config: MatchScope, integration: IntegrationSettings, crm: CrmResource,
                    warehouse: Warehouse) -> dg.Output[pd.DataFrame]:
    settings = integration.load()
    rule = contact_rule(settings.contact_identifier)
    people = crm_people(settings.active_crm, crm_snapshot(warehouse, "crm_contacts"),
                        crm_snapshot(warehouse, "crm_leads"))
    index = CrmIndex(rule, people, also=near_miss.FIELDS)
    changed = changed_records(warehouse, "enginy_contacts", config.only_changed_since)
    companies = (warehouse.rows_with_keys("company_matches", "enginy_id",
                                          changed["company_id"].dropna().astype(str).tolist())
                 if config.only_changed_since else warehouse.read_table("company_matches"))
    # A person our push created is found by the Enginy id they carry, before the rules (and no
    # near miss is proposed for them).
    objects = {"contacts": "crm_contacts",
               **({"leads": "crm_leads"} if registry.facts(settings.active_crm).leads_may_be_people else {})}
    owned = ours(warehouse, objects, changed["id"].astype(str).tolist(), crm.client().enginy_id_field)
    fresh = near_miss.add_near_misses(index, matched_by_own_id(index.match(changed, company_links(companies)), owned))
    matches = _written("contact_matches", fresh, config, warehouse)
    return dg.Output(fresh, metadata={"rule": rule.name, **_counts(matches),
                                      "near_misses": int(matches["near_miss_crm_id"].notna().sum()),
                                      **_scope_metadata(config, len(fresh))})


@dg.asset(description="Groups of CRM records the identifier rules say are one record: duplicates already "
                      "inside the CRM, for someone to merge there.",
          deps=["crm_contacts", "crm_leads", "crm_companies"], **_common)
def crm_duplicates(integration: IntegrationSettings, warehouse: Warehouse) -> dg.Output[pd.DataFrame]:
    config = integration.load()
    crm_contacts, crm_leads, crm_companies = (crm_snapshot(warehouse, name)
                                              for name in ("crm_contacts", "crm_leads", "crm_companies"))
    people = CrmIndex(contact_rule(config.contact_identifier),
                      crm_people(config.active_crm, crm_contacts, crm_leads)).duplicates()
    companies = CrmIndex(company_rule(config.company_identifier),
                         crm_companies.assign(object="companies")).duplicates()
    duplicates = pd.concat([companies, people], ignore_index=True)
    return dg.Output(duplicates, metadata={"groups": int(duplicates["duplicate_group"].nunique()),
                                           "records": len(duplicates)})


class ReportConfig(dg.Config):
    report_dir: str = "data/reports"
    """Folder the HTML report is written to (the UI shows its path)."""


@dg.asset(description="Match quality for analysts: when, for which CRM, rules and run; outcome rates per "
                      "object and rule group, identifier fill rates, matched and ambiguous records, CRM duplicates "
                      "and near misses, each record by name beside its id; the full page is a self-contained HTML "
                      "file, and each object's figures are numeric metadata to plot across runs.",
          deps=["crm_companies", "crm_contacts", "crm_leads"], **_common)
def match_quality_report(context: dg.AssetExecutionContext, config: ReportConfig, company_matches: pd.DataFrame,
                         contact_matches: pd.DataFrame, crm_duplicates: pd.DataFrame, enginy_companies: pd.DataFrame,
                         enginy_contacts: pd.DataFrame, integration: IntegrationSettings,
                         warehouse: Warehouse) -> dg.Output[pd.DataFrame]:
    settings = integration.load()
    # The snapshots without their raw fields, which the report does not read (most of their bytes).
    crm_companies, crm_contacts, crm_leads = (crm_snapshot(warehouse, name)
                                              for name in ("crm_companies", "crm_contacts", "crm_leads"))
    company_identifier, contact_identifier = (company_rule(settings.company_identifier),
                                              contact_rule(settings.contact_identifier))
    fills = pd.concat([
        fill_rates(company_identifier, enginy_companies,
                   crm_companies.assign(object="companies")).assign(object="companies"),
        fill_rates(contact_identifier, enginy_contacts,
                   crm_people(settings.active_crm, crm_contacts, crm_leads),
                   company_links(company_matches)).assign(object="contacts"),
    ], ignore_index=True)[["object", "side", "identifier", "records", "filled"]]
    header = ReportHeader(
        generated_at=datetime.now(timezone.utc),
        crm=f"{registry.facts(settings.active_crm).label} ({settings.crm.settings.environment})",
        rules={"companies": company_identifier, "contacts": contact_identifier},
        config_path=str(integration.path()), run_id=context.run.run_id)
    records = Records(enginy={"companies": enginy_companies, "contacts": enginy_contacts},
                      crm={"companies": crm_companies, "contacts": crm_contacts, "leads": crm_leads})
    report = build_report({"companies": company_matches, "contacts": contact_matches}, crm_duplicates, fills,
                          records, header)
    path = Path(config.report_dir) / REPORT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report.html(), encoding="utf-8")
    # Numbers as numbers, so the asset's page plots each of them across materializations.
    figures = {name: dg.MetadataValue.float(value) if isinstance(value, float) else dg.MetadataValue.int(value)
               for name, value in report.metrics().items()}
    return dg.Output(report.outcomes, metadata={"report": dg.MetadataValue.md(report.markdown()),
                                                "html_report": dg.MetadataValue.path(str(path.resolve())),
                                                **figures})


matching_assets = [company_matches, contact_matches, crm_duplicates, match_quality_report]
