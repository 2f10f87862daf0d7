"""The entity sets of the sandbox's TribeCRM and their properties, with the ``$metadata`` (OData
CSDL) that describes them.

Persons (``Relation_Person``) and organizations (``Relation_Organization``) are Relations; a
person's employment at an organization is a Relationship (``Relationship_Person_Contact_Standard``)
whose ``Relation`` is the organization and ``Person`` the person; the account's own users are
employees (``Relationship_Person_Contact_Employee``). Custom fields have TribeCRM's API names —
``_`` and the field's GUID with every hyphen doubled to ``__`` — and their display name in the
metadata's ``Core.Description`` annotation.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

CRM = "tribecrm"
PERSON, ORGANIZATION = "Relation_Person", "Relation_Organization"
CONTACT, EMPLOYEE = "Relationship_Person_Contact_Standard", "Relationship_Person_Contact_Employee"
ENTITY_SETS = (PERSON, ORGANIZATION, CONTACT, EMPLOYEE)
SYSTEM = ("ID", "DateCreated", "DateModified", "_Type", "_Name")


@dataclass(frozen=True)
class Property:
    name: str
    type: str = "Edm.String"  # Edm.String, Edm.Int32, Edm.DateTimeOffset, Edm.Guid, Edm.Boolean
    required: bool = False
    label: str | None = None  # a custom field's display name
    max_length: int | None = 255

    @property
    def custom(self) -> bool:
        return self.label is not None


def custom_name(label: str) -> str:
    """A custom field's API name as TribeCRM writes it, from a GUID stable per label."""
    return "_" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"tribecrm-field:{label}")).replace("-", "__")


def _custom(label: str, type_: str = "Edm.String", max_length: int | None = 255) -> Property:
    return Property(custom_name(label), type_, label=label, max_length=max_length)


CAMPAIGN_LABELS = ("Campaign sequence details", "Campaign engagement status", "Sequence status",
                   "Campaign reply analysis", "Campaign opens", "Campaign clicks", "Campaign open analysis",
                   "Campaign click analysis", "Campaigns", "Senders", "Activities", "Conversation tags",
                   "Conversation tag categories")
_COMMON = (Property("ID", "Edm.Guid"), Property("DateCreated", "Edm.DateTimeOffset"),
           Property("DateModified", "Edm.DateTimeOffset"), Property("EmailAddress"), Property("PhoneNumber"),
           Property("LinkedIn"), _custom("Enginy Id", max_length=64))

PROPERTIES: dict[str, tuple[Property, ...]] = {
    PERSON: _COMMON + (
        Property("FirstName"), Property("MiddleName"), Property("LastName", required=True),
        Property("MobilePhoneNumber"),
    ) + tuple(_custom(label, "Edm.Int32" if label in ("Campaign opens", "Campaign clicks") else "Edm.String",
                      None if label not in ("Campaign opens", "Campaign clicks", "Sequence status") else 255)
              for label in CAMPAIGN_LABELS),
    ORGANIZATION: _COMMON + (
        Property("Name", required=True), Property("Website"), Property("NumberOfEmployees", "Edm.Int32"),
        _custom("Last Enginy engagement"),
    ),
    CONTACT: (
        Property("ID", "Edm.Guid"), Property("DateCreated", "Edm.DateTimeOffset"),
        Property("DateModified", "Edm.DateTimeOffset"), Property("EmailAddress"), Property("PhoneNumber"),
        Property("JobTitle"), Property("Department"),
    ),
    EMPLOYEE: (
        Property("ID", "Edm.Guid"), Property("DateCreated", "Edm.DateTimeOffset"),
        Property("DateModified", "Edm.DateTimeOffset"), Property("EmailAddress"), Property("IsActive", "Edm.Boolean"),
    ),
}
# Navigation properties: name → the entity set it points to.
NAVIGATION = {CONTACT: {"Relation": ORGANIZATION, "Person": PERSON}, EMPLOYEE: {"Person": PERSON}}


def properties(entity_set: str) -> dict[str, Property]:
    return {p.name: p for p in PROPERTIES[entity_set]}


def metadata_xml() -> str:
    """The service's CSDL: entity types with their properties and navigation properties."""
    types = []
    for entity_set in ENTITY_SETS:
        props = []
        for p in PROPERTIES[entity_set]:
            nullable = "false" if p.required or p.name == "ID" else "true"
            attrs = f'Name={quoteattr(p.name)} Type="{p.type}" Nullable="{nullable}"'
            if p.max_length and p.type == "Edm.String":
                attrs += f' MaxLength="{p.max_length}"'
            note = (f'<Annotation Term="Core.Description" String={quoteattr(p.label)}/>' if p.label else "")
            props.append(f"<Property {attrs}>{note}</Property>" if note else f"<Property {attrs}/>")
        for name, target in NAVIGATION.get(entity_set, {}).items():
            props.append(f'<NavigationProperty Name="{name}" Type="Tribe.{target}"/>')
        types.append(f'<EntityType Name="{entity_set}"><Key><PropertyRef Name="ID"/></Key>{"".join(props)}'
                     "</EntityType>")
    sets = "".join(f'<EntitySet Name="{s}" EntityType="Tribe.{s}"/>' for s in ENTITY_SETS)
    return ('<?xml version="1.0" encoding="utf-8"?>'
            '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx"><edmx:DataServices>'
            f'<Schema Namespace="Tribe" xmlns="http://docs.oasis-open.org/odata/ns/edm">{"".join(types)}'
            f'<EntityContainer Name="Container">{sets}</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>')
