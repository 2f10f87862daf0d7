"""The emulated org's objects and fields: what describe answers and what writes are checked against.

Five standard objects (Contact, Lead, Account, User, Task) with the standard fields the
pipeline reads or writes, plus the custom fields an org set up for the Enginy integration has
(LinkedIn_Profile__c, LinkedIn_Company_Page__c, the external-id upsert key Enginy_Id__c and the
campaign-mapping fields of the example config). Tests add more custom fields at run time
(``add_custom_field``, or POST /_sandbox/salesforce/fields/{object}); they live in the CRM's
settings, so the per-test reset removes them.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

CRM = "salesforce"
API_VERSION = "59.0"
ORG_ID = "00D5g000004SbxAEAS"

KEY_PREFIXES = {"Contact": "003", "Lead": "00Q", "Account": "001", "User": "005", "Task": "00T"}
OBJECTS = tuple(KEY_PREFIXES)
OBJECT_BY_PREFIX = {v: k for k, v in KEY_PREFIXES.items()}

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
# Ids keep growing across processes, so records loaded from a saved sandbox state never meet a
# new record with the same id (nine base-62 digits hold a millisecond clock times a thousand).
_counter = itertools.count(int(time.time() * 1000) * 1000)
_counter_lock = threading.Lock()


def id_suffix(id15: str) -> str:
    """The 3-character case-safe suffix Salesforce appends to a 15-character id."""
    out = ""
    for chunk in range(3):
        bits = 0
        for i, ch in enumerate(id15[chunk * 5:chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        out += _SUFFIX[bits]
    return out


def make_id(obj: str, number: int | None = None) -> str:
    """A realistic 18-character id: key prefix, pod "5g", reserved "0", base-62 counter, suffix."""
    if number is None:
        with _counter_lock:
            number = next(_counter)
    digits = ""
    n = number
    for _ in range(9):
        n, r = divmod(n, 62)
        digits = _BASE62[r] + digits
    id15 = KEY_PREFIXES.get(obj, obj[:3]) + "5g0" + digits
    return id15 + id_suffix(id15)


def to_id18(value: str) -> str:
    """Accept a 15- or 18-character id and answer the 18-character form (other strings as-is)."""
    if len(value) == 15 and value.isalnum():
        return value + id_suffix(value)
    return value


# The integration user every write is attributed to, also the default OwnerId.
INTEGRATION_USER_ID = make_id("User", 1)


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    label: str = ""
    length: int = 0
    createable: bool = True
    updateable: bool = True
    nillable: bool = True
    external_id: bool = False
    unique: bool = False
    custom: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    default: Any = None
    name_field: bool = False

    @property
    def required(self) -> bool:
        """Required on create: not nillable, createable, and no default the org fills in."""
        return not self.nillable and self.createable and self.default is None and self.type != "boolean"

    def describe(self) -> dict[str, Any]:
        soap = {"id": "tns:ID", "reference": "tns:ID", "boolean": "xsd:boolean", "double": "xsd:double",
                "int": "xsd:int", "date": "xsd:date", "datetime": "xsd:dateTime"}.get(self.type, "xsd:string")
        label = self.label or _label(self.name)
        return {
            "aggregatable": self.type not in ("textarea",),
            "autoNumber": False,
            "byteLength": self.length * 3,
            "calculated": False,
            "caseSensitive": False,
            "createable": self.createable,
            "custom": self.custom,
            "defaultValue": self.default if self.type != "boolean" else bool(self.default),
            "defaultedOnCreate": self.default is not None or self.type == "boolean" or self.type == "id",
            "digits": 9 if self.type == "int" else 0,
            "externalId": self.external_id,
            "filterable": self.type != "textarea",
            "groupable": self.type not in ("textarea", "double", "datetime"),
            "idLookup": self.type == "id" or self.external_id or self.name in ("Email", "Username"),
            "label": label,
            "length": self.length,
            "name": self.name,
            "nameField": self.name_field,
            "nillable": self.nillable,
            "picklistValues": [
                {"active": True, "defaultValue": value == self.default, "label": value,
                 "validFor": None, "value": value}
                for value in self.picklist
            ],
            "precision": 18 if self.type == "double" else 0,
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship_name,
            "restrictedPicklist": self.restricted,
            "scale": 2 if self.type == "double" else 0,
            "soapType": soap,
            "sortable": self.type != "textarea",
            "type": self.type,
            "unique": self.unique,
            "updateable": self.updateable,
        }


def _label(name: str) -> str:
    base = name[:-3] if name.endswith("__c") else name
    if base.endswith("Id") and len(base) > 2:
        base = base[:-2] + " ID"
    out = ""
    for i, ch in enumerate(base.replace("_", " ")):
        if ch.isupper() and i and base[i - 1].islower():
            out += " "
        out += ch
    return out.strip()


def _ro(name: str, type_: str, **kw: Any) -> Field:
    return Field(name, type_, createable=False, updateable=False, **kw)


def _system_fields() -> list[Field]:
    return [
        _ro("CreatedDate", "datetime", nillable=False),
        _ro("CreatedById", "reference", nillable=False, reference_to=("User",), relationship_name="CreatedBy"),
        _ro("LastModifiedDate", "datetime", nillable=False),
        _ro("LastModifiedById", "reference", nillable=False, reference_to=("User",),
            relationship_name="LastModifiedBy"),
        _ro("SystemModstamp", "datetime", nillable=False),
    ]


def _id_and_deleted() -> list[Field]:
    return [_ro("Id", "id", length=18, nillable=False, label="Record ID"),
            _ro("IsDeleted", "boolean", nillable=False, label="Deleted")]


SALUTATIONS = ("Mr.", "Ms.", "Mrs.", "Dr.", "Prof.", "Mx.")
LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other", "Enginy")
INDUSTRIES = ("Agriculture", "Banking", "Consulting", "Education", "Energy", "Finance", "Healthcare",
              "Hospitality", "Logistics", "Manufacturing", "Media", "Real Estate", "Retail", "Software",
              "Technology", "Telecommunications", "Other")
LEAD_STATUSES = ("Open - Not Contacted", "Working - Contacted", "Qualified", "Closed - Converted",
                 "Closed - Not Converted")
# The campaign fields the integration adds: a restricted picklist where the values are a fixed set
# (the seeds' sequence statuses), text where they are composed ("Message Sent (2/3) - Email").
SEQUENCE_STATUSES = ("Not Started", "Ongoing", "Replied", "Finished")


def _owner() -> Field:
    return Field("OwnerId", "reference", length=18, nillable=False, default=INTEGRATION_USER_ID,
                 reference_to=("User",), relationship_name="Owner", label="Owner ID")


def _enginy_id() -> Field:
    return Field("Enginy_Id__c", "string", length=64, external_id=True, unique=True, custom=True,
                 label="Enginy ID")


def _person_fields() -> list[Field]:
    return [
        Field("LastName", "string", length=80, nillable=False),
        Field("FirstName", "string", length=40),
        Field("Salutation", "picklist", length=40, picklist=SALUTATIONS),
        _ro("Name", "string", length=121, nillable=False, label="Full Name", name_field=True),
        Field("Title", "string", length=128),
        Field("Email", "email", length=80),
        Field("Phone", "phone", length=40),
        Field("MobilePhone", "phone", length=40),
        Field("LeadSource", "picklist", length=255, picklist=LEAD_SOURCES, restricted=True),
        Field("Description", "textarea", length=32000),
        Field("HasOptedOutOfEmail", "boolean", nillable=False, default=False, label="Email Opt Out"),
        _owner(),
        Field("LinkedIn_Profile__c", "url", length=255, custom=True, label="LinkedIn Profile"),
        _enginy_id(),
        Field("Enginy_Sequence_Status__c", "picklist", length=255, custom=True, picklist=SEQUENCE_STATUSES,
              restricted=True),
    ]


def _standard_fields() -> dict[str, list[Field]]:
    contact = _id_and_deleted() + [
        Field("AccountId", "reference", length=18, reference_to=("Account",), relationship_name="Account"),
        *_person_fields(),
        Field("Department", "string", length=80),
        Field("Birthdate", "date"),
        Field("MailingCity", "string", length=40),
        Field("MailingCountry", "string", length=80),
        _ro("LastActivityDate", "date"),
        Field("Enginy_Engagement_Status__c", "string", length=255, custom=True),
        Field("Enginy_Reply_Analysis__c", "textarea", length=1000, custom=True),
        Field("Enginy_Opens__c", "double", custom=True),
        Field("Enginy_Campaigns__c", "textarea", length=32768, custom=True),
        Field("Enginy_Last_Engagement__c", "string", length=255, custom=True),
        *_system_fields(),
    ]
    lead = _id_and_deleted() + [
        *_person_fields(),
        Field("Company", "string", length=255, nillable=False),
        Field("Website", "url", length=255),
        Field("Status", "picklist", length=255, nillable=False, picklist=LEAD_STATUSES, restricted=True,
              default="Open - Not Contacted", label="Lead Status"),
        Field("Industry", "picklist", length=255, picklist=INDUSTRIES),
        Field("NumberOfEmployees", "int", label="Employees"),
        Field("City", "string", length=40),
        Field("Country", "string", length=80),
        _ro("IsConverted", "boolean", nillable=False, label="Converted"),
        _ro("ConvertedAccountId", "reference", length=18, reference_to=("Account",),
            relationship_name="ConvertedAccount"),
        _ro("ConvertedContactId", "reference", length=18, reference_to=("Contact",),
            relationship_name="ConvertedContact"),
        Field("LinkedIn_Company_Page__c", "url", length=255, custom=True, label="LinkedIn Company Page"),
        *_system_fields(),
    ]
    account = _id_and_deleted() + [
        Field("Name", "string", length=255, nillable=False, name_field=True, label="Account Name"),
        Field("Type", "picklist", length=255,
              picklist=("Prospect", "Customer - Direct", "Customer - Channel", "Partner", "Other")),
        Field("ParentId", "reference", length=18, reference_to=("Account",), relationship_name="Parent"),
        Field("Phone", "phone", length=40),
        Field("Website", "url", length=255),
        Field("Industry", "picklist", length=255, picklist=INDUSTRIES),
        Field("NumberOfEmployees", "int", label="Employees"),
        Field("AnnualRevenue", "double"),
        Field("BillingCity", "string", length=40),
        Field("BillingCountry", "string", length=80),
        Field("Description", "textarea", length=32000),
        _owner(),
        Field("LinkedIn_Company_Page__c", "url", length=255, custom=True, label="LinkedIn Company Page"),
        _enginy_id(),
        *_system_fields(),
    ]
    user = [
        _ro("Id", "id", length=18, nillable=False, label="User ID"),
        Field("Username", "string", length=80, nillable=False, unique=True),
        Field("LastName", "string", length=80, nillable=False),
        Field("FirstName", "string", length=40),
        _ro("Name", "string", length=121, nillable=False, label="Full Name", name_field=True),
        Field("Email", "email", length=128, nillable=False),
        Field("Alias", "string", length=8, nillable=False),
        Field("Title", "string", length=80),
        Field("CompanyName", "string", length=80),
        Field("IsActive", "boolean", nillable=False, default=True, label="Active"),
        *_system_fields(),
    ]
    task = _id_and_deleted() + [
        Field("WhoId", "reference", length=18, reference_to=("Contact", "Lead"), relationship_name="Who",
              label="Name ID"),
        Field("WhatId", "reference", length=18, reference_to=("Account",), relationship_name="What",
              label="Related To ID"),
        Field("Subject", "string", length=255),
        Field("ActivityDate", "date", label="Due Date Only"),
        Field("Status", "picklist", length=255, nillable=False, default="Not Started", restricted=True,
              picklist=("Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred")),
        Field("Priority", "picklist", length=40, nillable=False, default="Normal", restricted=True,
              picklist=("High", "Normal", "Low")),
        _owner(),
        Field("Description", "textarea", length=32000, label="Comments"),
        Field("Type", "picklist", length=255, picklist=("Call", "Email", "Meeting", "LinkedIn", "Other")),
        Field("TaskSubtype", "picklist", length=255, updateable=False, restricted=True,
              picklist=("Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn")),
        _ro("IsClosed", "boolean", nillable=False, label="Closed"),
        # An activity custom field (no external id: activities have no upsert); the integration
        # finds the Tasks it logged by it.
        Field("Enginy_Activity_Id__c", "string", length=64, custom=True, label="Enginy Activity ID"),
        *_system_fields(),
    ]
    return {"Contact": contact, "Lead": lead, "Account": account, "User": user, "Task": task}


_STANDARD = _standard_fields()
LABELS = {"Contact": ("Contact", "Contacts"), "Lead": ("Lead", "Leads"), "Account": ("Account", "Accounts"),
          "User": ("User", "Users"), "Task": ("Task", "Tasks")}
CUSTOM_FIELD_TYPES = ("string", "email", "phone", "url", "picklist", "reference", "datetime", "date",
                      "boolean", "double", "int", "textarea")


@dataclass
class ObjectSchema:
    name: str
    fields: dict[str, Field]
    by_lower: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_lower = {name.lower(): name for name in self.fields}

    def lookup(self, name: str) -> Field | None:
        canonical = self.by_lower.get(name.lower())
        return self.fields[canonical] if canonical else None

    def relationship(self, name: str) -> Field | None:
        for f in self.fields.values():
            if f.relationship_name and f.relationship_name.lower() == name.lower():
                return f
        return None

    @property
    def has_is_deleted(self) -> bool:
        return "IsDeleted" in self.fields


def custom_field_specs(settings: dict[str, Any], obj: str) -> list[dict[str, Any]]:
    return settings.get("custom_fields", {}).get(obj, [])


def schema_for(settings: dict[str, Any], obj: str) -> ObjectSchema:
    fields = {f.name: f for f in _STANDARD[obj]}
    for spec in custom_field_specs(settings, obj):
        f = field_from_spec(spec)
        fields[f.name] = f
    return ObjectSchema(obj, fields)


def canonical_object(name: str) -> str | None:
    for obj in OBJECTS:
        if obj.lower() == name.lower():
            return obj
    return None


def field_from_spec(spec: dict[str, Any]) -> Field:
    """A custom field from its JSON spec: name (ending __c), type, and optional label, length,
    picklistValues (list of strings), restricted, externalId, unique, nillable, referenceTo."""
    name = spec["name"]
    if not name.endswith("__c"):
        raise ValueError(f"custom field names end with __c: {name!r}")
    type_ = spec.get("type", "string")
    if type_ not in CUSTOM_FIELD_TYPES:
        raise ValueError(f"unsupported field type {type_!r}; one of {', '.join(CUSTOM_FIELD_TYPES)}")
    default_length = {"string": 255, "email": 80, "phone": 40, "url": 255, "picklist": 255,
                      "textarea": 32768, "reference": 18}.get(type_, 0)
    reference_to = tuple(spec.get("referenceTo", ()))
    return Field(
        name, type_, label=spec.get("label", ""), length=int(spec.get("length", default_length)),
        nillable=bool(spec.get("nillable", True)), external_id=bool(spec.get("externalId", False)),
        unique=bool(spec.get("unique", False)), custom=True, reference_to=reference_to,
        relationship_name=name[:-3] + "__r" if reference_to else None,
        picklist=tuple(spec.get("picklistValues", ())), restricted=bool(spec.get("restricted", False)),
        createable=bool(spec.get("createable", True)), updateable=bool(spec.get("updateable", True)),
    )


def add_custom_field(settings: dict[str, Any], obj: str, spec: dict[str, Any]) -> Field:
    """Add (or replace) a custom field on an object of the org; ``settings`` is the CRM's."""
    canonical = canonical_object(obj)
    if canonical is None:
        raise ValueError(f"unknown object {obj!r}; one of {', '.join(OBJECTS)}")
    f = field_from_spec(spec)
    specs = settings.setdefault("custom_fields", {}).setdefault(canonical, [])
    specs[:] = [s for s in specs if s["name"] != f.name] + [dict(spec)]
    return f


def describe_object(settings: dict[str, Any], obj: str, base: str) -> dict[str, Any]:
    schema = schema_for(settings, obj)
    label, plural = LABELS[obj]
    return {
        **global_entry(obj, base),
        "fields": [f.describe() for f in schema.fields.values()],
        "childRelationships": [],
        "recordTypeInfos": [],
        "supportedScopes": [{"label": "All " + plural.lower(), "name": "everything"}],
    }


def global_entry(obj: str, base: str) -> dict[str, Any]:
    label, plural = LABELS[obj]
    url = f"{base}/sobjects/{obj}"
    return {
        "activateable": False, "createable": True, "custom": False, "customSetting": False,
        "deletable": obj != "User", "deprecatedAndHidden": False, "feedEnabled": obj != "Task",
        "keyPrefix": KEY_PREFIXES[obj], "label": label, "labelPlural": plural, "layoutable": True,
        "mergeable": obj in ("Contact", "Lead", "Account"), "name": obj, "queryable": True,
        "replicateable": True, "retrieveable": True, "searchable": True, "triggerable": True,
        "undeletable": obj != "User", "updateable": True,
        "urls": {"sobject": url, "describe": f"{url}/describe", "rowTemplate": f"{url}/{{ID}}"},
    }
