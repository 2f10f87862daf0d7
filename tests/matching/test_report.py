"""The match-quality report: every number it prints is what the match tables say, every record it
shows is named as the records say, it says when and of what it was made, and the HTML page stands
alone (inline SVG charts, nothing fetched)."""

from __future__ import annotations

import html
import math
import re
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from crm_pipelines.config import CompanyIdentifier, ContactIdentifier
from crm_pipelines.matching import near_miss
from crm_pipelines.matching.engine import CrmIndex, company_links, fill_rates
from crm_pipelines.matching.normalize import normalize
from crm_pipelines.matching.report import SAMPLES, Records, ReportHeader, build_report
from crm_pipelines.matching.rules import company_rule, contact_rule


@pytest.fixture(scope="module")
def tables(world):
    companies_rule = company_rule(CompanyIdentifier(rule="domain", include_any_domain_extension=True))
    companies = CrmIndex(companies_rule, world.crm_companies).match(world.enginy_companies)
    people_rule = contact_rule(ContactIdentifier())
    # Some CRM people lose their LinkedIn URL and a letter of their first name: near misses.
    people = world.crm_people.copy()
    varied = people.index[::40]
    people.loc[varied, "linkedin_url"] = None
    people.loc[varied, "first_name"] = people.loc[varied, "first_name"].str[:-1]
    index = CrmIndex(people_rule, people, also=near_miss.FIELDS)
    contacts = near_miss.add_near_misses(index, index.match(world.enginy_contacts, company_links(companies)))
    duplicates = pd.concat([CrmIndex(companies_rule, world.crm_companies).duplicates(),
                            CrmIndex(people_rule, people).duplicates()], ignore_index=True)
    fills = pd.concat([
        fill_rates(companies_rule, world.enginy_companies, world.crm_companies).assign(object="companies"),
        fill_rates(people_rule, world.enginy_contacts, people, company_links(companies)).assign(object="contacts"),
    ], ignore_index=True)[["object", "side", "identifier", "records", "filled"]]
    records = Records(enginy={"companies": world.enginy_companies, "contacts": world.enginy_contacts},
                      crm={"companies": world.crm_companies, "contacts": people[people["object"] == "contacts"],
                           "leads": people[people["object"] == "leads"]})
    header = ReportHeader(datetime(2024, 10, 1, 14, 30, tzinfo=timezone.utc), "Salesforce (sandbox)",
                          {"companies": companies_rule, "contacts": people_rule}, "config/integration.yaml", "run-4711")
    matches = {"companies": companies, "contacts": contacts}
    report = build_report(matches, duplicates, fills, records, header)
    return {"companies": companies, "contacts": contacts, "duplicates": duplicates, "people": people,
            "fills": fills, "records": records, "header": header, "report": report}


def sections(markdown: str) -> dict[str, list[dict[str, str]]]:
    """Each ### section's table as rows of column → cell text."""
    parsed = {}
    for block in markdown.split("### ")[1:]:
        title, _, body = block.partition("\n\n")
        lines = [line for line in body.strip().splitlines() if line.startswith("|")]
        if not lines:
            parsed[title] = []
            continue
        split = lambda line: [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]  # noqa: E731
        header = split(lines[0])
        parsed[title] = [dict(zip(header, split(line))) for line in lines[2:]]
    return parsed


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%"


def test_outcome_counts_and_rates_are_the_match_tables(tables):
    rows = sections(tables["report"].markdown())["Outcomes"]
    assert [r["object"] for r in rows] == ["companies", "contacts"]
    for row in rows:
        table = tables[row["object"]]
        assert int(row["records"]) == len(table)
        for outcome in ("matched", "new", "ambiguous"):
            count = int((table["outcome"] == outcome).sum())
            assert int(row[outcome]) == count
            assert row[f"{outcome} %"] == pct(count, len(table))


def test_per_group_counts_are_the_match_tables(tables):
    rows = sections(tables["report"].markdown())["By rule group"]
    expected = set()
    for obj in ("companies", "contacts"):
        table = tables[obj]
        for group in {g for by in table["matched_by"].dropna() for g in by.split(" | ")}:
            has = table["matched_by"].fillna("").map(lambda by: group in by.split(" | "))
            expected.add((obj, group, int((has & (table["outcome"] == "matched")).sum()),
                          int((has & (table["outcome"] == "ambiguous")).sum())))
    assert {(r["object"], r["group"], int(r["matched"]), int(r["ambiguous"])) for r in rows} == expected
    assert len(rows) == len(expected) == 1 + 3  # domain; linkedin, name, name through the company


def test_fill_rates_count_usable_identifiers_on_both_sides(tables, world):
    rows = {(r["object"], r["side"], r["identifier"]): r for r in sections(tables["report"].markdown())["Identifier fill rates"]}

    def usable(values, kind):
        return sum(v is not None for v in normalize(values.where(values.notna(), None).tolist(), kind))

    checks = {("contacts", "Enginy", "linkedin_url"): (world.enginy_contacts["linkedin_url"], "linkedin"),
              ("contacts", "CRM", "linkedin_url"): (tables["people"]["linkedin_url"], "linkedin"),
              ("contacts", "Enginy", "first_name"): (world.enginy_contacts["first_name"], "person_name"),
              ("companies", "CRM", "domain"): (world.crm_companies["domain"], "domain_any_extension")}
    for key, (values, kind) in checks.items():
        assert int(rows[key]["records"]) == len(values)
        assert int(rows[key]["filled"]) == usable(values, kind)
        assert rows[key]["%"] == pct(usable(values, kind), len(values))
    through = rows[("contacts", "Enginy", "company_id (matched company)")]
    matched = set(tables["companies"].loc[tables["companies"]["outcome"] == "matched", "enginy_id"])
    assert int(through["filled"]) == int(world.enginy_contacts["company_id"].isin(matched).sum())


def test_ambiguous_duplicate_and_near_miss_figures_are_the_tables(tables):
    parsed = sections(tables["report"].markdown())
    for row in parsed["Ambiguous records (first 10 per object)"]:
        source = tables[row["object"]].set_index("enginy_id").loc[row["enginy_id"]]
        assert source["outcome"] == "ambiguous" and row["candidates"] == source["candidates"]
    duplicates = tables["duplicates"]
    people = duplicates["crm_object"] != "companies"  # leads are matched, and reported, with contacts
    assert {(r["object"], int(r["groups"]), int(r["records"])) for r in parsed["Duplicates inside the CRM"]} == {
        ("companies", duplicates.loc[~people, "duplicate_group"].nunique(), int((~people).sum())),
        ("contacts", duplicates.loc[people, "duplicate_group"].nunique(), int(people.sum()))}
    near = tables["contacts"]["near_miss_score"].dropna()
    assert len(near) > 10
    assert {r["object"]: int(r["near_misses"]) for r in parsed["Near misses"]} == {"companies": 0, "contacts": len(near)}
    samples = parsed["Near misses, best scores first (first 10 per object)"]
    assert [float(r["near_miss_score"]) for r in samples] == sorted(near, reverse=True)[:10]
    bins = parsed["Near-miss score histogram"]
    expected, _ = np.histogram(near, bins=[float(b["low"]) for b in bins] + [float(bins[-1]["high"])])
    assert [int(b["near_misses"]) for b in bins] == expected.tolist()
    assert sum(expected) == len(near)


def test_the_header_says_when_for_which_crm_under_which_rules_and_in_which_run(tables):
    report = tables["report"]
    for page in (report.markdown(), html.unescape(report.html())):
        for says in ("2024-10-01 14:30:00 UTC", "Salesforce (sandbox)", "run-4711", "config/integration.yaml",
                     "companies: domain_any_extension (domain)",
                     "contacts: linkedin_or_name_company (linkedin_url or first_name + last_name + company_name)"):
            assert says in page


def says_who(cell: str, record: pd.Series) -> bool:
    """The cell names ``record``: a person's name and email, a company's name and domain."""
    if "first_name" in record:
        parts = [f"{record['first_name'].strip()} {record['last_name'].strip()}", record["email"]]
    else:
        parts = [record["name"], record["domain"] if isinstance(record["domain"], str) else record["website"]]
    return all(part.strip() in cell for part in parts if isinstance(part, str))


def test_every_record_shown_is_named_beside_its_id(tables, world):
    parsed = sections(tables["report"].markdown())
    enginy = {"companies": world.enginy_companies.set_index("id"), "contacts": world.enginy_contacts.set_index("id")}
    crm = {"companies": world.crm_companies.set_index("crm_id"), "contacts": tables["people"].set_index("crm_id"),
           "leads": tables["people"].set_index("crm_id")}
    shown = 0
    for row in parsed["Matched records (first 10 per object)"]:
        source = tables[row["object"]].set_index("enginy_id").loc[row["enginy_id"]]
        assert source["outcome"] == "matched" and row["crm_id"] == source["crm_id"]
        assert says_who(row["enginy_record"], enginy[row["object"]].loc[row["enginy_id"]])
        assert says_who(row["crm_record"], crm[row["crm_object"]].loc[row["crm_id"]])
        shown += 1
    for row in parsed["Ambiguous records (first 10 per object)"]:
        assert says_who(row["enginy_record"], enginy[row["object"]].loc[row["enginy_id"]])
        listed = row["candidate_records"].split("; ")
        assert [entry.split(": ")[0] for entry in listed] == row["candidates"].split(", ")
        for entry in listed:
            crm_id, _, cell = entry.partition(": ")
            assert says_who(cell, crm["contacts" if row["object"] == "contacts" else "companies"].loc[crm_id])
        shown += 1
    for row in parsed["Near misses, best scores first (first 10 per object)"]:
        assert says_who(row["enginy_record"], enginy[row["object"]].loc[row["enginy_id"]])
        assert says_who(row["crm_record"], crm["contacts"].loc[row["near_miss_crm_id"]])
        shown += 1
    assert shown == 20 + 20 + 10


def test_duplicate_groups_are_shown_per_object_with_their_records_named(tables, world):
    parsed = sections(tables["report"].markdown())
    duplicates = tables["duplicates"]
    crm = {"companies": world.crm_companies.set_index("crm_id"), "contacts": tables["people"].set_index("crm_id"),
           "leads": tables["people"].set_index("crm_id")}
    for obj, members in (("companies", duplicates[duplicates["crm_object"] == "companies"]),
                         ("contacts", duplicates[duplicates["crm_object"] != "companies"])):
        groups = sorted(members["duplicate_group"].unique())
        assert len(groups) > SAMPLES  # so a first ten of all groups would be companies only
        title = f"Duplicate groups inside the CRM: {obj} ({SAMPLES} of {len(groups)} groups shown)"
        rows = parsed[title]
        assert sorted({r["duplicate_group"] for r in rows}) == groups[:SAMPLES]
        assert sorted(r["crm_id"] for r in rows) == sorted(members.loc[members["duplicate_group"].isin(
            groups[:SAMPLES]), "crm_id"])
        for row in rows:
            assert says_who(row["crm_record"], crm[row["crm_object"]].loc[row["crm_id"]]) and row["crm_record"]


def test_the_rule_group_table_says_when_a_record_is_counted_under_several_groups(tables):
    markdown = tables["report"].markdown()
    note = markdown.split("### By rule group")[1].split("###")[0].strip().splitlines()[-1]
    several = int(tables["contacts"]["matched_by"].str.contains("|", regex=False).sum())
    assert several > 0 and "|" not in tables["companies"]["matched_by"].dropna().str.cat()
    assert f"(contacts: {several})" in note and "companies" not in note


def test_the_metrics_are_the_match_tables_figures(tables):
    metrics = tables["report"].metrics()
    duplicates = tables["duplicates"]
    people = duplicates["crm_object"] != "companies"
    for obj, groups in (("companies", duplicates.loc[~people, "duplicate_group"].nunique()),
                        ("contacts", duplicates.loc[people, "duplicate_group"].nunique())):
        table = tables[obj]
        matched = int((table["outcome"] == "matched").sum())
        assert metrics[f"{obj}_match_pct"] == pytest.approx(100 * matched / len(table))
        assert metrics[f"{obj}_matched"] == matched and metrics[f"{obj}_records"] == len(table)
        assert metrics[f"{obj}_new"] == int((table["outcome"] == "new").sum())
        assert metrics[f"{obj}_ambiguous"] == int((table["outcome"] == "ambiguous").sum())
        near = int(table["near_miss_crm_id"].notna().sum()) if "near_miss_crm_id" in table else 0
        assert metrics[f"{obj}_near_misses"] == near
        assert metrics[f"{obj}_crm_duplicate_groups"] == groups
    assert metrics["contacts_near_misses"] > 0 and all(
        isinstance(v, int) for k, v in metrics.items() if not k.endswith("_match_pct"))


def test_an_object_without_records_duplicates_or_near_misses_has_zeros_and_no_match_rate(tables):
    empty = tables["companies"].iloc[:0]
    report = build_report({"companies": empty}, tables["duplicates"].iloc[:0], tables["fills"].iloc[:0],
                          tables["records"], tables["header"])
    metrics = report.metrics()
    assert math.isnan(metrics.pop("companies_match_pct"))
    assert metrics == {f"companies_{name}": 0 for name in
                       ("records", "new", "matched", "ambiguous", "near_misses", "crm_duplicate_groups")}
    assert "(0 of 0 groups shown)" in report.markdown()


def test_crm_text_is_escaped_in_the_page(tables, world):
    shown = sections(tables["report"].markdown())[
        "Duplicate groups inside the CRM: companies (10 of 18 groups shown)"][0]["crm_id"]
    crm_companies = world.crm_companies.assign(name=world.crm_companies["name"].where(
        world.crm_companies["crm_id"] != shown, '<img src=x onerror="alert(1)"> & Co'))
    records = tables["records"]
    records = type(records)(enginy=records.enginy, crm={**records.crm, "companies": crm_companies})
    page = build_report({"companies": tables["companies"], "contacts": tables["contacts"]}, tables["duplicates"],
                        tables["fills"], records, tables["header"]).html()
    assert "<img" not in page and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; Co" in page


def test_the_html_page_prints_the_same_tables_and_needs_nothing_from_outside(tables):
    report = tables["report"]
    page = report.html()
    assert page.count("<svg") == 2
    assert not re.search(r"<script|<link|<img|src=|href=|@import|url\(", page)
    # Websites named in the tables are text; the only address in the markup is SVG's namespace.
    markup = re.sub(r"<td>.*?</td>", "", page)
    assert re.findall(r"https?://[^\"']+", markup) == ["http://www.w3.org/2000/svg"] * 2
    markdown_cells = [cell for rows in sections(report.markdown()).values() for row in rows for cell in row.values()]
    html_cells = [html.unescape(c) for c in re.findall(r"<td>(.*?)</td>", page)]
    assert html_cells == markdown_cells


def test_the_chart_bars_carry_their_numbers(tables):
    chart = tables["report"].rate_chart()
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", chart)
    for obj in ("companies", "contacts"):
        table = tables[obj]
        caption = next(t for t in texts if t.startswith("new ") and t.endswith(f" of {len(table):,}"))
        for outcome in ("matched", "new", "ambiguous"):
            count = int((table["outcome"] == outcome).sum())
            assert f"<title>{outcome}: {count} ({pct(count, len(table))})</title>" in chart
            assert f"{outcome} {count:,} ({pct(count, len(table))})" in caption
    matched = int((tables["contacts"]["outcome"] == "matched").sum())
    assert f"{matched:,} ({pct(matched, 3000)})" in texts  # wide enough to carry it on the bar itself
    widths = [float(w) for w in re.findall(r'<rect x="[\d.]+" y="\d+" width="([\d.]+)" height="26"', chart)]
    assert sum(widths[:3]) == pytest.approx(520, abs=0.5)  # the three shares of one object fill its bar
    histogram = tables["report"].score_chart()
    labels = re.findall(r'text-anchor="middle">([\d,]+)</text>', histogram)
    assert [int(n.replace(",", "")) for n in labels] == tables["report"].score_histogram["near_misses"].tolist()
