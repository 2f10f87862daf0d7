"""Association types through the push, and their undo, for each CRM of the sandbox."""

import pandas as pd
import pytest

from crm_pipelines.export.associations import removed_links, undo_batch
from crm_pipelines.export.batch import Launch, build_batch
from crm_pipelines.export.ledger import empty_ledger
from crm_pipelines.export.push import run_push
from crm_pipelines.export.writes import Write
from crm_pipelines.resources.warehouse import parse_json_columns
from crm_pipelines.crms.hubspot.emulator import associations
from tests.connectors.test_push import CRMS

COMPANY_NAME = {"salesforce": "Name", "hubspot": "name", "dynamics": "name"}


@pytest.fixture(params=sorted(CRMS))
def crm(request, sandbox):
    return sandbox, CRMS[request.param]


def setup(sandbox, spec):
    """Two companies and a contact whose primary company is the first; answers their ids."""
    client = spec.resource(sandbox).client()
    made = {}
    for name in ("Acme", "Globex"):
        [result] = client.push("companies", [_company_write(spec, name)])
        made[name] = result.crm_id
    [contact] = client.push("contacts", [_write(spec, company=made["Acme"])])
    return client, made, contact.crm_id


def _company_write(spec, name):
    return Write(f"co-{name}", "create", f"co-{name}", {COMPANY_NAME[spec.name]: name})


def _write(spec, company):
    return Write("ada", "create", "en-ada", spec.person(0), company_id=company)


def companies_of(sandbox, spec, contact_id) -> dict[str, str]:
    """company id → "primary" / "additional", as the CRM holds the contact's links."""
    store = sandbox.ctx.store
    if spec.name == "salesforce":
        account = store.get("salesforce", "Contact", contact_id).fields.get("AccountId")
        return {account: "primary"} if account else {}
    if spec.name == "dynamics":
        account = store.get("dynamics", "contacts", contact_id).fields.get("_parentcustomerid_value")
        return {account: "primary"} if account else {}
    return {company: "primary" if 1 in types else "additional"
            for company, types in associations.linked(sandbox.ctx, "contacts", contact_id, "companies")}


def push_link(sandbox, client, spec, contact_id, company_id, association, confirm=False):
    """Build the batch the way the export does for a matched contact, then push it."""
    records = pd.DataFrame([{"id": "en-ada", "updated_at": None}])
    matches = pd.DataFrame([{"enginy_id": "en-ada", "outcome": "matched", "crm_id": contact_id}])
    primary = next((c for c, kind in companies_of(sandbox, spec, contact_id).items() if kind == "primary"), None)
    snapshot = pd.DataFrame([{"crm_id": contact_id, "last_modified": None, "owner_id": "someone", "raw": {},
                              "account_id": primary}])
    batch = build_batch(records, matches, snapshot, [], {}, Launch(association=association,
                                                                  confirm_remove_previous=confirm),
                        company_links={"en-ada": company_id},
                        one_company_per_contact=not getattr(client, "contacts_link_many_companies", False))
    batch = parse_json_columns(batch, ("fields",))  # as the push reads it back from the warehouse
    removed = removed_links(batch)
    outcome = run_push(lambda w: client.push("contacts", w), "contacts", batch, empty_ledger(), lambda l: None,
                       chunk=spec.ceiling)
    assert set(outcome.counts) == ({"updated"} if batch["action"].eq("update").any() else set())
    return removed


@pytest.fixture
def linked(crm):
    sandbox, spec = crm
    client, companies, contact = setup(sandbox, spec)
    return sandbox, spec, client, companies, contact


def test_a_created_contact_is_linked_to_its_company_as_primary(linked) -> None:
    sandbox, spec, client, companies, contact = linked
    assert companies_of(sandbox, spec, contact) == {companies["Acme"]: "primary"}


def test_primary_makes_the_new_company_primary(linked) -> None:
    sandbox, spec, client, companies, contact = linked
    push_link(sandbox, client, spec, contact, companies["Globex"], "primary")
    held = companies_of(sandbox, spec, contact)
    assert held[companies["Globex"]] == "primary"
    if spec.name == "hubspot":  # the previous primary stays, as a plain link
        assert held[companies["Acme"]] == "additional"


def test_additional_keeps_the_primary_company(linked) -> None:
    sandbox, spec, client, companies, contact = linked
    push_link(sandbox, client, spec, contact, companies["Globex"], "additional")
    held = companies_of(sandbox, spec, contact)
    assert held[companies["Acme"]] == "primary"
    if spec.name == "hubspot":
        assert held[companies["Globex"]] == "additional"
    else:  # a contact holds one company here: it keeps the one it has, and nothing is sent
        assert companies["Globex"] not in held


def test_additional_links_a_contact_that_has_no_company_yet(crm) -> None:
    """The batch asks for an additional link only where the contact holds no company, and every CRM
    then makes it: left unmade, the same update would be sent again on every run."""
    sandbox, spec = crm
    client = spec.resource(sandbox).client()
    [company] = client.push("companies", [_company_write(spec, "Acme")])
    [contact] = client.push("contacts", [_write(spec, company=None)])
    push_link(sandbox, client, spec, contact.crm_id, company.crm_id, "additional")
    assert companies_of(sandbox, spec, contact.crm_id) == {
        company.crm_id: "additional" if spec.name == "hubspot" else "primary"}


def test_primary_remove_previous_needs_confirmation_records_what_it_removes_and_is_undone(linked) -> None:
    sandbox, spec, client, companies, contact = linked
    with pytest.raises(ValueError, match="confirm_remove_previous"):
        push_link(sandbox, client, spec, contact, companies["Globex"], "primary_remove_previous")
    removed = push_link(sandbox, client, spec, contact, companies["Globex"], "primary_remove_previous", confirm=True)
    assert removed[["contact_crm_id", "company_crm_id"]].values.tolist() == [[contact, companies["Acme"]]]
    assert companies_of(sandbox, spec, contact) == {companies["Globex"]: "primary"}
    undo = run_push(lambda w: client.push("contacts", w), "contacts", undo_batch(removed), empty_ledger(),
                    lambda l: None, chunk=spec.ceiling)
    assert set(undo.counts) == {"updated"}
    assert companies_of(sandbox, spec, contact)[companies["Acme"]] == "primary"
