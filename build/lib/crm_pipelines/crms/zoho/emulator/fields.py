"""The fields of the sandbox's Zoho CRM modules, as ``/settings/fields?module=`` describes them.

Field API names are Zoho's (``Last_Name``, ``Account_Name``); custom fields carry the names a
Zoho admin would get from their labels (``Enginy_Id``, ``LinkedIn``). A field with
``unique: True`` refuses a second record with the same value ("Do not allow duplicate values"),
which is what lets ``duplicate_check_fields`` name it in an upsert.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CRM = "zoho"
MODULES = ("Contacts", "Accounts", "Leads")
READ_ONLY = ("id", "Created_Time", "Modified_Time")
# Fields the upsert checks for duplicates when the call names none (Zoho's system defaults).
DEFAULT_DUPLICATE_CHECK = {"Contacts": ["Email"], "Leads": ["Email"], "Accounts": ["Account_Name"]}


@dataclass(frozen=True)
class Field:
    api_name: str
    label: str
    data_type: str  # text, textarea, email, phone, website, picklist, integer, lookup, ownerlookup, datetime, …
    mandatory: bool = False
    custom: bool = False
    unique: bool = False
    options: tuple[str, ...] = ()
    length: int = 255
    lookup_module: str | None = None

    def describe(self, number: int) -> dict[str, Any]:
        field: dict[str, Any] = {
            "api_name": self.api_name, "field_label": self.label, "display_label": self.label,
            "data_type": self.data_type, "json_type": _JSON_TYPES.get(self.data_type, "string"),
            "system_mandatory": self.mandatory, "custom_field": self.custom, "length": self.length,
            "read_only": self.api_name in READ_ONLY, "field_read_only": self.api_name in READ_ONLY,
            "id": f"{4150868000000002000 + number}", "visible": True,
            "pick_list_values": [{"display_value": o, "actual_value": o, "reference_value": o} for o in self.options],
            "unique": {"casesensitive": "false"} if self.unique else {},
        }
        if self.lookup_module:
            field["lookup"] = {"module": {"api_name": self.lookup_module}}
        return field


_JSON_TYPES = {"integer": "integer", "bigint": "integer", "double": "double", "currency": "double",
               "boolean": "boolean", "lookup": "jsonobject", "ownerlookup": "jsonobject",
               "multiselectpicklist": "jsonarray"}

_COMMON = (
    Field("id", "Record Id", "bigint"),
    Field("Owner", "Owner", "ownerlookup", lookup_module="users"),
    Field("Created_Time", "Created Time", "datetime"),
    Field("Modified_Time", "Modified Time", "datetime"),
    Field("Description", "Description", "textarea", length=32000),
    Field("LinkedIn", "LinkedIn", "website", custom=True),
    Field("Enginy_Id", "Enginy Id", "text", custom=True, unique=True, length=64),
)
_LEAD_SOURCES = ("Advertisement", "Cold Call", "Employee Referral", "External Referral", "Enginy", "Partner",
                 "Web Download", "Trade Show")
_CAMPAIGN = tuple(Field(api, label, kind, custom=True, length=32000 if kind == "textarea" else 255)
                  for api, label, kind in (
    ("Campaign_Sequence_Details", "Campaign Sequence Details", "textarea"),
    ("Campaign_Engagement_Status", "Campaign Engagement Status", "text"),
    ("Sequence_Status", "Sequence Status", "picklist"),
    ("Campaign_Reply_Analysis", "Campaign Reply Analysis", "text"),
    ("Campaign_Opens", "Campaign Opens", "integer"),
    ("Campaign_Clicks", "Campaign Clicks", "integer"),
    ("Campaign_Open_Analysis", "Campaign Open Analysis", "text"),
    ("Campaign_Click_Analysis", "Campaign Click Analysis", "text"),
    ("Enginy_Campaigns", "Enginy Campaigns", "textarea"),
    ("Enginy_Senders", "Enginy Senders", "textarea"),
    ("Enginy_Activities", "Enginy Activities", "textarea"),
    ("Conversation_Tags", "Conversation Tags", "textarea"),
    ("Conversation_Tag_Categories", "Conversation Tag Categories", "textarea"),
))
SEQUENCE_STATUSES = ("Not Started", "Ongoing", "Replied", "Finished")

FIELDS: dict[str, tuple[Field, ...]] = {
    "Contacts": _COMMON + (
        Field("First_Name", "First Name", "text", length=40),
        Field("Last_Name", "Last Name", "text", mandatory=True, length=80),
        Field("Email", "Email", "email", length=100),
        Field("Phone", "Phone", "phone", length=30),
        Field("Mobile", "Mobile", "phone", length=30),
        Field("Title", "Title", "text", length=100),
        Field("Department", "Department", "text", length=100),
        Field("Account_Name", "Account Name", "lookup", lookup_module="Accounts"),
        Field("Lead_Source", "Lead Source", "picklist", options=_LEAD_SOURCES),
    ) + tuple(Field(f.api_name, f.label, f.data_type, custom=True, length=f.length,
                    options=SEQUENCE_STATUSES if f.data_type == "picklist" else ()) for f in _CAMPAIGN),
    "Accounts": _COMMON + (
        Field("Account_Name", "Account Name", "text", mandatory=True, length=200),
        Field("Website", "Website", "website"),
        Field("Phone", "Phone", "phone", length=30),
        Field("Industry", "Industry", "picklist", options=(
            "Technology", "Finance", "Healthcare", "Retail", "Manufacturing", "Education", "Media", "Energy",
            "Real Estate", "Other")),
        Field("Employees", "Employees", "integer"),
        Field("Last_Enginy_Engagement", "Last Enginy Engagement", "text", custom=True),
    ),
    "Leads": _COMMON + (
        Field("First_Name", "First Name", "text", length=40),
        Field("Last_Name", "Last Name", "text", mandatory=True, length=80),
        Field("Company", "Company", "text", length=200),
        Field("Email", "Email", "email", length=100),
        Field("Phone", "Phone", "phone", length=30),
        Field("Designation", "Title", "text", length=100),
        Field("Website", "Website", "website"),
        Field("Lead_Source", "Lead Source", "picklist", options=_LEAD_SOURCES),
        Field("Lead_Status", "Lead Status", "picklist", options=(
            "Not Contacted", "Attempted to Contact", "Contact in Future", "Contacted", "Junk Lead", "Lost Lead",
            "Pre-Qualified")),
    ),
}


def fields_of(module: str) -> dict[str, Field]:
    return {f.api_name: f for f in FIELDS[module]}
