"""The demo's whole pipeline at growing sizes: per step, wall time, time waiting on the CRM and
the pipeline's own compute; each size's peak RSS; and how each step grows from one size to the next.

Each size runs `crm-pipelines demo --regenerate` (generated data, the sandbox CRM in a process of
its own, every asset in one run, embedded DuckDB and SQLite) in a process of its own in a fresh
directory; the sandbox records the wall-clock span of every call it answers, and a step's CRM time
is the union of the spans inside the step. Memory is sampled from /proc four times a second: the
pipeline's (the run's process and what it starts, such as dbt) per step, and the sandbox's apart.
The baseline is the smallest size: a step's growth ratio is its wall time divided by the smallest
size's, against the growth of the data (linear: the ratio of the sizes).
After each full run, --changes Enginy contacts (1,000 by default) get a new job title and the run
the enginy_change_sensor then requests is timed: matching, batches and push for just those.

    .venv/bin/python -m bench.bench_pipeline --contacts 10000 100000
    .venv/bin/python -m bench.bench_pipeline --contacts 10000 100000 --crm hubspot
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from bench.machine import reference_seconds
from crm_pipelines.crms.hubspot.emulator.limits import DEFAULTS as HUBSPOT_LIMITS

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {"salesforce": None, "hubspot": "crm_pipelines/crms/hubspot/example.yaml",
           "dynamics": "crm_pipelines/crms/dynamics/example.yaml"}


def _inside(spans: list[tuple[float, float, int]], start: float, end: float) -> float:
    """Seconds of [start, end] covered by at least one span (calls can overlap)."""
    clipped = sorted((max(s, start), min(e, end)) for s, e, _ in spans if e > start and s < end)
    covered, reach = 0.0, start
    for s, e in clipped:
        if e > reach:
            covered += e - max(s, reach)
            reach = e
    return covered


class MemorySampler:
    """Every quarter second, the resident memory of the pipeline (this process and what it starts,
    such as dbt) and of the sandbox CRM's process, from /proc: each step's peak, and the run's."""

    PAGE = os.sysconf("SC_PAGE_SIZE")

    def __init__(self, sandbox_pid: int, every: float = 0.25) -> None:
        self.sandbox_pid, self.every = sandbox_pid, every
        self.samples: list[tuple[float, int, int]] = []  # (time, pipeline bytes, sandbox bytes)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @classmethod
    def _rss(cls, pid: int) -> int:
        try:
            return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * cls.PAGE
        except (OSError, IndexError):
            return 0  # it ended between the listing and the read

    @classmethod
    def _tree(cls, pid: int, leave_out: int) -> int:
        total = cls._rss(pid)
        for task in Path(f"/proc/{pid}/task").glob("*/children"):
            try:
                children = task.read_text().split()
            except OSError:
                continue
            total += sum(cls._tree(int(c), leave_out) for c in children if int(c) != leave_out)
        return total

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append((time.time(), self._tree(os.getpid(), self.sandbox_pid), self._rss(self.sandbox_pid)))

    def __enter__(self) -> "MemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join()

    def peak(self, start: float = 0.0, end: float = float("inf"), which: int = 1) -> float:
        """Peak MB between start and end: which=1 the pipeline, 2 the sandbox."""
        return max((s[which] for s in self.samples if start <= s[0] <= end), default=0) / 2**20


def _steps(run_id: str, spans: list[tuple[float, float, int]], memory: MemorySampler) -> dict[str, dict[str, float]]:
    """Each step of the run: its wall time, the part of it spent waiting on the CRM, the calls the
    CRM admitted (not answered 429) and the pipeline's peak memory while it ran."""
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        stats = instance.get_run_step_stats(run_id)
    return {s.step_key: {"wall": s.end_time - s.start_time, "crm": _inside(spans, s.start_time, s.end_time),
                         "calls": sum(1 for started, _, status in spans
                                      if s.start_time <= started <= s.end_time and status != 429),
                         "rss_mb": memory.peak(s.start_time, s.end_time)}
            for s in stats if s.start_time and s.end_time}


def _changed_contacts(how_many: int) -> None:
    """``how_many`` Enginy contacts get a new job title, as people edit them in Enginy."""
    import sqlalchemy as sa

    from crm_pipelines.enginy.database import make_engine
    from crm_pipelines.resources.enginy import EnginyDatabase

    engine = make_engine(EnginyDatabase().url)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    with engine.begin() as conn:
        ids = [row[0] for row in conn.execute(sa.text("SELECT id FROM contacts ORDER BY id LIMIT :n"), {"n": how_many})]
        conn.execute(sa.text("UPDATE contacts SET job_title = 'Head of Partnerships', updated_at = :now "
                             "WHERE id = :id"), [{"now": now, "id": i} for i in ids])
    engine.dispose()


def _incremental_run(changes: int):
    """What the enginy_change_sensor requests after ``changes`` Enginy contacts changed, run as
    enginy_sync_and_push (the job it requests with automation.automatic_export): matching and the
    batches for just those records, then the push."""
    import dagster as dg

    from crm_pipelines.definitions import defs
    from crm_pipelines.jobs import ENGINY_SYNC_AND_PUSH

    definitions = defs()
    repository = definitions.get_repository_def()
    sensor = repository.get_sensor_def("enginy_change_sensor")
    with dg.DagsterInstance.get() as instance:
        def tick(cursor: str | None):
            with dg.build_sensor_context(instance=instance, cursor=cursor, repository_def=repository,
                                         resources=repository.get_top_level_resources()) as context:
                return sensor.evaluate_tick(context)

        cursor = tick(None).cursor  # the first tick only sets the cursor past everything synced
        _changed_contacts(changes)
        [request] = tick(cursor).run_requests
        return definitions.resolve_job_def(ENGINY_SYNC_AND_PUSH).execute_in_process(
            instance=instance, run_config=request.run_config, tags=request.tags, raise_on_error=False)


def one_size(contacts: int, changes: int, out: Path) -> None:
    """In the current directory: the demo's run at this size, then the incremental run after
    ``changes`` Enginy contacts changed; their figures written to ``out``."""
    from crm_pipelines.commands.demo import demo_sandbox, materialize_everything

    os.environ["DAGSTER_HOME"] = str(Path(".dagster_home").resolve())
    Path(".dagster_home").mkdir(exist_ok=True)
    with demo_sandbox(contacts, seed=42, regenerate=True, record_spans=True) as (_, sandbox), \
            MemorySampler(sandbox.process.pid) as memory:
        started = time.time()
        result = materialize_everything()
        full_end = time.time()
        incremental = _incremental_run(changes)
        incremental_wall = time.time() - full_end
        spans = [(s["started"], s["ended"], s["status"]) for s in sandbox.stats()["spans"]]
    figures = {"success": result.success, "peak_rss_mb": memory.peak(started, full_end),
               "sandbox_peak_rss_mb": memory.peak(which=2), "steps": _steps(result.run_id, spans, memory),
               "incremental": {"success": incremental.success, "wall": incremental_wall,
                               "steps": _steps(incremental.run_id, spans, memory)}}
    out.write_text(json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--crm", choices=sorted(CONFIGS), default="salesforce")
    parser.add_argument("--changes", type=int, default=1_000,
                        help="Enginy contacts changed before the incremental run (default 1,000)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one_size(args.one, args.changes, args.out)
        return
    sizes = sorted(args.contacts)
    env = dict(os.environ)
    if CONFIGS[args.crm]:
        env["CRM_PIPELINES_CONFIG"] = str(REPO / CONFIGS[args.crm])
    for name in ("ENGINY_DATABASE_URL", "CRM_PIPELINES_WAREHOUSE_URL"):
        env.pop(name, None)  # the embedded defaults, inside each size's own directory
    speed_before = reference_seconds()
    runs = {}
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix=f"bench-pipeline-{n}-") as directory:
            out = Path(directory) / "figures.json"
            log = Path(directory) / "run.log"
            with log.open("w") as sink:
                done = subprocess.run([sys.executable, "-m", "bench.bench_pipeline", "--one", str(n),
                                       "--changes", str(args.changes), "--out", str(out)],
                                      cwd=directory, env={**env, "PYTHONPATH": str(REPO)}, stdout=sink,
                                      stderr=subprocess.STDOUT)
            if done.returncode != 0:
                sys.exit(f"the run at {n:,} contacts failed:\n" + "".join(log.read_text().splitlines(True)[-40:]))
            runs[n] = json.loads(out.read_text())
    speed_after = reference_seconds()
    smallest, largest = sizes[0], sizes[-1]
    print(f"{args.crm}: the demo's pipeline at {', '.join(f'{n:,}' for n in sizes)} Enginy contacts; the machine's "
          f"reference workload (bench/machine.py) {speed_before:.2f} s before the runs, {speed_after:.2f} s after")
    print(f"{'step':<40}" + "".join(f"{f'wall {n:,}':>16}{'CRM':>8}{'RSS MB':>8}" for n in sizes)
          + f"{'growth':>9}  (data grew {largest / smallest:g}x)")
    keys = sorted(runs[largest]["steps"], key=lambda k: -runs[largest]["steps"][k]["wall"])
    for key in keys:
        cells = "".join(f"{runs[n]['steps'].get(key, {}).get('wall', 0):>15.1f}s"
                        f"{runs[n]['steps'].get(key, {}).get('crm', 0):>7.1f}s"
                        f"{runs[n]['steps'].get(key, {}).get('rss_mb', 0):>8,.0f}" for n in sizes)
        base = runs[smallest]["steps"].get(key, {}).get("wall") or 0
        growth = runs[largest]["steps"][key]["wall"] / base if base > 0.05 else float("nan")
        print(f"{key:<40}{cells}{growth:>8.1f}x")
    for n in sizes:
        steps = runs[n]["steps"].values()
        wall, crm = sum(s["wall"] for s in steps), sum(s["crm"] for s in steps)
        print(f"{n:>9,} contacts: steps {wall:,.0f} s, of which waiting on the CRM {crm:,.0f} s and the pipeline's "
              f"own {wall - crm:,.0f} s; the pipeline's peak RSS {runs[n]['peak_rss_mb']:,.0f} MB (the sandbox "
              f"CRM's, in its own process, {runs[n]['sandbox_peak_rss_mb']:,.0f} MB); "
              f"{'SUCCESS' if runs[n]['success'] else 'FAILURE'}")
    if args.crm == "hubspot":
        # The floor HubSpot's burst limit sets: the calls a write step made, at the limit's pace.
        per_second = HUBSPOT_LIMITS["burst_limit"] / (HUBSPOT_LIMITS["burst_window_ms"] / 1000)
        for n in sizes:
            for key in ("crm_push_results", "crm_activity_push"):
                step = runs[n]["steps"].get(key)
                if step and step.get("calls"):
                    floor = step["calls"] / per_second
                    print(f"{n:>9,} contacts: {key} made {step['calls']:,} calls; at {per_second:g} calls a second "
                          f"the floor is {floor:,.1f} s; it took {step['wall']:,.1f} s ({step['wall'] / floor:.2f}x)")
    for n in sizes:
        incremental = runs[n]["incremental"]
        steps = incremental["steps"]
        crm = sum(s["crm"] for s in steps.values())
        slowest = ", ".join(f"{k} {v['wall']:.1f}s" for k, v in sorted(steps.items(), key=lambda kv: -kv[1]["wall"])[:4])
        print(f"{n:>9,} contacts, then {args.changes:,} changed in Enginy: the incremental run (enginy_sync_and_push) "
              f"{incremental['wall']:,.1f} s wall, of which waiting on the CRM {crm:,.1f} s; slowest steps: {slowest}; "
              f"{'SUCCESS' if incremental['success'] else 'FAILURE'}")


if __name__ == "__main__":
    main()
