"""API calls per 1,000 records of a full contact pull, per CRM, against each CRM's page ceiling.

Each CRM of the sandbox is seeded with the same generated contacts; the connector pulls them
all through the official client over HTTPS, and the sandbox counts every call. The baseline
is the fewest calls any client could make: one per full page at the CRM's largest page
(Salesforce REST 2,000 · HubSpot list 100 · Dataverse 5,000). The ratio is calls made over
that floor, measured in the same run; the target is within 5% (ratio ≤ 1.05).

    .venv/bin/python -m bench.bench_pull --contacts 50000
"""

import argparse
import math
import time

from bench.sandbox_crms import resources, start_sandbox
from crm_pipelines.enginy.generator import generate_frames
from crm_pipelines.crms.dynamics import emulator as dynamics
from crm_pipelines.crms.hubspot import emulator as hubspot
from crm_pipelines.crms.salesforce import emulator as salesforce

PAGE_CEILING = {"salesforce": 2_000, "hubspot": 100, "dynamics": 5_000}
CONTACT_OBJECT = {"salesforce": "Contact", "hubspot": "contacts", "dynamics": "contacts"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=50_000)
    args = parser.parse_args()
    running = start_sandbox()
    ctx = running.ctx
    data = generate_frames(args.contacts, seed=7).crm
    for module in (salesforce, hubspot, dynamics):
        module.seed(ctx, data)
    # The threshold is lifted so this measures REST paging; Bulk API 2.0 is reported apart.
    clients = resources(running, bulk_threshold=10**9)
    print(f"full pull of the contacts seeded from {args.contacts:,} generated CRM contacts")
    print(f"{'CRM':<11}{'records':>9}{'data calls':>12}{'all calls':>11}{'floor':>7}"
          f"{'calls/1k':>10}{'floor/1k':>10}{'ratio':>7}{'seconds':>9}")
    try:
        for crm, resource in clients.items():
            client = resource.client()
            client.pull("contacts", None, None)  # warm: token, describe, property lists
            ctx.stats.reset()
            started = time.perf_counter()
            result = client.pull("contacts", None, None)
            seconds = time.perf_counter() - started
            records = len(result.records)
            assert records == len(ctx.store.records(crm, CONTACT_OBJECT[crm])), "a pull lost or doubled records"
            calls = ctx.stats.total_calls(crm)
            floor = math.ceil(records / PAGE_CEILING[crm])
            print(f"{crm:<11}{records:>9,}{result.pages:>12,}{calls:>11,}{floor:>7,}"
                  f"{1000 * calls / records:>10.3f}{1000 * floor / records:>10.3f}{calls / floor:>7.3f}"
                  f"{seconds:>9.1f}")
        bulk = resources(running, bulk_threshold=0)["salesforce"].client()
        bulk.pull("contacts", None, None)
        ctx.stats.reset()
        started = time.perf_counter()
        result = bulk.pull("contacts", None, None)
        print(f"salesforce through Bulk API 2.0: {len(result.records):,} records in "
              f"{ctx.stats.total_calls('salesforce')} calls, {time.perf_counter() - started:.1f} s")
    finally:
        running.stop()


if __name__ == "__main__":
    main()
