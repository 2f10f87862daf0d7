"""The CRM side of the generated data: what the sandbox loads (``--seed-from DIR``).

`crm-pipelines generate` writes three Parquet files into ``DIR``; each CRM module maps these
neutral columns onto its own objects and field names (Account/Contact, companies/contacts,
accounts/contacts) and assigns its own ids. ``seed_id`` survives as the record's external
key in the sandbox so tests can join back to the generator's ground-truth labels.

users.parquet:     seed_id, first_name, last_name, email
companies.parquet: seed_id, name, domain, website, linkedin_url, phone, industry,
                   employees, owner_seed_id, created_at, modified_at
contacts.parquet:  seed_id, first_name, last_name, email, phone, job_title, linkedin_url,
                   company_seed_id, company_name, owner_seed_id, lead_status, created_at,
                   modified_at, is_lead (True: a Salesforce Lead rather than a Contact)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

USER_COLUMNS = ["seed_id", "first_name", "last_name", "email"]
COMPANY_COLUMNS = ["seed_id", "name", "domain", "website", "linkedin_url", "phone", "industry",
                   "employees", "owner_seed_id", "created_at", "modified_at"]
CONTACT_COLUMNS = ["seed_id", "first_name", "last_name", "email", "phone", "job_title",
                   "linkedin_url", "company_seed_id", "company_name", "owner_seed_id",
                   "lead_status", "created_at", "modified_at", "is_lead"]


@dataclass
class SeedData:
    users: pd.DataFrame
    companies: pd.DataFrame
    contacts: pd.DataFrame

    @classmethod
    def load(cls, directory: str | Path) -> "SeedData":
        directory = Path(directory)
        missing = [n for n in ("users", "companies", "contacts") if not (directory / f"{n}.parquet").exists()]
        if missing:
            raise FileNotFoundError(
                f"{directory}: no {', '.join(m + '.parquet' for m in missing)}; "
                "run `crm-pipelines generate` first, which writes the CRM side there")
        return cls(
            pd.read_parquet(directory / "users.parquet", columns=USER_COLUMNS),
            pd.read_parquet(directory / "companies.parquet", columns=COMPANY_COLUMNS),
            pd.read_parquet(directory / "contacts.parquet", columns=CONTACT_COLUMNS),
        )

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.users[USER_COLUMNS].to_parquet(directory / "users.parquet", index=False)
        self.companies[COMPANY_COLUMNS].to_parquet(directory / "companies.parquet", index=False)
        self.contacts[CONTACT_COLUMNS].to_parquet(directory / "contacts.parquet", index=False)
