"""A push makes several write calls at once — one record a call (Pipedrive, TribeCRM, a Custom
CRM) or a batch of a hundred (Dynamics, HubSpot) — never more than configured, and each record still
lands once, its result in its write's place. The sandbox answers every
call after a delay, as a CRM across the network does, and counts the calls it answers at once."""

import pytest

from crm_pipelines.config import load_config
from crm_pipelines.crms import registry
from crm_pipelines.export.writes import Write
from crm_pipelines.sandbox.faults import FaultRule

# The calls a push may make at once, as each client is configured, and writes enough for more calls
# than that (Dynamics: four $batch requests of 100).
PARALLEL = {
    "pipedrive": (lambda client: client.settings.parallel_writes, 13),
    "tribecrm": (lambda client: client.settings.parallel_writes, 13),
    "northwind": (lambda client: client.api.parallel_writes, 13),  # from its API description
    "dynamics": (lambda client: client.settings.parallel_batches, 301),
    "hubspot": (lambda client: client.settings.parallel_batches, 301),
}


@pytest.mark.parametrize("name", sorted(PARALLEL))
def test_a_push_makes_several_write_calls_at_once_within_the_limit_and_each_record_lands_once(
        name, sandbox, monkeypatch) -> None:
    for variable, value in registry.client_environment(name, sandbox).items():
        monkeypatch.setenv(variable, value)
    crm = registry.crm_of(name)
    client = registry.crm_resource(crm).process_config_and_initialize().client()
    config = load_config(registry.example_config(crm))
    last_name = next(m.crm_field for m in config.field_mapping.contacts
                     if m.type == "enginy_field" and m.enginy_field == "last_name")
    configured, count = PARALLEL[name]
    limit = configured(client)
    assert limit > 1, "the example configuration writes in parallel"
    client.describe("contacts")  # the field look-ups a push makes first, before the delay
    sandbox.ctx.stats.reset()
    sandbox.ctx.faults.add(FaultRule(crm=name, kind="latency", latency_ms=150))
    writes = [Write(f"w{i}", "create", f"enginy-parallel-{i}", {last_name: f"Parallel{i}"})
              for i in range(count)]
    results = client.push("contacts", writes)
    assert [r.write_id for r in results] == [w.write_id for w in writes], "each result in its write's place"
    assert {r.status for r in results} == {"created"} and len({r.crm_id for r in results}) == len(writes)
    assert 2 <= sandbox.ctx.stats.peak_in_flight[name] <= limit
    sandbox.ctx.faults.clear()
    held = client.pull("contacts", None, None).records
    for i, result in enumerate(results):
        assert (held["last_name"] == f"Parallel{i}").sum() == 1
        assert held.loc[held["crm_id"].astype(str) == str(result.crm_id), "last_name"].tolist() == [f"Parallel{i}"]
