"""How long the campaign rollups (dbt_project/) take on DuckDB, against a baseline measured in
the same run.

The data: N contacts, 40% of them in a second campaign, the generator's seven sequences (the
13-email one included), most sequences run to the end, with opens, clicks, acceptances and
replies — about ten events per contact, written straight into a DuckDB warehouse as the
enginy_* tables. The rollups are built by the dbt CLI exactly as the Dagster asset runs it.

The baseline is the floor for this machine at this moment: one DuckDB query that reads every
event once and aggregates it per contact (a count, and the event types in time order as one string,
the way the rollups' fastest list is built), written to a table.

    .venv/bin/python bench/bench_rollups.py --contacts 1000000
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from crm_pipelines.assets.dbt import DBT_PROJECT_DIR
from crm_pipelines.enginy.generator import _SEQUENCES
from crm_pipelines.resources.dbt import dbt_profile_environment
from crm_pipelines.resources.warehouse import Warehouse

CHANNEL = {"email": "email", "linkedin_message": "linkedin", "linkedin_connection_request": "linkedin",
           "linkedin_profile_visit": "linkedin", "call": "call"}


def make_data(path: Path, contacts: int) -> dict[str, int]:
    campaigns = max(len(_SEQUENCES), contacts // 2000)
    sequences = ", ".join(f"({s}, {p}, '{kind}', '{CHANNEL[kind]}')"
                          for s, steps in enumerate(_SEQUENCES) for p, kind in enumerate(steps, start=1))
    conn = duckdb.connect(str(path))
    conn.execute(f"""
        create table enginy_identities as
            select 'idt' || i as id, 'Sender ' || i as name, timestamptz '2026-01-01 00:00:00+00' as created_at
            from range(10) t(i);
        create table enginy_campaigns as
            select 'cmp' || i as id, 'Campaign ' || i as name, 'idt' || (i % 10) as identity_id,
                   timestamptz '2026-01-01 00:00:00+00' as created_at
            from range({campaigns}) t(i);
        create temp table sequences(seq int, position int, step_type varchar, channel varchar);
        insert into sequences values {sequences};
        create table enginy_campaign_steps as
            select 'stp' || c.i || '_' || s.position as id, 'cmp' || c.i as campaign_id, s.position, s.step_type, s.channel
            from range({campaigns}) c(i) join sequences s on s.seq = c.i % {len(_SEQUENCES)};
        create table enginy_contacts as
            select 'ct' || i as id, 'First' as first_name, timestamptz '2026-01-01 00:00:00+00' as created_at,
                   timestamptz '2026-01-01 00:00:00+00' as updated_at
            from range({contacts}) t(i);
        create table enginy_campaign_contacts as
            select 'cmp' || (i % {campaigns}) as campaign_id, 'ct' || i as contact_id,
                   timestamptz '2026-01-01 00:00:00+00' + i * interval 1 second as added_at
            from range({contacts}) t(i)
            union all
            select 'cmp' || ((i + 1) % {campaigns}), 'ct' || i,
                   timestamptz '2026-02-15 00:00:00+00' + i * interval 1 second
            from range({contacts}) t(i) where i % 10 < 4;
        create temp table executed as
            select m.contact_id, m.campaign_id, m.added_at, s.id as step_id, s.position, s.step_type, s.channel,
                   hash(m.contact_id, s.id) % 1000 as dice, c.identity_id
            from enginy_campaign_contacts m
            join enginy_campaign_steps s on s.campaign_id = m.campaign_id
            join enginy_campaigns c on c.id = m.campaign_id
            where hash(m.contact_id, m.campaign_id) % 10 < 9
               or s.position <= 1 + hash(m.contact_id, m.campaign_id) % 4;
        create table enginy_campaign_events as
            select 'evt' || row_number() over () as id, campaign_id, step_id, contact_id, identity_id, channel,
                   event_type, occurred_at, null::varchar as subject, null::varchar as body
            from (
                select *, 'sent' as event_type, added_at + position * interval 2 day as occurred_at from executed
                union all
                select *, 'opened', added_at + position * interval 2 day + interval 3 hour
                from executed where step_type = 'email' and dice < 600
                union all
                select *, 'clicked', added_at + position * interval 2 day + interval 4 hour
                from executed where step_type = 'email' and dice < 150
                union all
                select *, 'accepted', added_at + position * interval 2 day + interval 5 hour
                from executed where step_type = 'linkedin_connection_request' and dice < 400
                union all
                select *, 'replied', added_at + position * interval 2 day + interval 6 hour
                from executed where step_type in ('email', 'linkedin_message') and dice >= 970
            );
        create table enginy_conversation_tags as
            select * from (values ('tag0', 'Contacted', 'NEUTRAL'), ('tag1', 'Positive', 'POSITIVE'),
                                  ('tag2', 'Not Interested', 'NEGATIVE')) t(id, name, category);
        create table enginy_contact_conversation_tags as
            select 'ct' || i as contact_id, 'tag' || (i % 3) as tag_id,
                   timestamptz '2026-03-01 00:00:00+00' as tagged_at
            from range({contacts}) t(i) where i % 5 = 0;
    """)
    counts = {t: conn.execute(f"select count(*) from {t}").fetchone()[0]
              for t in ("enginy_contacts", "enginy_campaign_contacts", "enginy_campaign_events")}
    conn.close()
    return counts


def baseline(path: Path) -> float:
    conn = duckdb.connect(str(path))
    started = time.perf_counter()
    conn.execute("""
        create or replace table baseline as
        select contact_id, count(*) as events,
               array_to_string(list(event_type order by occurred_at, id), ', ') as types
        from enginy_campaign_events group by contact_id
    """)
    seconds = time.perf_counter() - started
    conn.execute("drop table baseline")
    conn.close()
    return seconds


def dbt(command: list[str], path: Path, target_dir: Path) -> tuple[float, dict[str, float]]:
    """Run the dbt CLI on the warehouse as the Dagster asset does; seconds and each node's time."""
    env = {**os.environ, **dbt_profile_environment(Warehouse(url=f"duckdb:///{path}")),
           "DBT_TARGET_PATH": str(target_dir), "DBT_LOG_PATH": str(target_dir), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    started = time.perf_counter()
    subprocess.run([str(Path(sys.executable).with_name("dbt")), *command, "--quiet"], cwd=DBT_PROJECT_DIR, env=env,
                   check=True)
    seconds = time.perf_counter() - started
    results = json.loads((target_dir / "run_results.json").read_text())["results"]
    return seconds, {r["unique_id"].split(".")[2]: r["execution_time"] for r in results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        path, target = Path(scratch) / "warehouse.duckdb", Path(scratch) / "target"
        started = time.perf_counter()
        counts = make_data(path, args.contacts)
        print(f"data: {counts['enginy_contacts']:,} contacts, {counts['enginy_campaign_contacts']:,} memberships, "
              f"{counts['enginy_campaign_events']:,} events "
              f"({counts['enginy_campaign_events'] / counts['enginy_contacts']:.1f} a contact), "
              f"made in {time.perf_counter() - started:.1f} s")
        floor = baseline(path)
        first, nodes = dbt(["run"], path, target)
        again, again_nodes = dbt(["run"], path, target)
        tests, test_nodes = dbt(["test"], path, target)
        floor_after = baseline(path)
    floor = min(floor, floor_after)
    models = ("stg_enginy__campaign_events", "campaign_rollups_by_campaign", "campaign_rollups")
    print(f"dbt run, first (every model built): {first:.1f} s; "
          + ", ".join(f"{m} {nodes[m]:.1f} s" for m in models))
    print(f"dbt run, again (events staged incrementally, nothing new): {again:.1f} s; "
          + ", ".join(f"{m} {again_nodes[m]:.1f} s" for m in models))
    print(f"dbt test ({len(test_nodes)} tests): {tests:.1f} s; slowest "
          + ", ".join(f"{n} {s:.1f} s" for n, s in sorted(test_nodes.items(), key=lambda x: -x[1])[:2]))
    model_seconds = sum(nodes.values())
    print(f"baseline (one pass over the events, aggregated per contact): {floor:.1f} s; "
          f"ratio {model_seconds / floor:.1f}x (the models' own time), {first / floor:.1f}x (the dbt command)")


if __name__ == "__main__":
    main()
