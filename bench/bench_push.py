"""API calls per record pushed, per CRM, against the batch ceilings, and push throughput.

Each CRM of the sandbox receives the same creates (then the same updates) through the push
runner with its ledger, over HTTPS through the official clients. The baseline is the fewest
calls any client could make: one per full batch (Salesforce collections 200, HubSpot batch 100,
Dataverse $batch 100 here, 1,000 allowed). Targets: Salesforce ≤ 1/190 calls per record,
HubSpot ≤ 1/95.

    .venv/bin/python -m bench.bench_push --records 5000
"""

import argparse
import math
import time

import pandas as pd

from bench.sandbox_crms import resources, start_sandbox
from crm_pipelines.export.ledger import empty_ledger
from crm_pipelines.export.push import run_push

CEILING = {"salesforce": 200, "hubspot": 100, "dynamics": 100}
TARGET = {"salesforce": 1 / 190, "hubspot": 1 / 95, "dynamics": 1 / 95}
PERSON = {
    "salesforce": lambda i: {"LastName": f"Person{i}", "Email": f"p{i}@example.com", "Title": "Engineer"},
    "hubspot": lambda i: {"lastname": f"Person{i}", "email": f"p{i}@example.com", "jobtitle": "Engineer"},
    "dynamics": lambda i: {"lastname": f"Person{i}", "emailaddress1": f"p{i}@example.com", "jobtitle": "Engineer"},
}
TITLE = {"salesforce": "Title", "hubspot": "jobtitle", "dynamics": "jobtitle"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5_000)
    args = parser.parse_args()
    running = start_sandbox()
    ctx = running.ctx
    clients = resources(running)
    n = args.records
    print(f"{n:,} creates, then {n:,} updates, per CRM")
    print(f"{'CRM':<11}{'phase':<8}{'calls':>7}{'floor':>7}{'calls/record':>14}{'target':>9}{'ratio':>7}"
          f"{'records/s':>11}")
    try:
        for crm, resource in clients.items():
            client = resource.client()
            ids = [f"bench-{i}" for i in range(n)]
            creates = pd.DataFrame({"enginy_id": ids, "action": "create", "crm_id": None,
                                    "fields": [PERSON[crm](i) for i in range(n)], "owner_id": None,
                                    "company_crm_id": None})
            ledger = empty_ledger()
            for phase in ("create", "update"):
                if phase == "update":
                    crm_ids = dict(zip(ledger["enginy_id"], ledger["crm_id"]))
                    batch = creates.assign(action="update", crm_id=[crm_ids[i] for i in ids],
                                           fields=[{TITLE[crm]: "Director"}] * n)
                else:
                    batch = creates
                ctx.stats.reset()
                started = time.perf_counter()
                outcome = run_push(lambda w: client.push("contacts", w), "contacts", batch, ledger,
                                   lambda saved: None, chunk=CEILING[crm])
                seconds = time.perf_counter() - started
                ledger = outcome.ledger
                assert sum(outcome.counts.values()) == n and "rejected" not in outcome.counts, outcome.counts
                calls = ctx.stats.total_calls(crm)
                floor = math.ceil(n / CEILING[crm])
                print(f"{crm:<11}{phase:<8}{calls:>7,}{floor:>7,}{calls / n:>14.5f}{TARGET[crm]:>9.5f}"
                      f"{calls / floor:>7.3f}{n / seconds:>11,.0f}")
    finally:
        running.stop()


if __name__ == "__main__":
    main()
