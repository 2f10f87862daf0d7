"""The match-quality report: every number it prints is what the match tables say, and the HTML
page stands alone (inline SVG charts, nothing fetched)."""

from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd
import pytest

from crm_pipelines.config import CompanyIdentifier, ContactIdentifier
from crm_pipelines.matching import near_miss
from crm_pipelines.matching.engine import CrmIndex, company_links, fill_rates
from crm_pipelines.matching.normalize import normalize
from crm_pipelines.matching.report import build_report
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
    report = build_report({"companies": companies, "contacts": contacts}, duplicates, fills)
    return {"companies": companies, "contacts": contacts, "duplicates": duplicates, "people": people,
            "report": report}


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
    assert {(r["object"], int(r["groups"]), int(r["records"])) for r in parsed["Duplicates inside the CRM"]} == {
        (obj, frame["duplicate_group"].nunique(), len(frame)) for obj, frame in duplicates.groupby("crm_object")}
    for row in parsed["Duplicate groups inside the CRM (first 10)"]:
        assert row["crm_id"] in set(duplicates.loc[duplicates["duplicate_group"] == row["duplicate_group"], "crm_id"])
    near = tables["contacts"]["near_miss_score"].dropna()
    assert len(near) > 10
    assert {r["object"]: int(r["near_misses"]) for r in parsed["Near misses"]} == {"companies": 0, "contacts": len(near)}
    samples = parsed["Near misses, best scores first (first 10 per object)"]
    assert [float(r["near_miss_score"]) for r in samples] == sorted(near, reverse=True)[:10]
    bins = parsed["Near-miss score histogram"]
    expected, _ = np.histogram(near, bins=[float(b["low"]) for b in bins] + [float(bins[-1]["high"])])
    assert [int(b["near_misses"]) for b in bins] == expected.tolist()
    assert sum(expected) == len(near)


def test_the_html_page_prints_the_same_tables_and_needs_nothing_from_outside(tables):
    report = tables["report"]
    page = report.html()
    assert page.count("<svg") == 2
    assert not re.search(r"<script|<link|<img|src=|href=|@import|url\(", page)
    assert re.findall(r"https?://[^\"']+", page) == ["http://www.w3.org/2000/svg"] * 2
    markdown_cells = [cell for rows in sections(report.markdown()).values() for row in rows for cell in row.values()]
    html_cells = [html.unescape(c) for c in re.findall(r"<td>(.*?)</td>", page)]
    assert html_cells == markdown_cells


def test_the_rate_chart_bars_carry_the_outcome_counts(tables):
    chart = tables["report"].rate_chart()
    for obj in ("companies", "contacts"):
        table = tables[obj]
        for outcome in ("matched", "new", "ambiguous"):
            count = int((table["outcome"] == outcome).sum())
            assert f"<title>{outcome}: {count} ({pct(count, len(table))})</title>" in chart
    widths = [float(w) for w in re.findall(r'<rect x="[\d.]+" y="\d+" width="([\d.]+)" height="26"', chart)]
    assert sum(widths[:3]) == pytest.approx(520, abs=0.5)  # the three shares of one object fill its bar
