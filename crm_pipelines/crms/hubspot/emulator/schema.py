"""HubSpot's object types and properties, as the properties API describes them.

Every property value travels as a string on HubSpot's wire; the type decides what a string
may hold (an enumeration option, a number, a millisecond timestamp or ISO date, true/false).
Custom properties are added per sandbox run and live in the CRM's settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import tldextract

CRM = "hubspot"

# objectType names and the ids HubSpot answers with (fromObjectTypeId, …); the singular forms
# are accepted wherever HubSpot accepts them.
OBJECT_TYPE_IDS = {"contacts": "0-1", "companies": "0-2", "emails": "0-49", "notes": "0-46", "tasks": "0-27"}
ALIASES = {**{name: name for name in OBJECT_TYPE_IDS}, **{v: k for k, v in OBJECT_TYPE_IDS.items()},
           "contact": "contacts", "company": "companies", "email": "emails", "note": "notes", "task": "tasks"}
ENGAGEMENTS = ("emails", "notes", "tasks")

# The last-modified property per object: contacts keep the legacy name next to the hs_ one.
MODIFIED = {"contacts": ("lastmodifieddate", "hs_lastmodifieddate")}
DEFAULT_MODIFIED = ("hs_lastmodifieddate",)
# What a list or read answers when no properties are asked for.
DEFAULT_PROPERTIES = {
    "contacts": ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
    "companies": ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
}
ENGAGEMENT_DEFAULTS = ("hs_createdate", "hs_lastmodifieddate", "hs_object_id")


def object_type(name: str) -> str | None:
    return ALIASES.get(name.lower())


@dataclass(frozen=True)
class Property:
    name: str
    label: str
    type: str  # string | number | date | datetime | enumeration | bool | phone_number
    field_type: str  # text | textarea | number | date | select | radio | checkbox | booleancheckbox | phonenumber
    group: str = "contactinformation"
    options: tuple[tuple[str, str], ...] = ()  # (value, label)
    read_only: bool = False
    unique: bool = False
    hubspot_defined: bool = True
    calculated: bool = False

    def describe(self) -> dict[str, Any]:
        stamp = "2019-08-06T02:41:52.000Z"
        return {
            "name": self.name, "label": self.label, "type": self.type, "fieldType": self.field_type,
            "description": "", "groupName": self.group,
            "options": [{"label": label, "value": value, "displayOrder": i, "hidden": False}
                        for i, (value, label) in enumerate(self.options)],
            "displayOrder": -1, "calculated": self.calculated, "externalOptions": False,
            "hasUniqueValue": self.unique, "hidden": False, "hubspotDefined": self.hubspot_defined,
            "modificationMetadata": {"archivable": not self.hubspot_defined, "readOnlyDefinition": self.hubspot_defined,
                                     "readOnlyValue": self.read_only},
            "formField": not self.read_only, "createdAt": stamp, "updatedAt": stamp, "archived": False,
        }


def _p(name: str, label: str, type: str = "string", field_type: str | None = None, **kw: Any) -> Property:
    default_field = {"string": "text", "number": "number", "date": "date", "datetime": "date",
                     "enumeration": "select", "bool": "booleancheckbox", "phone_number": "phonenumber"}[type]
    return Property(name, label, type, field_type or default_field, **kw)


def _options(*values: str) -> tuple[tuple[str, str], ...]:
    return tuple((v, v.replace("_", " ").title()) for v in values)


LIFECYCLE = (("subscriber", "Subscriber"), ("lead", "Lead"), ("marketingqualifiedlead", "Marketing Qualified Lead"),
             ("salesqualifiedlead", "Sales Qualified Lead"), ("opportunity", "Opportunity"),
             ("customer", "Customer"), ("evangelist", "Evangelist"), ("other", "Other"))
LEAD_STATUS = _options("NEW", "OPEN", "IN_PROGRESS", "OPEN_DEAL", "UNQUALIFIED", "ATTEMPTED_TO_CONTACT",
                       "CONNECTED", "BAD_TIMING")
INDUSTRY = _options("ACCOUNTING", "COMPUTER_SOFTWARE", "FINANCIAL_SERVICES", "HOSPITAL_HEALTH_CARE",
                    "INFORMATION_TECHNOLOGY_AND_SERVICES", "MARKETING_AND_ADVERTISING", "RETAIL",
                    "TELECOMMUNICATIONS", "MANAGEMENT_CONSULTING", "EDUCATION_MANAGEMENT")


def _system(group: str) -> list[Property]:
    return [
        _p("hs_object_id", "Record ID", "number", read_only=True, group=group, unique=True),
        _p("createdate", "Create Date", "datetime", read_only=True, group=group),
        _p("hs_createdate", "Object create date/time", "datetime", read_only=True, group=group),
        _p("hs_lastmodifieddate", "Object last modified date/time", "datetime", read_only=True, group=group),
        _p("hubspot_owner_id", "Owner", "enumeration", group=group),
    ]


BUILT_IN: dict[str, list[Property]] = {
    "contacts": [
        *_system("contactinformation"),
        _p("lastmodifieddate", "Last Modified Date", "datetime", read_only=True),
        _p("firstname", "First Name"), _p("lastname", "Last Name"),
        _p("email", "Email", unique=True), _p("phone", "Phone Number", "phone_number"),
        _p("mobilephone", "Mobile Phone Number", "phone_number"),
        _p("jobtitle", "Job Title"), _p("company", "Company Name"), _p("website", "Website URL"),
        _p("city", "City"), _p("country", "Country/Region"),
        _p("hs_linkedin_url", "LinkedIn URL"),
        _p("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", options=LIFECYCLE),
        _p("hs_lead_status", "Lead Status", "enumeration", "radio", options=LEAD_STATUS),
        _p("associatedcompanyid", "Primary Associated Company ID", "number"),
        _p("num_associated_deals", "Number of Associated Deals", "number", read_only=True, calculated=True),
        _p("hs_email_optout", "Unsubscribed from all email", "bool", read_only=True),
    ],
    "companies": [
        *_system("companyinformation"),
        _p("name", "Company name", group="companyinformation"),
        _p("domain", "Company Domain Name", group="companyinformation"),
        _p("website", "Website URL", group="companyinformation"),
        _p("phone", "Phone Number", "phone_number", group="companyinformation"),
        _p("industry", "Industry", "enumeration", options=INDUSTRY, group="companyinformation"),
        _p("numberofemployees", "Number of Employees", "number", group="companyinformation"),
        _p("annualrevenue", "Annual Revenue", "number", group="companyinformation"),
        _p("city", "City", group="companyinformation"), _p("country", "Country/Region", group="companyinformation"),
        _p("linkedin_company_page", "LinkedIn Company Page", group="socialmediainformation"),
        _p("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", options=LIFECYCLE,
           group="companyinformation"),
        _p("num_associated_contacts", "Number of Associated Contacts", "number", read_only=True, calculated=True,
           group="companyinformation"),
    ],
    "tasks": [
        *_system("task"), _p("hs_timestamp", "Due date", "datetime", group="task"),
        _p("hs_task_subject", "Task Title", group="task"), _p("hs_task_body", "Notes", group="task"),
        _p("hs_task_status", "Task Status", "enumeration", options=_options("NOT_STARTED", "IN_PROGRESS", "WAITING",
                                                                           "COMPLETED", "DEFERRED"), group="task"),
        _p("hs_task_type", "Task Type", "enumeration", options=_options("CALL", "EMAIL", "TODO", "LINKED_IN",
                                                                       "LINKED_IN_CONNECT", "LINKED_IN_MESSAGE"),
           group="task"),
        _p("hs_task_priority", "Priority", "enumeration", options=_options("NONE", "LOW", "MEDIUM", "HIGH"),
           group="task"),
    ],
    "emails": [
        *_system("email"), _p("hs_timestamp", "Activity date", "datetime", group="email"),
        _p("hs_email_subject", "Subject", group="email"), _p("hs_email_text", "Body", group="email"),
        _p("hs_email_html", "Body (HTML)", group="email"),
        _p("hs_email_direction", "Email direction", "enumeration",
           options=_options("EMAIL", "INCOMING_EMAIL", "FORWARDED_EMAIL"), group="email"),
        _p("hs_email_status", "Email send status", "enumeration",
           options=_options("BOUNCED", "FAILED", "SCHEDULED", "SENDING", "SENT"), group="email"),
    ],
    "notes": [
        *_system("note"), _p("hs_timestamp", "Activity date", "datetime", group="note"),
        _p("hs_note_body", "Note body", group="note"),
    ],
}
# What the Enginy integration creates in a portal when it is connected (the properties API
# makes them "custom", not HubSpot-defined): its own id, unique, to upsert by, and the
# campaign properties of the example config.
def _integration(group: str) -> list[Property]:
    return [_p("enginy_id", "Enginy ID", group=group, unique=True, hubspot_defined=False)]


CAMPAIGN_PROPERTIES = [
    _p(name, label, type, group="enginy", hubspot_defined=False) for name, label, type in (
        ("enginy_campaign_sequence_details", "Campaign sequence details", "string"),
        ("enginy_campaign_engagement_status", "Campaign engagement status", "string"),
        ("enginy_campaign_reply_analysis", "Campaign reply analysis", "string"),
        ("enginy_campaign_opens", "Campaign opens", "number"),
        ("enginy_campaign_clicks", "Campaign clicks", "number"),
        ("enginy_campaign_open_analysis", "Campaign open analysis", "string"),
        ("enginy_campaign_click_analysis", "Campaign click analysis", "string"),
        ("enginy_campaigns", "Campaigns", "string"),
        ("enginy_senders", "Senders", "string"),
        ("enginy_activities", "Activities", "string"),
        ("enginy_conversation_tags", "Conversation tags", "string"),
        ("enginy_conversation_tags_categories", "Conversation tag categories", "string"),
        ("enginy_last_engagement", "Last Enginy engagement", "string"),
    )] + [_p("enginy_sequence_status", "Sequence status", "enumeration", group="enginy", hubspot_defined=False,
             options=(("Not Started", "Not Started"), ("Ongoing", "Ongoing"), ("Replied", "Replied"),
                      ("Finished", "Finished")))]
BUILT_IN["contacts"] += _integration("contactinformation") + CAMPAIGN_PROPERTIES
BUILT_IN["companies"] += _integration("companyinformation") + [
    _p("enginy_last_engagement", "Last Enginy engagement", group="enginy", hubspot_defined=False)]
# Activities the integration logs carry the Enginy event they came from, to be found again.
for _engagement in ENGAGEMENTS:
    BUILT_IN[_engagement].append(_p("enginy_activity_id", "Enginy activity ID", group="enginy",
                                    hubspot_defined=False))

# Engagements cannot exist without a time; HubSpot refuses them without hs_timestamp.
REQUIRED = {name: ("hs_timestamp",) for name in ENGAGEMENTS}


@dataclass
class Schema:
    """The properties of one object type in this sandbox: built-in plus custom ones."""

    object_type: str
    properties: dict[str, Property] = field(default_factory=dict)

    def get(self, name: str) -> Property | None:
        return self.properties.get(name)

    def unique(self) -> list[str]:
        return [p.name for p in self.properties.values() if p.unique and p.name != "hs_object_id"]


# Object type → the custom property specs its schema was built from (the settings' own list, which
# only ever grows: add_custom_property), how many there were, and the schema. A batch upsert asked
# for the schema several times per input, and built it anew each time: 6% of the sandbox's
# time at a million contacts.
_SCHEMAS: dict[str, tuple[list[dict[str, Any]] | None, int, Schema]] = {}


def schema_for(settings: dict[str, Any], obj: str) -> Schema:
    """The object type's properties; callers read it, never change it (it is shared)."""
    specs = settings.get("custom_properties", {}).get(obj)
    held = _SCHEMAS.get(obj)
    if held is not None and held[0] is specs and held[1] == len(specs or ()):
        return held[2]
    schema = Schema(obj, {p.name: p for p in BUILT_IN[obj]})
    for spec in specs or ():
        prop = custom_property(spec)
        schema.properties[prop.name] = prop
    _SCHEMAS[obj] = (specs, len(specs or ()), schema)
    return schema


def custom_property(spec: dict[str, Any]) -> Property:
    """A property from a properties-API create body (name, label, type, fieldType, options, …)."""
    name, type = spec.get("name"), spec.get("type", "string")
    if not name or not str(name).replace("_", "").isalnum() or str(name).lower() != name:
        raise ValueError(f"Property name {name!r} must be lowercase letters, digits and underscores")
    if type not in ("string", "number", "date", "datetime", "enumeration", "bool", "phone_number"):
        raise ValueError(f"Unknown property type {type!r}")
    options = tuple((o["value"], o.get("label", o["value"])) if isinstance(o, dict) else (o, o)
                    for o in spec.get("options", []))
    return _p(name, spec.get("label") or name, type, spec.get("fieldType"), group=spec.get("groupName", "custom"),
              options=options, unique=bool(spec.get("hasUniqueValue")), hubspot_defined=False)


def add_custom_property(settings: dict[str, Any], obj: str, spec: dict[str, Any]) -> Property:
    prop = custom_property(spec)
    if prop.name in {p.name for p in BUILT_IN[obj]}:
        raise ValueError(f"A property named '{prop.name}' already exists on {obj}")
    custom = settings.setdefault("custom_properties", {}).setdefault(obj, [])
    if any(s["name"] == prop.name for s in custom):
        raise ValueError(f"A property named '{prop.name}' already exists on {obj}")
    custom.append(dict(spec))
    return prop


class InvalidValue(ValueError):
    """One property value HubSpot would refuse; ``error`` is HubSpot's code for it."""

    def __init__(self, name: str, error: str, message: str) -> None:
        super().__init__(message)
        self.name, self.error = name, error

    def detail(self) -> dict[str, Any]:
        return {"isValid": False, "message": str(self), "error": self.error, "name": self.name}


def to_wire(value: Any) -> str | None:
    """A stored value as HubSpot returns it: always a string (or null)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def iso(when: datetime) -> str:
    # isoformat, not strftime: the sandbox writes two of these per record it answers with.
    return when.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: Any) -> datetime | None:
    """HubSpot takes times as epoch milliseconds or ISO 8601 strings."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=timezone.utc)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def coerce(prop: Property, value: Any) -> str | None:
    """Validate one incoming value and return it as HubSpot stores it ("" clears a property)."""
    if value is None or value == "":
        return None
    text = to_wire(value)
    assert text is not None
    if prop.type == "enumeration":
        allowed = [v for v, _ in prop.options]
        chosen = text.split(";") if prop.field_type == "checkbox" else [text]
        # An owner property takes any owner id; the owners API is the list of options.
        if prop.name != "hubspot_owner_id" and any(c not in allowed for c in chosen):
            raise InvalidValue(prop.name, "INVALID_OPTION",
                               f"{text} was not one of the allowed options: {', '.join(allowed)}")
        return text
    if prop.type == "number":
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise InvalidValue(prop.name, "INVALID_DECIMAL", f"{text} is not a valid decimal") from None
        return format(number.normalize(), "f") if number == number.to_integral() else text
    if prop.type == "bool":
        if text.lower() not in ("true", "false"):
            raise InvalidValue(prop.name, "INVALID_BOOLEAN", f"{text} is not a valid boolean")
        return text.lower()
    if prop.type in ("datetime", "date"):
        try:
            when = parse_time(text)
        except ValueError:
            raise InvalidValue(prop.name, "INVALID_DATE", f"{text} is not a valid date or millisecond "
                                                           "timestamp") from None
        assert when is not None
        if prop.type == "date":
            if (when.hour, when.minute, when.second, when.microsecond) != (0, 0, 0, 0):
                raise InvalidValue(prop.name, "INVALID_DATE",
                                   f"{text} is at {when.time()} UTC; a date property needs midnight UTC")
            return date(when.year, when.month, when.day).isoformat()
        return iso(when)
    if prop.name == "email":
        # HubSpot lower-cases a contact's email and refuses one without a real top-level domain
        # (user@localhost), so a value sent in mixed case comes back different from what was sent.
        email = text.strip().lower()
        local, _, domain = email.partition("@")
        if not local or " " in email or not domain or not _email_domains()(domain).suffix:
            raise InvalidValue(prop.name, "INVALID_EMAIL", f"Email address {text} is invalid")
        return email
    return text


@lru_cache(maxsize=1)
def _email_domains() -> tldextract.TLDExtract:
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)  # the bundled public-suffix list
