"""Push throughput with write calls one after another against several at once: Pipedrive (one
record a call, ``parallel_writes``), HubSpot and Dynamics (batches of 100, ``parallel_batches``).

The sandbox answers every call after ``--latency-ms`` (a CRM across the network answers in
100–300 ms; on loopback it answers at once, and a bench there would measure only our CPU), with
each CRM's rate limit as the emulator keeps it by default (Pipedrive 80 calls per 2 s, HubSpot
190 per 10 s). The baseline is the same push one call at a time, in the same process. For
HubSpot the floor is what its rate limit allows: the batch calls at 190 per 10 s.

    .venv/bin/python -m bench.bench_parallel_writes --crm pipedrive --records 200
    .venv/bin/python -m bench.bench_parallel_writes --crm hubspot --records 20000
"""

import argparse
import math
import time

import pandas as pd

from bench.sandbox_crms import resources, start_sandbox
from crm_pipelines.crms.pipedrive import emulator as pipedrive
from crm_pipelines.crms.pipedrive.client import PipedriveResource
from crm_pipelines.export.ledger import empty_ledger
from crm_pipelines.export.push import run_push
from crm_pipelines.sandbox.faults import FaultRule

NAME = {"pipedrive": "name", "hubspot": "lastname", "dynamics": "lastname"}
CHUNK = {"pipedrive": 100, "hubspot": 1000, "dynamics": 1000}  # as the CRMs' facts hand writes to push
CALLS_PER_SECOND = {"hubspot": 19.0}  # the rate limit's ceiling: 190 calls per 10 s


def _resource(crm: str, running, parallel: int):
    if crm == "pipedrive":
        return PipedriveResource(api_token=pipedrive.API_TOKEN, base_url=running.base_url,
                                 ca_bundle=str(running.tls.ca_bundle), parallel_writes=parallel)
    return resources(running)[crm].model_copy(update={"parallel_batches": parallel})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crm", choices=sorted(NAME), default="pipedrive")
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--parallel", type=int, nargs="+", default=[1, 4, 8])
    args = parser.parse_args()
    running = start_sandbox()
    if args.crm == "hubspot":  # start_sandbox lifts HubSpot's limits for the other benches
        running.ctx.crm_settings("hubspot").pop("burst_limit", None)
    running.ctx.faults.add(FaultRule(crm=args.crm, kind="latency", latency_ms=args.latency_ms))
    crm, n = args.crm, args.records
    print(f"{crm}: {n:,} creates, then {n:,} updates; every call answered after {args.latency_ms} ms")
    print(f"{'parallel':>8}  {'phase':<7}{'calls':>7}{'seconds':>9}{'records/s':>11}{'peak at once':>14}"
          f"{'429s':>6}{'ratio':>7}{'of floor':>10}")
    baseline: dict[str, float] = {}
    try:
        for run, parallel in enumerate(args.parallel):
            client = _resource(crm, running, parallel).client()
            ids = [f"bench-{run}-{i}" for i in range(n)]
            batch = pd.DataFrame({"enginy_id": ids, "action": "create", "crm_id": None,
                                  "fields": [{NAME[crm]: f"Person {run} {i}"} for i in range(n)], "owner_id": None,
                                  "company_crm_id": None})
            ledger = empty_ledger()
            for phase in ("create", "update"):
                if phase == "update":
                    crm_ids = dict(zip(ledger["enginy_id"], ledger["crm_id"]))
                    batch = batch.assign(action="update", crm_id=[crm_ids[i] for i in ids],
                                         fields=[{NAME[crm]: f"Renamed {i}"} for i in range(n)])
                running.ctx.stats.reset()
                started = time.perf_counter()
                outcome = run_push(lambda w: client.push("contacts", w), "contacts", batch, ledger,
                                   lambda saved: None, chunk=CHUNK[crm])
                seconds = time.perf_counter() - started
                ledger = outcome.ledger
                assert outcome.counts == {"created" if phase == "create" else "updated": n}, outcome.counts
                rate = n / seconds
                baseline.setdefault(phase, rate)
                stats = running.ctx.stats
                throttled = stats.statuses.get((crm, 429), 0)
                floor = (f"{seconds / (math.ceil(n / 100) / CALLS_PER_SECOND[crm]):>9.2f}x"
                         if crm in CALLS_PER_SECOND else f"{'':>10}")
                print(f"{parallel:>8}  {phase:<7}{stats.total_calls(crm):>7,}{seconds:>9.1f}{rate:>11,.1f}"
                      f"{stats.peak_in_flight[crm]:>14}{throttled:>6}{rate / baseline[phase]:>7.2f}{floor}")
    finally:
        running.stop()


if __name__ == "__main__":
    main()
