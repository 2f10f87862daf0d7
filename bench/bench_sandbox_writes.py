"""The sandbox's Salesforce write path as the org grows: requests of 200 updates (the REST
collections a push sends) against an object of 10,000 records, the baseline, and of --records.

A real org answers an update in the same time whatever it holds; the sandbox checks unique fields
(Enginy_Id__c) and duplicate rules through the store's indexes, which every write keeps current,
so only the first request after start builds them. The ratio of the later requests' time to the
baseline's is the figure: near 1 when nothing scans the object per request.

    .venv/bin/python -m bench.bench_sandbox_writes --records 1000000
"""

import argparse
import time

from crm_pipelines.crms.salesforce.emulator.schema import CRM, make_id
from crm_pipelines.crms.salesforce.emulator.writes import Batch
from crm_pipelines.sandbox.app import SandboxContext

REQUESTS, PER_REQUEST = 5, 200


def _timed(records: int) -> tuple[float, float]:
    """(the first request, the later ones) in seconds, against ``records`` contacts."""
    ctx = SandboxContext()
    ids = [make_id("Contact") for _ in range(records)]
    for i, record_id in enumerate(ids):
        ctx.store.create(CRM, "Contact", record_id, {"LastName": f"Person{i}", "Email": f"p{i}@bench.example",
                                                     "Enginy_Id__c": f"e{i}"})
    times = []
    for r in range(REQUESTS):
        started = time.perf_counter()
        request = Batch(ctx, "Contact", "v62.0")
        for record_id in ids[r * PER_REQUEST:(r + 1) * PER_REQUEST]:
            request.plan_update(record_id, {"Title": "Head of Partnerships", "Enginy_Id__c": f"x-{record_id}"})
        request.commit()
        times.append(time.perf_counter() - started)
    return times[0], sum(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    base_first, base_rest = _timed(10_000)
    first, rest = _timed(args.records)
    print(f"{REQUESTS - 1} requests of {PER_REQUEST} updates after the first: 10,000 records {base_rest:.3f} s, "
          f"{args.records:,} records {rest:.3f} s, ratio {rest / base_rest:.2f}x")
    print(f"the first request (builds the indexes): 10,000 records {base_first:.3f} s, "
          f"{args.records:,} records {first:.3f} s")


if __name__ == "__main__":
    main()
