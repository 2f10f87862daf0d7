"""IntegrationConfig: the four setup steps of a CRM integration as one validated model.

Step 1 (sync configuration: the active CRM, identifiers, association toggles), Step 2 (field
mapping per tab, with the four field types and a mapping option per field), Step 3 (campaign
mapping) and Step 4 (user mapping) — the same vocabulary the product documents use, loaded
from YAML. Every error names the file, the path inside it and the fix, because the person
reading it is editing that file.
"""

from __future__ import annotations

import codecs
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator

from crm_pipelines.crms import registry
from crm_pipelines.sync_rules import SyncCondition, config_problem

CONFIG_ENV_VAR = "CRM_PIPELINES_CONFIG"
DEFAULT_CONFIG = registry.example_config(registry.DEFAULT)


# Columns of the Enginy tables a mapping or identifier may name (crm_pipelines/enginy/schema.py).
ENGINY_CONTACT_FIELDS = ("id", "first_name", "last_name", "email", "phone", "job_title", "linkedin_url",
                         "company_id", "company_name", "owner_user_id", "created_at", "updated_at")
ENGINY_COMPANY_FIELDS = ("id", "name", "domain", "website", "linkedin_url", "industry", "employees",
                         "country", "owner_user_id", "created_at", "updated_at")
# Canonical CRM columns (DESIGN.md); any CRM field is also reachable as raw.<CRM field name>.
CRM_CONTACT_FIELDS = ("crm_id", "first_name", "last_name", "company_name", "email", "linkedin_url",
                      "phone", "job_title", "owner_id", "account_id")
CRM_COMPANY_FIELDS = ("crm_id", "name", "domain", "linkedin_url", "owner_id")

CAMPAIGN_PROPERTIES = (
    "campaign_sequence_details", "campaign_engagement_status", "sequence_status",
    "campaign_reply_analysis", "campaign_opens", "campaign_clicks", "campaign_open_analysis",
    "campaign_click_analysis", "campaigns", "senders", "activities", "conversation_tags",
    "conversation_tags_categories",
)

MappingOption = Literal["bidirectional", "crm_overwrites_enginy", "enginy_overwrites_crm",
                        "sync_if_empty", "deactivated"]
AssociationType = Literal["additional", "primary", "primary_remove_previous"]
Normalizer = Literal["auto", "exact", "text", "person_name", "company_name", "domain", "linkedin",
                     "email", "phone"]


class ConfigError(ValueError):
    """A configuration file that cannot be used, with every problem found in it."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = problems
        super().__init__("\n".join(f"{self.path}: {p}" for p in problems))


class StrictModel(BaseModel):
    """A config section: unknown keys are refused (a typo never passes silently), values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class InboundSyncRules(StrictModel):
    """Which CRM records enter the snapshot: per object, an OR of AND-groups on CRM fields."""

    contacts: list[list[SyncCondition]] | None = None
    leads: list[list[SyncCondition]] | None = None
    companies: list[list[SyncCondition]] | None = None


# --- Step 1: sync configuration -------------------------------------------------------------

class CrmSettings(StrictModel):
    enabled: bool = False
    environment: Literal["sandbox", "production"] = "production"
    integration_user: str | None = Field(None, description="email of the CRM's API integration user")
    neutralize_formulas: bool = Field(False, description=(
        "quote free-text values a spreadsheet would run as a formula (=…, @…, +cmd…) with a leading "
        "apostrophe, for CRMs whose users export records to sheets"))


class _CrmSelection(StrictModel):
    """crm: one key per registered CRM (crm_pipelines/crms/registry.py), exactly one enabled."""

    @model_validator(mode="after")
    def _exactly_one_enabled(self) -> "_CrmSelection":
        enabled = [name for name in registry.names() if (s := getattr(self, name)) is not None and s.enabled]
        if len(enabled) > 1:
            raise config_problem(f"{' and '.join(enabled)} are both enabled; only one CRM can be active at a time",
                                 f"set enabled: false on all but one of {', '.join(enabled)}")
        if not enabled:
            raise config_problem("no CRM is enabled", f"set enabled: true under one of {', '.join(registry.names())}")
        return self

    @property
    def active(self) -> str:
        return next(name for name in registry.names() if (s := getattr(self, name)) is not None and s.enabled)

    @property
    def settings(self) -> CrmSettings:
        return getattr(self, self.active)


CrmSelection = create_model(
    "CrmSelection", __base__=_CrmSelection,
    **{name: (CrmSettings | None, Field(None, description=registry.facts(name).description))
       for name in registry.names()})


class FieldCondition(StrictModel):
    """One equality in a custom identifier: an Enginy field equals a CRM field after normalising."""

    enginy: str
    crm: str
    normalize: Normalizer = "auto"


class _Identifier(StrictModel):
    custom: list[list[FieldCondition]] | None = Field(
        None, description="OR of AND-groups; used only with rule: custom")

    def _check_custom(self, enginy_fields: tuple[str, ...], crm_fields: tuple[str, ...]) -> None:
        rule = getattr(self, "rule")
        if rule == "custom":
            if not self.custom or any(not group for group in self.custom):
                raise config_problem("rule custom needs at least one non-empty AND-group under custom",
                                     "add e.g. custom: [[{enginy: email, crm: email}]]")
            for g, group in enumerate(self.custom):
                for c, cond in enumerate(group):
                    if cond.enginy not in enginy_fields:
                        raise config_problem(f"custom[{g}][{c}].enginy: unknown Enginy field {cond.enginy!r}",
                                             f"use one of {', '.join(enginy_fields)}")
                    if cond.crm not in crm_fields and not cond.crm.startswith("raw."):
                        raise config_problem(f"custom[{g}][{c}].crm: unknown CRM field {cond.crm!r}",
                                             f"use one of {', '.join(crm_fields)}, or raw.<CRM field name>")
        elif self.custom is not None:
            raise config_problem(f"custom conditions are given but rule is {rule!r}",
                                 "set rule: custom, or remove custom")


class ContactIdentifier(_Identifier):
    rule: Literal["name_company", "linkedin_or_name_company", "custom"] = "linkedin_or_name_company"

    @model_validator(mode="after")
    def _valid(self) -> "ContactIdentifier":
        self._check_custom(ENGINY_CONTACT_FIELDS, CRM_CONTACT_FIELDS)
        return self


class CompanyIdentifier(_Identifier):
    rule: Literal["domain", "domain_or_name", "custom"] = "domain"
    include_any_domain_extension: bool = False

    @model_validator(mode="after")
    def _valid(self) -> "CompanyIdentifier":
        self._check_custom(ENGINY_COMPANY_FIELDS, CRM_COMPANY_FIELDS)
        if self.include_any_domain_extension and self.rule == "custom":
            raise config_problem("include_any_domain_extension applies to the domain rules only",
                                 "use normalize: domain in a custom condition, or choose rule: domain")
        return self


class Associations(StrictModel):
    """The two 'General' toggles of Step 1."""

    contacts_to_companies: bool = True
    companies_to_contacts: bool = True


# --- Step 2: field mapping ------------------------------------------------------------------

class EnginyFieldMapping(StrictModel):
    type: Literal["enginy_field"]
    enginy_field: str
    crm_field: str
    option: MappingOption = "enginy_overwrites_crm"


class FixedValueMapping(StrictModel):
    type: Literal["fixed_value"]
    value: str | int | float | bool
    crm_field: str
    option: MappingOption = "enginy_overwrites_crm"


class ManualExportMapping(StrictModel):
    """A CRM field whose value the person launching the export types in (run config)."""

    type: Literal["manual_export"]
    crm_field: str
    option: MappingOption = "enginy_overwrites_crm"


class EngagementMapping(StrictModel):
    """Set on the record when an activity is logged in the CRM; at most one per tab."""

    type: Literal["engagement"]
    crm_field: str
    value: str | int | float | bool
    option: MappingOption = "enginy_overwrites_crm"


FieldMapping = Annotated[
    Union[EnginyFieldMapping, FixedValueMapping, ManualExportMapping, EngagementMapping],
    Field(discriminator="type"),
]


def _check_tab(tab: str, mappings: list[Any], enginy_fields: tuple[str, ...]) -> None:
    engagement = [m for m in mappings if m.type == "engagement"]
    if len(engagement) > 1:
        raise config_problem(f"field_mapping.{tab}: {len(engagement)} engagement fields, at most 1 allowed",
                             "keep one engagement field in this tab")
    seen: dict[str, int] = {}
    for i, m in enumerate(mappings):
        if m.crm_field in seen:
            raise config_problem(f"field_mapping.{tab}[{i}].crm_field: {m.crm_field!r} is mapped twice "
                                 f"(also at field_mapping.{tab}[{seen[m.crm_field]}])",
                                 "map each CRM field once per tab")
        seen[m.crm_field] = i
        if m.type == "enginy_field" and m.enginy_field not in enginy_fields:
            raise config_problem(f"field_mapping.{tab}[{i}].enginy_field: unknown Enginy field {m.enginy_field!r}",
                                 f"use one of {', '.join(enginy_fields)}")


class FieldMappingTabs(StrictModel):
    contacts: list[FieldMapping] = Field(default_factory=list)
    leads: list[FieldMapping] | None = Field(None, description="Salesforce and Pipedrive only")
    companies: list[FieldMapping] = Field(default_factory=list)

    @model_validator(mode="after")
    def _tabs_valid(self) -> "FieldMappingTabs":
        _check_tab("contacts", self.contacts, ENGINY_CONTACT_FIELDS)
        _check_tab("leads", self.leads or [], ENGINY_CONTACT_FIELDS)
        _check_tab("companies", self.companies, ENGINY_COMPANY_FIELDS)
        return self


# --- Step 3 and Step 4 ----------------------------------------------------------------------

class CampaignMapping(StrictModel):
    """Which campaign property goes to which CRM field, per object."""

    contacts: dict[str, str] = Field(default_factory=dict)
    leads: dict[str, str] | None = None

    @model_validator(mode="after")
    def _known_properties(self) -> "CampaignMapping":
        for tab in ("contacts", "leads"):
            for prop in (getattr(self, tab) or {}):
                if prop not in CAMPAIGN_PROPERTIES:
                    raise config_problem(f"campaign_mapping.{tab}.{prop}: unknown campaign property",
                                         f"use one of {', '.join(CAMPAIGN_PROPERTIES)}")
        return self


class UserMapping(StrictModel):
    identities: dict[str, str] = Field(default_factory=dict, description="Enginy identity id → CRM user id")
    users: dict[str, str] = Field(default_factory=dict, description="Enginy user id → CRM user id")
    default_owner: str | None = Field(None, description="CRM user id owning exports of unmapped users")


# --- Running unattended ----------------------------------------------------------------------

class Automation(StrictModel):
    """How the pipeline runs by itself: the sensors' interval, automatic export, the nightly run."""

    sync_interval_minutes: float = Field(5, gt=0, le=1440,
                                       description="how often the sensors ask the CRM and Enginy for changes")
    automatic_export: bool = Field(
        False, description="push the batches Enginy changes produce without a person launching export_push")
    nightly_reconciliation: str = Field("0 2 * * *", description="cron of the full reconciliation run")
    timezone: str = "UTC"
    stuck_run_minutes: float = Field(
        60, gt=0, description="a run in progress that has logged nothing for this long is alerted as stuck")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise config_problem(f"{value!r} is not a time zone",
                                 "use an IANA name such as UTC, Europe/Madrid or America/New_York") from None
        return value


class ActivitySync(StrictModel):
    """Campaign events logged in the CRM as completed activities (Step 4's identities mapping
    decides whom the CRM credits)."""

    enabled: bool = False
    include_message_body: bool = Field(False, description="add the message sent to the activity's description")
    since: date | None = Field(None, description=(
        "log only touchpoints from this day on (UTC), so turning the sync on does not push years of "
        "history at once; empty: every touchpoint"))


class IntegrationConfig(StrictModel):
    crm: CrmSelection
    contact_identifier: ContactIdentifier = Field(default_factory=ContactIdentifier)
    company_identifier: CompanyIdentifier = Field(default_factory=CompanyIdentifier)
    associations: Associations = Field(default_factory=Associations)
    inbound_sync_rules: InboundSyncRules = Field(default_factory=InboundSyncRules)
    create_on_duplicate_warning: bool = Field(
        False, description="Salesforce: save despite duplicate-rule warnings (not recommended)")
    field_mapping: FieldMappingTabs = Field(default_factory=FieldMappingTabs)
    default_association_type: AssociationType = "additional"
    campaign_mapping: CampaignMapping = Field(default_factory=CampaignMapping)
    user_mapping: UserMapping = Field(default_factory=UserMapping)
    automation: Automation = Field(default_factory=Automation)
    activity_sync: ActivitySync = Field(default_factory=ActivitySync)

    @model_validator(mode="after")
    def _options_the_active_crm_has(self) -> "IntegrationConfig":
        active = registry.facts(self.crm.active)
        if not active.has_leads:
            with_leads = [f for f in registry.FACTS.values() if f.has_leads]
            labels = ", ".join(f.label for f in with_leads[:-1]) + f" and {with_leads[-1].label}"
            names = ", ".join(f.name for f in with_leads[:-1]) + f" or {with_leads[-1].name}"
            if self.field_mapping.leads is not None:
                raise config_problem(f"field_mapping.leads: the Leads tab exists for {labels} only",
                                     f"remove field_mapping.leads, or enable {names}")
            if self.campaign_mapping.leads is not None:
                raise config_problem(f"campaign_mapping.leads: Leads exist for {labels} only",
                                     f"remove campaign_mapping.leads, or enable {names}")
        if not active.duplicate_rules and self.create_on_duplicate_warning:
            with_rules = [f for f in registry.FACTS.values() if f.duplicate_rules]
            labels, names = " and ".join(f.label for f in with_rules), " or ".join(f.name for f in with_rules)
            raise config_problem(f"create_on_duplicate_warning: duplicate-rule warnings are a {labels} feature",
                                 f"remove create_on_duplicate_warning, or enable {names}")
        return self

    @property
    def active_crm(self) -> str:
        return self.crm.active


# --- Loading ---------------------------------------------------------------------------------

def _location(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item in {"enginy_field", "fixed_value", "manual_export", "engagement"} and parts and parts[-1].startswith("["):
            continue  # the discriminator pydantic adds to a tagged union's path
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


def _describe(error: dict[str, Any]) -> str:
    where = _location(error["loc"])
    prefix = f"{where}: " if where else ""
    kind = error["type"]
    if kind == "crm_config":
        ctx = error.get("ctx", {})
        message, fix = ctx.get("message", error["msg"]), ctx.get("fix", "")
        # Model-level checks already name their own path inside the message.
        if where and message.startswith(("field_mapping.", "campaign_mapping.", "custom[")):
            if message.startswith("custom["):
                return f"{where}.{message} — fix: {fix}"
            return f"{message} — fix: {fix}"
        return f"{prefix}{message} — fix: {fix}"
    if kind == "missing":
        return f"{prefix}required but missing — fix: add {error['loc'][-1]}"
    if kind == "extra_forbidden":
        return f"{prefix}unknown key — fix: remove it or check its spelling"
    if kind in {"literal_error", "enum"}:
        expected = error.get("ctx", {}).get("expected", "")
        return f"{prefix}{error['input']!r} is not allowed — fix: use one of {expected}"
    if kind == "union_tag_invalid":
        expected = error.get("ctx", {}).get("expected_tags", "")
        return f"{prefix}type {error['input'].get('type')!r} is not a field type — fix: use one of {expected}" \
            if isinstance(error["input"], dict) else f"{prefix}{error['msg']}"
    if kind == "union_tag_not_found":
        return (f"{prefix}a field mapping without a type — fix: add type: enginy_field, fixed_value, "
                "manual_export or engagement")
    return f"{prefix}{error['msg']} — fix: give a value of the expected type"


def parse_config(data: Any, source: str | Path = "<config>", model: type[BaseModel] = IntegrationConfig) -> Any:
    """Validate ``data`` as ``model`` (the integration config, or another file in its language,
    such as the rules of `crm-pipelines match`), every error naming its path and fix."""
    if not isinstance(data, dict):
        raise ConfigError(source, ["the file must be a mapping of settings (crm:, contact_identifier:, …) — "
                                   "fix: start from one of the example configs"])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, [_describe(e) for e in exc.errors()]) from None


def read_yaml(path: Path) -> Any:
    """The YAML document in ``path``, read as UTF-8 (with or without a byte-order mark). Another
    encoding or a YAML mistake raises ConfigError naming the file, the place and the fix: editors
    on Windows save UTF-16 or Windows-1252, which would otherwise end in a bare UnicodeDecodeError."""
    raw = path.read_bytes()
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in raw:
        raise ConfigError(path, ["the file is saved as UTF-16 (or holds NUL bytes) — fix: save it as UTF-8"])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(path, [f"line {line}: byte {raw[exc.start]:#04x} is not UTF-8 (the file looks saved as "
                                 "Latin-1 or Windows-1252) — fix: save it as UTF-8"]) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(path, [f"{where}not valid YAML ({getattr(exc, 'problem', exc)}) — "
                                 "fix: correct the YAML syntax there"]) from None


def load_config(path: str | Path | None = None) -> IntegrationConfig:
    """Load and validate the integration config; ``None`` means the bundled example."""
    path = Path(path) if path else DEFAULT_CONFIG
    if not path.is_file():
        raise ConfigError(path, [f"no such file — fix: point {CONFIG_ENV_VAR} at an existing YAML file, "
                                 f"e.g. one of {', '.join(str(p) for p in registry.example_configs())}"])
    return parse_config(read_yaml(path), path)
