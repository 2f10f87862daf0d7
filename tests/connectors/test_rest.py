"""The shared REST client (crm_pipelines/crms/wire/rest.py) over HTTPS against the sandbox's
HubSpot, whose bearer tokens, next links and fault rules exercise what the Pipedrive and
Custom CRM tests do not."""

import pytest

from crm_pipelines.crms.wire.rest import BearerToken, NextLinkPaging, RestClient, UncertainWrite
from crm_pipelines.crms.hubspot import emulator as hubspot
from crm_pipelines.sandbox.faults import FaultRule

CONTACTS = "/crm/v3/objects/{objectType}"


@pytest.fixture
def portal(sandbox):
    sandbox.ctx.crm_settings("hubspot").update({"burst_limit": None, "search_per_second": None})
    for i in range(25):
        hubspot.insert(sandbox.ctx, "contacts", {"lastname": f"L{i}", "email": f"l{i}@rest.example"})
    return sandbox


def test_a_refused_bearer_token_is_renewed_once_and_the_call_succeeds(portal) -> None:
    tokens = ["expired-token"]
    auth = BearerToken(lambda: tokens[-1], refresh=lambda: tokens.append(hubspot.ACCESS_TOKEN))
    client = RestClient(portal.base_url, auth)
    answer = client.request("GET", "/crm/v3/objects/contacts", params={"limit": 5})
    assert len(answer["results"]) == 5 and tokens == ["expired-token", hubspot.ACCESS_TOKEN]
    assert client.api_calls == 2


def test_next_link_paging_follows_the_urls_the_answers_give(portal) -> None:
    client = RestClient(portal.base_url, BearerToken(lambda: hubspot.ACCESS_TOKEN))
    pages = list(client.pages("/crm/v3/objects/contacts", NextLinkPaging(records="results",
                                                                         next_link="paging.next.link")))
    assert sum(len(p.records) for p in pages) == 25 and len(pages) == 3  # HubSpot's default page is 10


def test_a_create_whose_answer_is_lost_is_not_sent_again_by_the_client(portal) -> None:
    portal.ctx.faults.add(FaultRule(crm="hubspot", endpoint=CONTACTS, method="POST", kind="drop", nth=1))
    client = RestClient(portal.base_url, BearerToken(lambda: hubspot.ACCESS_TOKEN))
    with pytest.raises(UncertainWrite):
        client.request("POST", "/crm/v3/objects/contacts", json={"properties": {"lastname": "Once"}})
    made = [r for r in portal.ctx.store.records("hubspot", "contacts") if r.fields.get("lastname") == "Once"]
    assert len(made) == 1 and portal.ctx.stats.calls[("hubspot", "POST", CONTACTS)] == 1


def test_a_create_the_crm_answered_503_is_sent_again_because_nothing_was_written(portal) -> None:
    portal.ctx.faults.add(FaultRule(crm="hubspot", endpoint=CONTACTS, method="POST", status=503, retry_after=0,
                                    nth=1))
    client = RestClient(portal.base_url, BearerToken(lambda: hubspot.ACCESS_TOKEN))
    client.request("POST", "/crm/v3/objects/contacts", json={"properties": {"lastname": "Twice"}})
    made = [r for r in portal.ctx.store.records("hubspot", "contacts") if r.fields.get("lastname") == "Twice"]
    assert len(made) == 1 and portal.ctx.stats.calls[("hubspot", "POST", CONTACTS)] == 2


def test_a_read_dropped_mid_answer_is_simply_read_again(portal) -> None:
    portal.ctx.faults.add(FaultRule(crm="hubspot", endpoint=CONTACTS, method="GET", kind="drop", nth=1))
    client = RestClient(portal.base_url, BearerToken(lambda: hubspot.ACCESS_TOKEN))
    assert len(client.request("GET", "/crm/v3/objects/contacts", params={"limit": 3})["results"]) == 3
    assert client.api_calls == 2
