"""The Dataverse tables the sandbox serves, and their attribute metadata.

A table's attributes drive everything else: which names $select/$filter accept, which payload
properties a write accepts (and how they are validated), what a read returns, and what
``EntityDefinitions(LogicalName='…')/Attributes`` describes for the pipeline's mapping checks.

Custom attributes can be added at run time through the ``custom_attributes`` setting
(``{"contact": [{"LogicalName": "crm_score", "AttributeType": "Integer"}, …]}``), so a test can
build a table with hundreds of columns without touching this module.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

CRM = "dynamics"
LANGUAGE = 1033
# The alternate key the pipeline upserts by: Enginy's own id for the record.
ENGINY_KEY = "crm_enginyid"

_NS = uuid.UUID("6f1c44d2-0c0e-4b8e-9a55-2f1f61b6c0de")


def metadata_id(*names: str) -> str:
    """Stable MetadataIds, so two calls describe the same attribute with the same id."""
    return str(uuid.uuid5(_NS, "/".join(names)))


def label(text: str) -> dict[str, Any]:
    localized = {"Label": text, "LanguageCode": LANGUAGE}
    return {"LocalizedLabels": [localized], "UserLocalizedLabel": localized}


@dataclass(frozen=True)
class Attribute:
    name: str
    type: str  # AttributeType: String, Memo, Integer, Picklist, Lookup, Customer, Owner, …
    create: bool = True
    update: bool = True
    required: str = "None"  # RequiredLevel: None | Recommended | ApplicationRequired | SystemRequired
    max_length: int | None = None
    options: tuple[tuple[int, str], ...] = ()
    # Lookups: target table → the single-valued navigation property used with @odata.bind.
    targets: tuple[tuple[str, str], ...] = ()
    display: str = ""
    custom: bool = False
    format: str = "Text"  # a String column's FormatName: Text, Email, Url, Phone, …

    @property
    def is_lookup(self) -> bool:
        return self.type in ("Lookup", "Customer", "Owner")

    @property
    def wire_name(self) -> str:
        """How the Web API names the value: ``_parentcustomerid_value`` for lookups."""
        return f"_{self.name}_value" if self.is_lookup else self.name

    def metadata(self, table: str) -> dict[str, Any]:
        kind = {"Customer": "Lookup", "Owner": "Lookup",
                "Uniqueidentifier": "UniqueIdentifier"}.get(self.type, self.type)
        doc: dict[str, Any] = {
            "@odata.type": f"#Microsoft.Dynamics.CRM.{kind}AttributeMetadata",
            "MetadataId": metadata_id(table, self.name),
            "LogicalName": self.name,
            "SchemaName": self.name,
            "EntityLogicalName": table,
            "AttributeType": self.type,
            "AttributeTypeName": {"Value": f"{self.type}Type"},
            "IsValidForCreate": self.create,
            "IsValidForUpdate": self.update,
            "IsValidForRead": True,
            "IsCustomAttribute": self.custom,
            "IsPrimaryId": False,
            "RequiredLevel": {"Value": self.required, "CanBeChanged": True,
                              "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings"},
            "DisplayName": label(self.display or self.name),
        }
        if self.max_length is not None:
            doc["MaxLength"] = self.max_length
        if self.type == "String":
            doc["FormatName"] = {"Value": self.format}
        if self.targets:
            doc["Targets"] = [t for t, _ in self.targets]
        return doc

    def option_set(self, table: str) -> dict[str, Any]:
        return {
            "MetadataId": metadata_id(table, self.name, "optionset"),
            "Name": f"{table}_{self.name}",
            "IsGlobal": False,
            "OptionSetType": "Picklist" if self.type == "Picklist" else self.type,
            "Options": [{"Value": v, "Label": label(t)} for v, t in self.options],
        }


@dataclass
class Table:
    logical_name: str
    entity_set: str
    primary_id: str
    primary_name: str
    object_type_code: int
    attributes: list[Attribute] = field(default_factory=list)
    alternate_keys: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.by_name = {a.name: a for a in self.attributes}
        self.by_wire = {a.wire_name: a for a in self.attributes}
        self.navigation = {nav: (a, target) for a in self.attributes for target, nav in a.targets}

    def with_custom(self, extra: list[dict[str, Any]]) -> "Table":
        if not extra:
            return self
        added = [custom_attribute(doc) for doc in extra]
        return Table(self.logical_name, self.entity_set, self.primary_id, self.primary_name,
                     self.object_type_code, self.attributes + added, self.alternate_keys)

    def metadata(self) -> dict[str, Any]:
        return {
            "MetadataId": metadata_id(self.logical_name),
            "LogicalName": self.logical_name,
            "SchemaName": self.logical_name.capitalize(),
            "EntitySetName": self.entity_set,
            "PrimaryIdAttribute": self.primary_id,
            "PrimaryNameAttribute": self.primary_name,
            "ObjectTypeCode": self.object_type_code,
            "ChangeTrackingEnabled": True,
            "IsCustomEntity": False,
            "DisplayName": label(self.logical_name.capitalize()),
        }

    def attribute_metadata(self) -> list[dict[str, Any]]:
        docs = []
        for a in self.attributes:
            doc = a.metadata(self.logical_name)
            doc["IsPrimaryId"] = a.name == self.primary_id
            docs.append(doc)
        return docs

    def keys_metadata(self) -> list[dict[str, Any]]:
        return [{"MetadataId": metadata_id(self.logical_name, "key", k),
                 "LogicalName": f"{k}_key", "SchemaName": f"{k}_key", "KeyAttributes": [k],
                 "EntityKeyIndexStatus": "Active", "EntityLogicalName": self.logical_name}
                for k in self.alternate_keys]


def custom_attribute(doc: dict[str, Any]) -> Attribute:
    """An Attribute from the metadata-like dict the ``custom_attributes`` setting holds."""
    kind = doc.get("AttributeType", "String")
    max_length = doc.get("MaxLength", 100 if kind == "String" else 2000 if kind == "Memo" else None)
    options = tuple((int(o["Value"]), str(o["Label"])) for o in doc.get("Options", ()))
    return Attribute(doc["LogicalName"], kind, create=doc.get("IsValidForCreate", True),
                     update=doc.get("IsValidForUpdate", True),
                     required=doc.get("RequiredLevel", "None"), max_length=max_length,
                     options=options, display=doc.get("DisplayName", doc["LogicalName"]),
                     custom=True)


def _string(name: str, length: int, display: str = "", **kw: Any) -> Attribute:
    return Attribute(name, "String", max_length=length, display=display, **kw)


def _readonly(name: str, kind: str, **kw: Any) -> Attribute:
    return Attribute(name, kind, create=False, update=False, **kw)


STATE = ((0, "Active"), (1, "Inactive"))
STATUS = ((1, "Active"), (2, "Inactive"))
LEAD_STATE = ((0, "Open"), (1, "Qualified"), (2, "Disqualified"))
LEAD_STATUS = ((1, "New"), (2, "Contacted"), (3, "Qualified"), (4, "Lost"), (5, "Cannot Contact"),
               (6, "No Longer Interested"), (7, "Canceled"))
TASK_STATE = ((0, "Open"), (1, "Completed"), (2, "Canceled"))
TASK_STATUS = ((2, "Not Started"), (3, "In Progress"), (5, "Completed"), (6, "Canceled"))
CONTACT_METHOD = ((1, "Any"), (2, "Email"), (3, "Phone"), (4, "Fax"), (5, "Mail"))
# The standard industry option set, plus the custom options (values from 100000000, as a
# publisher prefix gives them) this sandbox organisation added for industries it sells to.
INDUSTRY = (
    (1, "Accounting"), (2, "Agriculture and Non-petrol Natural Resource Extraction"),
    (3, "Broadcasting Printing and Publishing"), (4, "Brokers"), (5, "Building Supply Retail"),
    (6, "Business Services"), (7, "Consulting"), (8, "Consumer Services"),
    (9, "Design, Direction and Creative Management"), (10, "Distributors, Dispatchers and Processors"),
    (11, "Doctor's Offices and Clinics"), (12, "Durable Manufacturing"),
    (13, "Eating and Drinking Places"), (14, "Entertainment Retail"),
    (15, "Equipment Rental and Leasing"), (16, "Financial"), (17, "Food and Tobacco Processing"),
    (18, "Inbound Capital Intensive Processing"), (19, "Inbound Repair and Services"),
    (20, "Insurance"), (21, "Legal Services"), (22, "Non-Durable Merchandise Retail"),
    (23, "Outbound Consumer Service"), (24, "Petrochemical Extraction and Distribution"),
    (25, "Service Retail"), (26, "SIG Affiliations"), (27, "Social Services"),
    (28, "Special Outbound Trade Contractors"), (29, "Specialty Realty"), (30, "Transportation"),
    (31, "Utility Creation and Distribution"), (32, "Vehicle Retail"), (33, "Wholesale"),
    (100000000, "Software"), (100000001, "Logistics"), (100000002, "Retail"),
    (100000003, "Manufacturing"), (100000004, "Healthcare"), (100000005, "Education"),
    (100000006, "Energy"), (100000007, "Hospitality"), (100000008, "Media"),
    (100000009, "Real Estate"), (100000010, "Telecommunications"),
)
LEAD_SOURCE = ((1, "Advertisement"), (2, "Employee Referral"), (3, "External Referral"),
               (4, "Partner"), (5, "Public Relations"), (6, "Seminar"), (7, "Trade Show"),
               (8, "Web"), (9, "Word of Mouth"), (10, "Other"))

_OWNER = Attribute("ownerid", "Owner", required="SystemRequired",
                   targets=(("systemuser", "ownerid"),), display="Owner")


def _common(primary_id: str) -> list[Attribute]:
    return [
        Attribute(primary_id, "Uniqueidentifier", update=False, required="SystemRequired"),
        _readonly("createdon", "DateTime", display="Created On"),
        _readonly("modifiedon", "DateTime", display="Modified On"),
        _readonly("versionnumber", "BigInt", display="Version Number"),
    ]


def _enginy_fields() -> list[Attribute]:
    return [_string("crm_linkedinurl", 200, "LinkedIn URL", custom=True, format="Url"),
            _string(ENGINY_KEY, 100, "Enginy ID", custom=True)]


TABLES: dict[str, Table] = {t.logical_name: t for t in [
    Table("contact", "contacts", "contactid", "fullname", 2, _common("contactid") + [
        _string("firstname", 50, "First Name", required="Recommended"),
        _string("lastname", 50, "Last Name", required="ApplicationRequired"),
        _readonly("fullname", "String", max_length=160, display="Full Name"),
        _string("emailaddress1", 100, "Email", format="Email"),
        _string("telephone1", 50, "Business Phone"),
        _string("mobilephone", 50, "Mobile Phone"),
        _string("jobtitle", 100, "Job Title"),
        _string("address1_city", 80, "City"),
        Attribute("description", "Memo", max_length=2000, display="Description"),
        Attribute("parentcustomerid", "Customer", display="Company Name",
                  targets=(("account", "parentcustomerid_account"),
                           ("contact", "parentcustomerid_contact"))),
        _OWNER,
        Attribute("preferredcontactmethodcode", "Picklist", options=CONTACT_METHOD,
                  display="Preferred Method of Contact"),
        Attribute("statecode", "State", options=STATE, display="Status"),
        Attribute("statuscode", "Status", options=STATUS, display="Status Reason"),
        # The campaign columns the integration adds to contacts (see the Dynamics example config).
        _string("crm_sequencestatus", 100, "Sequence Status", custom=True),
        _string("crm_engagementstatus", 200, "Campaign Engagement Status", custom=True),
    ] + _enginy_fields(), alternate_keys=(ENGINY_KEY,)),
    Table("account", "accounts", "accountid", "name", 1, _common("accountid") + [
        _string("name", 160, "Account Name", required="ApplicationRequired"),
        _string("websiteurl", 200, "Website", format="Url"),
        _string("telephone1", 50, "Main Phone"),
        _string("emailaddress1", 100, "Email", format="Email"),
        _string("address1_city", 80, "City"),
        Attribute("description", "Memo", max_length=2000, display="Description"),
        Attribute("industrycode", "Picklist", options=INDUSTRY, display="Industry"),
        Attribute("numberofemployees", "Integer", display="Number of Employees"),
        Attribute("revenue", "Money", display="Annual Revenue"),
        Attribute("parentaccountid", "Lookup", targets=(("account", "parentaccountid"),),
                  display="Parent Account"),
        Attribute("primarycontactid", "Lookup", targets=(("contact", "primarycontactid"),),
                  display="Primary Contact"),
        _OWNER,
        Attribute("statecode", "State", options=STATE, display="Status"),
        Attribute("statuscode", "Status", options=STATUS, display="Status Reason"),
    ] + _enginy_fields(), alternate_keys=(ENGINY_KEY,)),
    Table("lead", "leads", "leadid", "fullname", 4, _common("leadid") + [
        _string("subject", 300, "Topic"),
        _string("firstname", 50, "First Name"),
        _string("lastname", 50, "Last Name", required="ApplicationRequired"),
        _readonly("fullname", "String", max_length=160, display="Name"),
        _string("companyname", 100, "Company Name"),
        _string("emailaddress1", 100, "Email", format="Email"),
        _string("telephone1", 50, "Business Phone"),
        _string("jobtitle", 100, "Job Title"),
        _string("websiteurl", 200, "Website", format="Url"),
        Attribute("leadsourcecode", "Picklist", options=LEAD_SOURCE, display="Lead Source"),
        Attribute("parentaccountid", "Lookup", targets=(("account", "parentaccountid"),),
                  display="Existing Account"),
        _OWNER,
        Attribute("statecode", "State", options=LEAD_STATE, display="Status"),
        Attribute("statuscode", "Status", options=LEAD_STATUS, display="Status Reason"),
    ] + _enginy_fields(), alternate_keys=(ENGINY_KEY,)),
    Table("systemuser", "systemusers", "systemuserid", "fullname", 8, _common("systemuserid") + [
        _string("firstname", 64, "First Name"),
        _string("lastname", 64, "Last Name"),
        _readonly("fullname", "String", max_length=200, display="Full Name"),
        _string("internalemailaddress", 100, "Primary Email"),
        _string("domainname", 1024, "User Name"),
        Attribute("isdisabled", "Boolean", create=False, update=False, display="Status"),
    ]),
    Table("task", "tasks", "activityid", "subject", 4212, _common("activityid") + [
        _string("subject", 200, "Subject", required="ApplicationRequired"),
        Attribute("description", "Memo", max_length=2000, display="Description"),
        Attribute("scheduledend", "DateTime", display="Due"),
        Attribute("actualend", "DateTime", display="Actual End"),
        Attribute("regardingobjectid", "Lookup", display="Regarding",
                  targets=(("contact", "regardingobjectid_contact_task"),
                           ("account", "regardingobjectid_account_task"),
                           ("lead", "regardingobjectid_lead_task"))),
        _OWNER,
        Attribute("statecode", "State", options=TASK_STATE, display="Activity Status"),
        Attribute("statuscode", "Status", options=TASK_STATUS, display="Status Reason"),
        _string(ENGINY_KEY, 100, "Enginy ID", custom=True),
    ], alternate_keys=(ENGINY_KEY,)),
]}

BY_ENTITY_SET = {t.entity_set: t for t in TABLES.values()}
# The store's object name for each table is its entity set name (contacts, accounts, …).
DEFAULT_STATE = {"contact": (0, 1), "account": (0, 1), "lead": (0, 1), "systemuser": None,
                 "task": (0, 2)}
# The status reasons each state allows (a task: open 2-3, completed 5, canceled 6); the first is
# the one Dataverse gives when only the state is set.
STATUS_OF_STATE = {"task": {0: (2, 3), 1: (5,), 2: (6,)}}


def table(settings: dict[str, Any], logical_name: str) -> Table:
    """The table with the custom attributes currently configured for it."""
    custom = settings.get("custom_attributes", {}).get(logical_name, [])
    return TABLES[logical_name].with_custom(custom)


def add_custom_attributes(settings: dict[str, Any], logical_name: str,
                          attributes: list[dict[str, Any]]) -> None:
    """Add custom columns to a table (what a customiser does in the maker portal)."""
    if logical_name not in TABLES:
        raise KeyError(f"no table {logical_name!r}; the sandbox has {sorted(TABLES)}")
    settings.setdefault("custom_attributes", {}).setdefault(logical_name, []).extend(attributes)
