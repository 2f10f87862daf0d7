"""Canonical CRM records: the one shape every CRM adapter hands over, whatever the CRM.

Everything after the pull (matching, export, reports) works on these frames. The CRM's own
fields travel along in ``raw`` (a dict per record, or the JSON text the warehouse keeps it as) so
field mapping and custom identifiers can still reach any of them. Adapters validate here, at the
boundary, so a CRM returning something unexpected fails the pull with the column and the reason,
not a later step with a KeyError.
"""

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

UTC_MICROS = {"unit": "us", "tz": "UTC"}


class _Canonical(pa.DataFrameModel):
    class Config:
        strict = "filter"  # adapters may carry helper columns; only the canonical ones leave
        coerce = True


class CrmContact(_Canonical):
    """A CRM person: Salesforce Contact or Lead, HubSpot contact, Dataverse contact or lead."""

    crm_id: Series[str] = pa.Field(unique=True)
    first_name: Series[str] = pa.Field(nullable=True)
    last_name: Series[str] = pa.Field(nullable=True)
    company_name: Series[str] = pa.Field(nullable=True)
    email: Series[str] = pa.Field(nullable=True)
    linkedin_url: Series[str] = pa.Field(nullable=True)
    phone: Series[str] = pa.Field(nullable=True)
    job_title: Series[str] = pa.Field(nullable=True)
    owner_id: Series[str] = pa.Field(nullable=True)
    account_id: Series[str] = pa.Field(nullable=True)
    last_modified: Series[pd.DatetimeTZDtype] = pa.Field(dtype_kwargs=UTC_MICROS)
    is_deleted: Series[bool]
    raw: Series[object]


class CrmCompany(_Canonical):
    """A CRM organisation: Salesforce Account, HubSpot company, Dataverse account."""

    crm_id: Series[str] = pa.Field(unique=True)
    name: Series[str] = pa.Field(nullable=True)
    domain: Series[str] = pa.Field(nullable=True)
    linkedin_url: Series[str] = pa.Field(nullable=True)
    owner_id: Series[str] = pa.Field(nullable=True)
    last_modified: Series[pd.DatetimeTZDtype] = pa.Field(dtype_kwargs=UTC_MICROS)
    is_deleted: Series[bool]
    raw: Series[object]


class CrmUser(_Canonical):
    """A CRM user who can own records and be credited with activities."""

    crm_id: Series[str] = pa.Field(unique=True)
    email: Series[str] = pa.Field(nullable=True)
    first_name: Series[str] = pa.Field(nullable=True)
    last_name: Series[str] = pa.Field(nullable=True)
    is_active: Series[bool]
    raw: Series[object]


class CrmAssociation(_Canonical):
    """A contact ↔ company link; ``is_primary`` marks the contact's primary company."""

    contact_id: Series[str]
    company_id: Series[str]
    is_primary: Series[bool]


CONTACT_COLUMNS = list(CrmContact.to_schema().columns)
COMPANY_COLUMNS = list(CrmCompany.to_schema().columns)


def empty(model: type[_Canonical]) -> pd.DataFrame:
    """An empty, valid frame of the model (a first pull of an empty CRM)."""
    columns = list(model.to_schema().columns)
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    for column, spec in model.to_schema().columns.items():
        if "Datetime" in str(spec.dtype):
            frame[column] = pd.Series(dtype="datetime64[us, UTC]")
        elif str(spec.dtype) == "bool":
            frame[column] = pd.Series(dtype=bool)
    return model.validate(frame)
