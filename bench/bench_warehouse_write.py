"""Writing a big table to the DuckDB warehouse: an export batch of --rows rows (its fields and diff
as JSON text, as the IO manager stores it), through Warehouse.write_table, against the same table
written with DuckDB's own choice of compression for text (the baseline, in the same process).

    .venv/bin/python -m bench.bench_warehouse_write --rows 1000000
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import orjson
import pandas as pd

from bench.bench_pipeline import MemorySampler
from crm_pipelines.resources.warehouse import Warehouse, _as_arrow

TITLES = ["Engineer", "Head of Sales", "CTO", "Marketing Manager", "Founder", "Account Executive"]


def export_batch(rows: int, seed: int = 7) -> pd.DataFrame:
    """An export batch's shape: ids, an action, the fields to write and their diff as JSON text."""
    rng = np.random.default_rng(seed)
    first, last = rng.integers(0, 5_000, rows), rng.integers(0, 20_000, rows)
    titles = rng.integers(0, len(TITLES), rows)
    fields = [orjson.dumps({"FirstName": f"First{f}", "LastName": f"Last{s}", "Title": TITLES[t],
                            "Email": f"first{f}.last{s}@co{i % 9973}.com", "Enginy_Id__c": f"en-{i}"}).decode()
              for i, (f, s, t) in enumerate(zip(first, last, titles))]
    diff = [orjson.dumps({"Title": {"from": TITLES[(t + 1) % len(TITLES)], "to": TITLES[t]}}).decode() for t in titles]
    return pd.DataFrame({
        "enginy_id": pd.array([f"en-{i}" for i in range(rows)], dtype="string"),
        "action": pd.array(np.where(rng.random(rows) < 0.6, "create", "update"), dtype="string"),
        "crm_id": pd.array([f"003{i:015d}" for i in range(rows)], dtype="string"),
        "fields": pd.array(fields, dtype="string"), "diff": pd.array(diff, dtype="string"),
        "batch_id": pd.array(["3f1c9a4e-run"] * rows, dtype="string"),
    })


NO_SANDBOX = 0  # MemorySampler samples this process alone (no /proc/0)


def _now_mb() -> float:
    """This process's resident memory now (MemorySampler's peaks are in the same MB)."""
    return MemorySampler._rss(os.getpid()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    batch = export_batch(args.rows)
    directory = Path(tempfile.mkdtemp(prefix="bench-warehouse-write-"))

    # The baseline: DuckDB's own compression, one thread (as write_table wrote before).
    path = directory / "baseline.duckdb"
    before = _now_mb()
    with MemorySampler(NO_SANDBOX, every=0.05) as memory, duckdb.connect(str(path)) as conn:
        started = time.perf_counter()
        conn.execute("SET threads = 1")
        conn.register("incoming_frame", _as_arrow(batch))
        conn.execute("CREATE TABLE contact_export_batch AS SELECT * FROM incoming_frame")
        conn.execute("CHECKPOINT")
        baseline = time.perf_counter() - started
    baseline_memory, baseline_size = memory.peak() - before, path.stat().st_size / 1e6

    warehouse = Warehouse(url=f"duckdb:///{directory / 'warehouse.duckdb'}")
    before = _now_mb()
    with MemorySampler(NO_SANDBOX, every=0.05) as memory:
        started = time.perf_counter()
        warehouse.write_table("contact_export_batch", batch)
        seconds = time.perf_counter() - started
    size = warehouse.duckdb_path.stat().st_size / 1e6
    started = time.perf_counter()
    back = warehouse.read_table("contact_export_batch")
    read = time.perf_counter() - started
    assert len(back) == args.rows and back["fields"].iloc[-1] == batch["fields"].iloc[-1]

    print(f"an export batch of {args.rows:,} rows ({batch.memory_usage(deep=True).sum() / 1e6:,.0f} MB in pandas)")
    print(f"baseline (DuckDB's own compression, one thread): {baseline:.2f} s, +{baseline_memory:,.0f} MB, "
          f"file {baseline_size:,.0f} MB")
    print(f"Warehouse.write_table: {seconds:.2f} s, +{memory.peak() - before:,.0f} MB, file {size:,.0f} MB; "
          f"read back {read:.2f} s")
    print(f"ratio {seconds / baseline:.2f}x the baseline's time, {size / baseline_size:.2f}x its file")


if __name__ == "__main__":
    main()
