"""How fast the machine is today: a fixed workload of the kinds a pipeline run spends its own time
on — Python objects sorted and dumped as JSON, a pandas and a DuckDB aggregate — timed best of
three. The 2-core development machine runs the same code 2–3x slower on some days than on others
(it is shared); a benchmark prints this beside its figures so that runs of different days can be
compared through it.

    .venv/bin/python -m bench.machine
"""

from __future__ import annotations

import json
import random
import time

import duckdb
import numpy as np
import pandas as pd


def _workload() -> float:
    started = time.perf_counter()
    rng = random.Random(7)
    people = [{"id": i, "name": f"person {rng.random():.9f}"} for i in range(300_000)]
    people.sort(key=lambda person: person["name"])
    json.dumps(people[:100_000])
    values = np.random.default_rng(7).random(5_000_000)
    frame = pd.DataFrame({"key": np.arange(len(values)) % 1_000, "value": values})
    frame.groupby("key")["value"].sum()
    with duckdb.connect() as conn:
        conn.register("frame", frame)
        conn.sql("SELECT key, sum(value), count(DISTINCT value) FROM frame GROUP BY key").fetchall()
    return time.perf_counter() - started


def reference_seconds(repeats: int = 3) -> float:
    """The workload's best time of ``repeats`` runs, in seconds."""
    return min(_workload() for _ in range(repeats))


if __name__ == "__main__":
    print(f"the reference workload took {reference_seconds():.2f} s (best of three)")
