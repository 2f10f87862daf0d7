"""Push throughput of a CRM that writes one record a call (Pipedrive), with calls one after
another against ``parallel_writes`` calls at once.

The sandbox answers every call after ``--latency-ms`` (a CRM across the network answers in
100–300 ms; on loopback it answers at once, and a bench there would measure only our CPU). The
baseline is the same push with one call at a time, in the same process. Each create is two calls
(the look-up by Enginy id, then the create); each update one.

    .venv/bin/python -m bench.bench_parallel_writes --records 400 --latency-ms 100
"""

import argparse
import time

import pandas as pd

from bench.sandbox_crms import start_sandbox
from crm_pipelines.crms.pipedrive import emulator
from crm_pipelines.crms.pipedrive.client import PipedriveResource
from crm_pipelines.export.ledger import empty_ledger
from crm_pipelines.export.push import run_push
from crm_pipelines.sandbox.faults import FaultRule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=400)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--parallel", type=int, nargs="+", default=[1, 4, 8])
    args = parser.parse_args()
    running = start_sandbox()
    running.ctx.faults.add(FaultRule(crm="pipedrive", kind="latency", latency_ms=args.latency_ms))
    n = args.records
    print(f"Pipedrive: {n:,} creates, then {n:,} updates; every call answered after {args.latency_ms} ms")
    print(f"{'parallel':>8}  {'phase':<7}{'records/s':>10}{'peak at once':>14}{'ratio':>7}")
    baseline: dict[str, float] = {}
    try:
        for run, parallel in enumerate(args.parallel):
            client = PipedriveResource(api_token=emulator.API_TOKEN, base_url=running.base_url,
                                       ca_bundle=str(running.tls.ca_bundle), parallel_writes=parallel).client()
            ids = [f"bench-{run}-{i}" for i in range(n)]
            batch = pd.DataFrame({"enginy_id": ids, "action": "create", "crm_id": None,
                                  "fields": [{"name": f"Person {run} {i}"} for i in range(n)], "owner_id": None,
                                  "company_crm_id": None})
            ledger = empty_ledger()
            for phase in ("create", "update"):
                if phase == "update":
                    crm_ids = dict(zip(ledger["enginy_id"], ledger["crm_id"]))
                    batch = batch.assign(action="update", crm_id=[crm_ids[i] for i in ids],
                                         fields=[{"name": f"Renamed {i}"} for i in range(n)])
                running.ctx.stats.reset()
                started = time.perf_counter()
                outcome = run_push(lambda w: client.push("contacts", w), "contacts", batch, ledger,
                                   lambda saved: None, chunk=100)
                rate = n / (time.perf_counter() - started)
                ledger = outcome.ledger
                assert outcome.counts == {"created" if phase == "create" else "updated": n}, outcome.counts
                baseline.setdefault(phase, rate)
                print(f"{parallel:>8}  {phase:<7}{rate:>10,.1f}{running.ctx.stats.peak_in_flight['pipedrive']:>14}"
                      f"{rate / baseline[phase]:>7.2f}")
    finally:
        running.stop()


if __name__ == "__main__":
    main()
