"""How long `crm-pipelines generate` takes, against a baseline measured in the same run.

The baseline is the floor for this machine at this moment: numpy drawing the same number of
random values and pandas building a frame of the same shape, with no realism at all. The ratio
says what realism (variants, labels, causal events) and the database writes cost on top.

    .venv/bin/python bench/bench_generate.py --contacts 1000000
"""

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from crm_pipelines.commands.generate import write_dataset


def baseline(contacts: int) -> float:
    started = time.perf_counter()
    rng = np.random.default_rng(0)
    columns = {f"c{i}": rng.integers(0, 1_000_000, contacts).astype(str) for i in range(12)}
    pd.DataFrame(columns).to_parquet(Path(tempfile.mkdtemp()) / "baseline.parquet")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    args = parser.parse_args()
    floor = baseline(args.contacts)
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        result = write_dataset(Path(out), args.contacts, seed=42, enginy_url=None)
        total = time.perf_counter() - started
        size = sum(p.stat().st_size for p in Path(out).rglob("*") if p.is_file())
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    s = result["summary"]
    print(f"contacts: {s['enginy_contacts']:,} Enginy, {s['crm_contacts']:,} CRM; "
          f"{s['campaign_events']:,} campaign events; {size / 1e6:,.0f} MB written")
    print(f"generate: {result['generate_seconds']:.1f} s, write: {result['write_seconds']:.1f} s, "
          f"total: {total:.1f} s, peak RSS {peak_gb:.2f} GB")
    print(f"baseline (random columns of the same shape to Parquet): {floor:.1f} s; ratio {total / floor:.1f}x")


if __name__ == "__main__":
    main()
