"""Generated data with ground truth, shaped as the matching engine reads it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from crm_pipelines.enginy.generator import GeneratedData, generate_frames


@dataclass
class World:
    """Both sides of the generated data, and the truth about them."""

    generated: GeneratedData
    enginy_contacts: pd.DataFrame
    enginy_companies: pd.DataFrame
    crm_people: pd.DataFrame  # contacts and leads, with ``object``
    crm_companies: pd.DataFrame
    entity: dict[str, str]  # record id → entity id, both sides, contacts and companies
    variants: dict[str, str]  # record id → the variants applied to it


def crm_sides(generated: GeneratedData) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The CRM side as canonical records: ``crm_id``, ``account_id``, contacts and leads apart."""
    people = generated.crm.contacts.rename(columns={"seed_id": "crm_id", "company_seed_id": "account_id"})
    people = people.assign(object=np.where(people["is_lead"], "leads", "contacts"), is_deleted=False)
    # A Salesforce Lead names its company in a text field and links to no Account.
    people["account_id"] = people["account_id"].where(~people["is_lead"], None)
    companies = generated.crm.companies.rename(columns={"seed_id": "crm_id"}).assign(object="companies",
                                                                                   is_deleted=False)
    return people, companies


def build_world(contacts: int, seed: int) -> World:
    generated = generate_frames(contacts, seed=seed)
    people, companies = crm_sides(generated)
    labels = pd.concat([generated.contact_labels, generated.company_labels])
    return World(generated, generated.enginy["contacts"], generated.enginy["companies"], people, companies,
                 dict(zip(labels["record_id"], labels["entity_id"])), dict(zip(labels["record_id"], labels["variant"])))


@pytest.fixture(scope="session")
def world() -> World:
    return build_world(3000, seed=7)
