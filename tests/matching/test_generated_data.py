"""The identifier rules on generated data, scored against its ground truth: every spelling
variant a rule claims to cover is matched, and different people or companies are merged only
where the configured rule itself says they are the same."""

from __future__ import annotations

import unicodedata

import pandas as pd
import pytest

from crm_pipelines.config import CompanyIdentifier, ContactIdentifier, FieldCondition
from crm_pipelines.matching.engine import AMBIGUOUS, MATCHED, company_links, match
from crm_pipelines.matching.rules import Rule, company_rule, contact_rule, custom_groups


def pairs(matches: pd.DataFrame) -> dict[tuple[str, str], str]:
    """(Enginy id, CRM id) → the groups that matched, for matched and ambiguous records."""
    found = matches[matches["outcome"].isin([MATCHED, AMBIGUOUS])]
    crm = found["crm_id"].where(found["outcome"] == MATCHED, found["candidates"]).str.split(", ")
    return {(e, c): by for e, cs, by in zip(found["enginy_id"], crm, found["matched_by"]) for c in cs}


def true_pairs(world, enginy_ids, crm_ids) -> set[tuple[str, str]]:
    enginy = pd.DataFrame({"e": list(enginy_ids)}).assign(entity=lambda f: f["e"].map(world.entity))
    crm = pd.DataFrame({"c": list(crm_ids)}).assign(entity=lambda f: f["c"].map(world.entity))
    joined = enginy.merge(crm, on="entity")
    return set(zip(joined["e"], joined["c"]))


def has(world, record_id: str, prefix: str) -> bool:
    return any(v.startswith(prefix) for v in world.variants[record_id].split(";") if v)


def fold(text: str) -> str:
    """A deliberately simple reference spelling: no accents, no case, letters and digits only."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return "".join(c for c in plain.casefold() if c.isalnum())


@pytest.fixture(scope="module")
def company_matches(world):
    return match(company_rule(CompanyIdentifier(rule="domain", include_any_domain_extension=True)),
                 world.enginy_companies, world.crm_companies)


def company_entity_of_contacts(world) -> dict[str, str]:
    """Contact record id → the company entity the person works for, both sides."""
    crm = world.generated.crm.contacts
    return {**dict(zip(world.enginy_contacts["id"], world.enginy_contacts["company_id"].map(world.entity))),
            **dict(zip(crm["seed_id"], crm["company_seed_id"].map(world.entity)))}


@pytest.mark.parametrize("rule, variant", [
    (Rule("linkedin", custom_groups([[FieldCondition(enginy="linkedin_url", crm="linkedin_url")]])), "linkedin_url:form"),
    (contact_rule(ContactIdentifier(rule="name_company")), "first_name:"),
    (contact_rule(ContactIdentifier(rule="name_company")), "last_name:"),
    (contact_rule(ContactIdentifier(rule="name_company")), "company_name:"),
])
def test_every_contact_variant_the_rule_covers_is_matched(world, company_matches, rule, variant):
    found = pairs(match(rule, world.enginy_contacts, world.crm_people, company_links(company_matches)))
    truth = true_pairs(world, world.enginy_contacts["id"], world.crm_people["crm_id"])
    people = world.crm_people.set_index("crm_id")
    enginy = world.enginy_contacts.set_index("id")
    varied = {(e, c) for e, c in truth if has(world, e, variant) or has(world, c, variant)}
    if variant.startswith("linkedin"):  # a LinkedIn rule needs the URL on both sides
        varied = {(e, c) for e, c in varied if pd.notna(enginy.at[e, "linkedin_url"]) and pd.notna(people.at[c, "linkedin_url"])}
    assert len(varied) > 20
    assert varied <= set(found)


def test_linkedin_or_name_company_finds_every_shared_person_and_merges_only_namesakes_at_one_company(
        world, company_matches):
    found = pairs(match(contact_rule(ContactIdentifier()), world.enginy_contacts, world.crm_people,
                        company_links(company_matches)))
    truth = true_pairs(world, world.enginy_contacts["id"], world.crm_people["crm_id"])
    assert truth <= set(found)  # recall 1.0
    company_of = company_entity_of_contacts(world)
    enginy = world.enginy_contacts.set_index("id")
    crm = world.crm_people.set_index("crm_id")
    wrong = set(found) - truth
    for e, c in wrong:
        # The rule says "first name + last name + company name": two people with the same name at
        # the same company are one contact to it — and nothing else may be merged.
        # (A namesake copied into a company only the CRM has carries no Enginy company id.)
        assert company_of[e] == company_of[c] or (pd.isna(company_of[e]) and has(world, e, "homonym_same_company"))
        assert fold(enginy.at[e, "first_name"]) == fold(crm.at[c, "first_name"])
        assert fold(enginy.at[e, "last_name"]) == fold(crm.at[c, "last_name"])
    precision = 1 - len(wrong) / len(found)
    assert precision > 0.99


def test_namesakes_at_other_companies_are_never_merged(world, company_matches):
    found = pairs(match(contact_rule(ContactIdentifier()), world.enginy_contacts, world.crm_people,
                        company_links(company_matches)))
    homonyms = {r for r, v in world.variants.items() if "homonym" in v.split(";")}
    assert len(homonyms) > 10
    involved = [(e, c) for e, c in found if e in homonyms or c in homonyms]
    assert involved  # homonyms that do exist on both sides are still found…
    assert all(world.entity[e] == world.entity[c] for e, c in involved)  # …and only as themselves


def test_namesakes_at_the_same_company_are_merged_by_name_company_and_never_by_linkedin(world, company_matches):
    by_name = pairs(match(contact_rule(ContactIdentifier(rule="name_company")), world.enginy_contacts,
                          world.crm_people, company_links(company_matches)))
    by_linkedin = pairs(match(Rule("linkedin", custom_groups([[FieldCondition(enginy="linkedin_url", crm="linkedin_url")]])),
                              world.enginy_contacts, world.crm_people))
    same_company = {r for r, v in world.variants.items() if "homonym_same_company" in v.split(";")}
    merged = [(e, c) for e, c in by_name if (e in same_company or c in same_company) and world.entity[e] != world.entity[c]]
    assert merged, "the generator's same-company namesakes should meet the rule"
    assert all(world.entity[e] == world.entity[c] for e, c in by_linkedin)


@pytest.mark.parametrize("identifier, variant", [
    (CompanyIdentifier(rule="domain"), "domain:url_form"),
    (CompanyIdentifier(rule="domain", include_any_domain_extension=True), "domain:other_extension"),
    (CompanyIdentifier(rule="custom", custom=[[FieldCondition(enginy="name", crm="name")]]), "name:"),
])
def test_every_company_variant_the_rule_covers_is_matched(world, identifier, variant):
    found = pairs(match(company_rule(identifier), world.enginy_companies, world.crm_companies))
    truth = true_pairs(world, world.enginy_companies["id"], world.crm_companies["crm_id"])
    varied = {(e, c) for e, c in truth if has(world, e, variant) or has(world, c, variant)}
    if not identifier.include_any_domain_extension:  # the one variant the exact domain rule leaves out
        varied = {(e, c) for e, c in varied
                  if not has(world, e, "domain:other_extension") and not has(world, c, "domain:other_extension")}
    assert len(varied) > 5
    assert varied <= set(found)


def test_another_domain_extension_is_a_different_company_unless_the_config_says_otherwise(world):
    exact = pairs(match(company_rule(CompanyIdentifier(rule="domain")), world.enginy_companies, world.crm_companies))
    truth = true_pairs(world, world.enginy_companies["id"], world.crm_companies["crm_id"])
    other_extension = {(e, c) for e, c in truth if has(world, e, "domain:other_extension")
                       or has(world, c, "domain:other_extension")}
    assert other_extension and not other_extension & set(exact)


@pytest.mark.parametrize("identifier", [CompanyIdentifier(rule="domain"),
                                        CompanyIdentifier(rule="domain", include_any_domain_extension=True)])
def test_different_companies_are_merged_only_when_they_share_the_domain_the_rule_compares(world, identifier):
    found = pairs(match(company_rule(identifier), world.enginy_companies, world.crm_companies))
    truth = true_pairs(world, world.enginy_companies["id"], world.crm_companies["crm_id"])
    assert truth - {p for p in truth if has(world, p[0], "domain:other_extension")
                    or has(world, p[1], "domain:other_extension")} <= set(found)
    enginy = world.enginy_companies.set_index("id")["domain"]
    crm = world.crm_companies.set_index("crm_id")["domain"]

    def bare(domain: str) -> str:
        host = domain.lower().removeprefix("https://").removeprefix("www.").rstrip("/")
        return host.split(".")[0] if identifier.include_any_domain_extension else host

    wrong = set(found) - truth
    assert all(bare(enginy[e]) == bare(crm[c]) for e, c in wrong)
