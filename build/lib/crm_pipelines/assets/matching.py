"""Matching assets: which Enginy records already exist in the CRM, which records the CRM already
holds twice, and the report analysts read. The rules come from Step 1 of the integration config;
the work is done by crm_pipelines.matching.

The snapshots are partitioned by day; these assets are not, and read each snapshot whole (the
warehouse IO manager loads the full table whatever partitions are asked for), because a match
is only right against every record the CRM holds.
"""

from pathlib import Path

import dagster as dg
import pandas as pd

from crm_pipelines.crms import registry
from crm_pipelines.matching import near_miss
from crm_pipelines.matching.engine import CrmIndex, company_links, fill_rates
from crm_pipelines.matching.report import build_report
from crm_pipelines.matching.rules import company_rule, contact_rule
from crm_pipelines.resources.integration import IntegrationSettings
from crm_pipelines.resources.warehouse import Warehouse

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


def _merged(name: str, fresh: pd.DataFrame, scope: MatchScope, warehouse: Warehouse) -> pd.DataFrame:
    """A scoped match's rows in place of the same records' rows in the last full table."""
    if not scope.only_changed_since or name not in warehouse.table_names():
        return fresh
    kept = warehouse.read_table(name)
    kept = kept[~kept["enginy_id"].astype(str).isin(fresh["enginy_id"].astype(str))]
    return pd.concat([kept, fresh], ignore_index=True)


def _scope_metadata(scope: MatchScope, matched: int) -> dict[str, object]:
    if not scope.only_changed_since:
        return {"scope": "every Enginy record"}
    return {"scope": f"Enginy records updated after {scope.only_changed_since}", "records_rematched": matched}


@dg.asset(description="Each Enginy company's outcome against the CRM's companies under the company "
                      "identifier: new (create), matched (update) or ambiguous (held for review).", **_common)
def company_matches(config: MatchScope, enginy_companies: pd.DataFrame, crm_companies: pd.DataFrame,
                    integration: IntegrationSettings, warehouse: Warehouse) -> dg.Output[pd.DataFrame]:
    rule = company_rule(integration.load().company_identifier)
    changed = changed_since(enginy_companies, config.only_changed_since)
    fresh = CrmIndex(rule, crm_companies.assign(object="companies")).match(changed)
    matches = _merged("company_matches", fresh, config, warehouse)
    return dg.Output(matches, metadata={"rule": rule.name, **_counts(matches),
                                        **_scope_metadata(config, len(fresh))})


@dg.asset(description="Each Enginy contact's outcome against the CRM's contacts (and Salesforce leads) "
                      "under the contact identifier, with a near miss proposed for review where the rule "
                      "found nothing.", **_common)
def contact_matches(config: MatchScope, enginy_contacts: pd.DataFrame, crm_contacts: pd.DataFrame,
                    crm_leads: pd.DataFrame, company_matches: pd.DataFrame, integration: IntegrationSettings,
                    warehouse: Warehouse) -> dg.Output[pd.DataFrame]:
    settings = integration.load()
    rule = contact_rule(settings.contact_identifier)
    index = CrmIndex(rule, crm_people(settings.active_crm, crm_contacts, crm_leads), also=near_miss.FIELDS)
    changed = changed_since(enginy_contacts, config.only_changed_since)
    fresh = near_miss.add_near_misses(index, index.match(changed, company_links(company_matches)))
    matches = _merged("contact_matches", fresh, config, warehouse)
    return dg.Output(matches, metadata={"rule": rule.name, **_counts(matches),
                                        "near_misses": int(matches["near_miss_crm_id"].notna().sum()),
                                        **_scope_metadata(config, len(fresh))})


@dg.asset(description="Groups of CRM records the identifier rules say are one record: duplicates already "
                      "inside the CRM, for someone to merge there.", **_common)
def crm_duplicates(crm_contacts: pd.DataFrame, crm_leads: pd.DataFrame, crm_companies: pd.DataFrame,
                   integration: IntegrationSettings) -> dg.Output[pd.DataFrame]:
    config = integration.load()
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


@dg.asset(description="Match quality for analysts: outcome rates per object and rule group, identifier "
                      "fill rates, ambiguous records, CRM duplicates and near misses; the full page is a "
                      "self-contained HTML file.", **_common)
def match_quality_report(config: ReportConfig, company_matches: pd.DataFrame, contact_matches: pd.DataFrame,
                         crm_duplicates: pd.DataFrame, enginy_companies: pd.DataFrame,
                         enginy_contacts: pd.DataFrame, crm_companies: pd.DataFrame, crm_contacts: pd.DataFrame,
                         crm_leads: pd.DataFrame, integration: IntegrationSettings) -> dg.Output[pd.DataFrame]:
    settings = integration.load()
    fills = pd.concat([
        fill_rates(company_rule(settings.company_identifier), enginy_companies,
                   crm_companies.assign(object="companies")).assign(object="companies"),
        fill_rates(contact_rule(settings.contact_identifier), enginy_contacts,
                   crm_people(settings.active_crm, crm_contacts, crm_leads),
                   company_links(company_matches)).assign(object="contacts"),
    ], ignore_index=True)[["object", "side", "identifier", "records", "filled"]]
    report = build_report({"companies": company_matches, "contacts": contact_matches}, crm_duplicates, fills)
    path = Path(config.report_dir) / REPORT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report.html(), encoding="utf-8")
    return dg.Output(report.outcomes, metadata={"report": dg.MetadataValue.md(report.markdown()),
                                                "html_report": dg.MetadataValue.path(str(path.resolve()))})


matching_assets = [company_matches, contact_matches, crm_duplicates, match_quality_report]
