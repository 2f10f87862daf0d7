"""Identifier rules compiled to equality keys: an OR of AND-groups of field conditions.

The seeds' options (Step 1, "Contact Identifier" and "Company Identifier") are fixed rules in
the same language as "Custom Mapping", so one engine evaluates all of them: a record matches
when every condition of at least one AND-group holds after normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from crm_pipelines.config import CompanyIdentifier, ContactIdentifier, FieldCondition
from crm_pipelines.matching.normalize import resolve


@dataclass(frozen=True)
class Condition:
    """An Enginy field equals a CRM field once both are normalised the same way."""

    enginy: str
    crm: str
    normalize: str

    @property
    def label(self) -> str:
        return self.enginy if self.enginy == self.crm else f"{self.enginy}={self.crm}"


@dataclass(frozen=True)
class Group:
    """An AND-group: all its conditions must hold."""

    conditions: tuple[Condition, ...]

    @property
    def label(self) -> str:
        return " + ".join(c.label for c in self.conditions)


@dataclass(frozen=True)
class Rule:
    """The identifier: ``name`` is the option chosen in the config, ``groups`` its OR."""

    name: str
    groups: tuple[Group, ...]


LINKEDIN = Group((Condition("linkedin_url", "linkedin_url", "linkedin"),))
NAME_COMPANY = Group((Condition("first_name", "first_name", "person_name"),
                      Condition("last_name", "last_name", "person_name"),
                      Condition("company_name", "company_name", "company_name")))
COMPANY_NAME = Group((Condition("name", "name", "company_name"),))


def custom_groups(groups: Iterable[Iterable[FieldCondition]]) -> tuple[Group, ...]:
    return tuple(Group(tuple(Condition(c.enginy, c.crm, resolve(c.normalize, c.enginy)) for c in group))
                 for group in groups)


def contact_rule(identifier: ContactIdentifier) -> Rule:
    if identifier.rule == "custom":
        return Rule("custom", custom_groups(identifier.custom or []))
    if identifier.rule == "name_company":
        return Rule("name_company", (NAME_COMPANY,))
    return Rule("linkedin_or_name_company", (LINKEDIN, NAME_COMPANY))


def company_rule(identifier: CompanyIdentifier) -> Rule:
    if identifier.rule == "custom":
        return Rule("custom", custom_groups(identifier.custom or []))
    kind = "domain_any_extension" if identifier.include_any_domain_extension else "domain"
    domain = Group((Condition("domain", "domain", kind),))
    name = "domain" + ("_any_extension" if identifier.include_any_domain_extension else "")
    if identifier.rule == "domain_or_name":
        return Rule(f"{name}_or_name", (domain, COMPANY_NAME))
    return Rule(name, (domain,))


class MatchRules(BaseModel):
    """The rules file of `crm-pipelines match`: the custom-mapping language of the integration
    config over any column names — ``enginy`` names a column of the left file, ``crm`` one of the
    right file (of the same file when deduplicating one)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    left_id: str | None = Field(None, description="column naming each row of the left file; default: row number")
    right_id: str | None = Field(None, description="column naming each row of the right file; default: row number")
    custom: list[list[FieldCondition]] = Field(description="OR of AND-groups")

    @model_validator(mode="after")
    def _groups_not_empty(self) -> "MatchRules":
        if not self.custom or any(not group for group in self.custom):
            raise PydanticCustomError("crm_config", "{message} — fix: {fix}", {
                "message": "custom needs at least one non-empty AND-group",
                "fix": "add e.g. custom: [[{enginy: email, crm: Email}]]"})
        return self

    def rule(self, one_file: bool = False) -> Rule:
        """The rule; for one file, each condition compares its ``enginy`` column with itself."""
        groups = [[c.model_copy(update={"crm": c.enginy}) for c in group] for group in self.custom] if one_file \
            else self.custom
        return Rule("custom", custom_groups(groups))
