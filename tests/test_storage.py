"""Storage: the Enginy source at any SQLAlchemy URL, the warehouse on DuckDB or PostgreSQL, and the
Dagster instance on PostgreSQL through dagster-postgres — all exercised for real."""

import contextlib
import json
import multiprocessing
import shutil
import time
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest
import sqlalchemy as sa

from crm_pipelines.definitions import MATERIALIZE_ALL, defs
from crm_pipelines.enginy.database import make_engine, read_table, write_tables
from crm_pipelines.enginy.generator import generate_frames
from crm_pipelines.enginy.schema import TABLES
from crm_pipelines.resources.warehouse import Keys, Warehouse, redact_url
from tests.postgres import SERVER, fresh_database, fresh_schema, url_with_search_path

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def generated():
    return generate_frames(400, seed=3)


def _same(expected: pd.DataFrame, actual: pd.DataFrame) -> None:
    expected = expected.reset_index(drop=True)
    actual = actual[list(expected.columns)].sort_values(expected.columns[0]).reset_index(drop=True)
    expected = expected.sort_values(expected.columns[0]).reset_index(drop=True)
    for column in expected.columns:
        left, right = expected[column], actual[column]
        if isinstance(left.dtype, pd.DatetimeTZDtype):
            assert (left.dt.tz_convert("UTC") == right.dt.tz_convert("UTC")).all(), column
        else:
            assert left.astype(object).where(left.notna(), None).tolist() == \
                right.astype(object).where(right.notna(), None).tolist(), column


def test_enginy_tables_round_trip_through_sqlite(tmp_path: Path, generated) -> None:
    url = f"sqlite:///{tmp_path / 'enginy.sqlite'}"
    counts = write_tables(url, generated.enginy)
    engine = make_engine(url)
    for table in TABLES:
        assert counts[table.name] == len(generated.enginy[table.name])
        _same(generated.enginy[table.name], read_table(engine, table.name))


@pytest.mark.postgres
def test_enginy_tables_round_trip_through_postgresql(generated) -> None:
    with fresh_schema("enginy") as schema:
        url = url_with_search_path(schema)
        write_tables(url, generated.enginy)
        engine = make_engine(url)
        for table in TABLES:
            _same(generated.enginy[table.name], read_table(engine, table.name))
        engine.dispose()


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_reading_only_rows_updated_since_a_time(tmp_path: Path, generated, database) -> None:
    """The Enginy change sensor reads just what changed: the time is written into the query as
    each database stores it (the rows are read as Arrow, by a driver SQLAlchemy does not bind for)."""
    with contextlib.ExitStack() as stack:
        if database == "sqlite":
            url = f"sqlite:///{tmp_path / 'enginy.sqlite'}"
        else:
            url = url_with_search_path(stack.enter_context(fresh_schema("enginy")))
        write_tables(url, generated.enginy)
        contacts = generated.enginy["contacts"]
        cutoff = contacts["updated_at"].quantile(0.9)
        engine = make_engine(url)
        changed = read_table(engine, "contacts", updated_since=cutoff.to_pydatetime())
        engine.dispose()
    assert sorted(changed["id"]) == sorted(contacts.loc[contacts.updated_at > cutoff, "id"])
    assert 0 < len(changed) < len(contacts)


def test_the_duckdb_warehouse_replaces_a_table_and_keeps_nested_fields_as_json(tmp_path: Path) -> None:
    warehouse = Warehouse(url=f"duckdb:///{tmp_path / 'wh.duckdb'}")
    warehouse.write_table("crm_contacts", pd.DataFrame({"crm_id": ["a", "b"], "raw": [{"Title": "CEO"}, {}]}))
    warehouse.write_table("crm_contacts", pd.DataFrame({"crm_id": ["c"], "raw": [{"Title": "CTO"}]}))
    back = warehouse.read_table("crm_contacts")
    assert back["crm_id"].tolist() == ["c"]
    assert [json.loads(text) for text in back["raw"]] == [{"Title": "CTO"}]  # JSON text any tool can read


@pytest.mark.parametrize("kind", ["duckdb", "postgresql"])
def test_a_step_can_read_only_the_columns_it_needs(tmp_path: Path, kind: str) -> None:
    frame = pd.DataFrame({"enginy_id": ["1", "2"], "action": ["create", "skip"], "diff": [[{"field": "x"}], []]})
    with fresh_schema("cols") as schema:
        warehouse = (Warehouse(url=f"duckdb:///{tmp_path / 'wh.duckdb'}") if kind == "duckdb"
                     else Warehouse(url=f"{SERVER}/test", schema_name=schema))
        warehouse.write_table("contact_export_batch", frame)
        back = warehouse.read_table("contact_export_batch", ("action", "enginy_id"))
        assert back.columns.tolist() == ["action", "enginy_id"]
        assert back.sort_values("enginy_id")["action"].tolist() == ["create", "skip"]
        with pytest.raises(ValueError, match="not a valid warehouse identifier"):
            warehouse.read_table("contact_export_batch", ("action; DROP TABLE x",))


@pytest.mark.parametrize("kind", ["duckdb", "postgresql"])
def test_a_run_that_changed_some_records_replaces_only_their_rows(tmp_path: Path, kind: str) -> None:
    """What an incremental run writes: the changed records' rows in place of theirs, new records
    added, every other row as it was — whatever types pandas gives the few rows' columns."""
    stamp = pd.Timestamp("2026-01-01", tz="UTC")
    table = pd.DataFrame({"id": [1, 2, 3], "job_title": ["CEO", "CTO", None], "score": [1, 2, 3],
                          "updated_at": [stamp] * 3, "raw": [{"a": 1}, {}, {"b": [2]}]})
    changed = pd.DataFrame({"id": [2, 4], "job_title": [None, None], "score": [20.0, 40.0],
                            "updated_at": [stamp + pd.Timedelta(days=1)] * 2, "raw": [{"c": 3}, {}]})
    with fresh_schema("replace") as schema:
        warehouse = (Warehouse(url=f"duckdb:///{tmp_path / 'wh.duckdb'}") if kind == "duckdb"
                     else Warehouse(url=f"{SERVER}/test", schema_name=schema))
        warehouse.write_table("enginy_contacts", table)
        assert warehouse.replace_rows("enginy_contacts", changed, "id") == 4
        back = warehouse.read_table("enginy_contacts").sort_values("id").reset_index(drop=True)
        assert back["id"].tolist() == [1, 2, 3, 4]
        assert back["score"].tolist() == [1, 20, 3, 40]
        assert back.loc[0, "job_title"] == "CEO" and pd.isna(back.loc[1, "job_title"])
        assert [json.loads(r) for r in back["raw"]] == [{"a": 1}, {"c": 3}, {"b": [2]}, {}]
        assert back.loc[1, "updated_at"] == stamp + pd.Timedelta(days=1)

        # A column the table lacks: written whole, the other rows kept.
        wider = changed.head(1).assign(score=21, seniority=["senior"])
        assert warehouse.replace_rows("enginy_contacts", wider, "id") == 4
        back = warehouse.read_table("enginy_contacts").set_index("id")
        assert back.loc[2, "seniority"] == "senior" and back.loc[2, "score"] == 21 and back.loc[1, "job_title"] == "CEO"
        assert sorted(warehouse.rows_with_keys("enginy_contacts", "id", ["3", "4"])["id"]) == [3, 4]  # integer ids, text keys


@pytest.mark.parametrize("kind", ["duckdb", "postgresql"])
def test_crm_records_are_found_by_the_enginy_id_among_their_raw_fields(tmp_path: Path, kind: str) -> None:
    """How a batch of a few changed records finds the CRM records an earlier push created for them,
    without reading the snapshot: by the Enginy id field inside each record's raw JSON."""
    snapshot = pd.DataFrame({"crm_id": ["a", "b", "c", "d", "e"],
                             "raw": [{"Enginy_Id__c": "e1", "Title": "CEO"}, {"Enginy_Id__c": "e2"},
                                     {"Enginy_Id__c": None}, {"Title": "e1"}, {"Enginy Id": "e3", "a/b~c": "e4"}]})
    with fresh_schema("json_key") as schema:
        warehouse = (Warehouse(url=f"duckdb:///{tmp_path / 'wh.duckdb'}") if kind == "duckdb"
                     else Warehouse(url=f"{SERVER}/test", schema_name=schema))
        warehouse.write_table("crm_contacts", snapshot)
        found = warehouse.rows_with_keys("crm_contacts", "raw", ["e1", "e9"], json_field="Enginy_Id__c")
        assert found["crm_id"].tolist() == ["a"]
        assert json.loads(found["raw"].iloc[0]) == {"Enginy_Id__c": "e1", "Title": "CEO"}
        # Any name a CRM gives its field (TribeCRM's is a label with a space); a name is never SQL.
        found = warehouse.rows_with_keys("crm_contacts", "raw", ["e3", "e1"], json_field="Enginy Id")
        assert found["crm_id"].tolist() == ["e"]
        assert warehouse.rows_with_keys("crm_contacts", "raw", ["e4"], json_field="a/b~c")["crm_id"].tolist() == ["e"]
        assert warehouse.rows_with_keys("crm_contacts", "raw", ["e1"], json_field="x' OR '1'='1").empty
        # The records a batch can touch: matched by id, or holding an Enginy id — each once, in one read.
        either = warehouse.rows_with_any_keys("crm_contacts", Keys("crm_id", ["a", "d"]),
                                              Keys("raw", ["e1", "e2"], json_field="Enginy_Id__c"))
        assert sorted(either["crm_id"]) == ["a", "b", "d"]


def _hold_lock(path: str, seconds: float, ready) -> None:
    conn = duckdb.connect(path)
    conn.execute("CREATE TABLE IF NOT EXISTS held (x INT)")
    ready.set()
    time.sleep(seconds)
    conn.close()


def test_a_writer_waits_for_a_duckdb_file_another_step_holds(tmp_path: Path) -> None:
    """Dagster runs steps in separate processes and DuckDB admits one writer per file: a step
    that finds the file locked must wait, not fail the run."""
    path = tmp_path / "wh.duckdb"
    ready = multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold_lock, args=(str(path), 1.5, ready))
    holder.start()
    assert ready.wait(20)
    started = time.monotonic()
    Warehouse(url=f"duckdb:///{path}").write_table("t", pd.DataFrame({"x": [1]}))
    holder.join()
    assert time.monotonic() - started > 0.5, "the write should have waited for the lock"
    assert Warehouse(url=f"duckdb:///{path}").read_table("t")["x"].tolist() == [1]


def test_urls_are_shown_without_their_password() -> None:
    assert redact_url("postgresql://etl:s3cret@db:5432/wh") == "postgresql://etl:***@db:5432/wh"
    assert "s3cret" not in Warehouse(url="postgresql://etl:s3cret@db:5432/wh").describe()


def _shipped_instance_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dagster_db: str) -> Path:
    """A DAGSTER_HOME holding the shipped deploy/dagster.postgres.yaml, its variables pointing at ``dagster_db``."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.postgres.yaml", home / "dagster.yaml")
    for name, value in {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_USERNAME": "postgres",
                        "DAGSTER_PG_PASSWORD": "", "DAGSTER_PG_DB": dagster_db}.items():
        monkeypatch.setenv(name, value)
    return home


@pytest.mark.postgres
def test_a_run_with_the_instance_and_the_warehouse_on_postgresql_reads_its_rows_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, generated) -> None:
    """The shipped deploy/dagster.postgres.yaml, the env-var bound resources and the real server."""
    with fresh_database("dagster") as dagster_db, fresh_schema("wh") as wh_schema, fresh_schema("src") as src_schema:
        home = _shipped_instance_home(tmp_path, monkeypatch, dagster_db)
        enginy_url = url_with_search_path(src_schema)
        write_tables(enginy_url, generated.enginy)
        monkeypatch.setenv("ENGINY_DATABASE_URL", enginy_url)
        monkeypatch.setenv("CRM_PIPELINES_WAREHOUSE_URL", f"{SERVER}/test")
        monkeypatch.setenv("CRM_PIPELINES_WAREHOUSE_SCHEMA", wh_schema)

        with dg.DagsterInstance.from_config(str(home)) as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            # The Enginy assets only: the CRM assets need a CRM, which this storage test does not.
            enginy_keys = [dg.AssetKey(f"enginy_{t.name}") for t in TABLES]
            result = defs().resolve_job_def(MATERIALIZE_ALL).execute_in_process(
                instance=instance, asset_selection=enginy_keys)
            assert result.success
            materialized = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
            assert materialized == {f"enginy_{t.name}" for t in TABLES}
            record = instance.get_latest_materialization_event(dg.AssetKey("enginy_contacts"))
            assert record.asset_materialization.metadata["dagster/row_count"].value == 400

        engine = sa.create_engine(f"{SERVER}/{dagster_db}")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM runs")).scalar() == 1
        engine.dispose()
        warehouse = Warehouse(url=f"{SERVER}/test", schema_name=wh_schema)
        for table in TABLES:
            _same(generated.enginy[table.name], warehouse.read_table(f"enginy_{table.name}"))


@pytest.mark.postgres
def test_the_shipped_postgres_instance_lets_one_export_run_and_one_crm_writing_step_run_at_a_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two runs pushing at once would each read the write ledger before the other recorded its
    writes: on the production instance every step that writes to the CRM shares one pool slot,
    so a second run's push waits for the first one's (the slot is claimed and held)."""
    from crm_pipelines.assets.export import CRM_WRITES_POOL

    writers = {"crm_push_results", "crm_activity_push", "restore_removed_associations"}
    repository = defs().get_repository_def()
    pools = {node.name: node.definition.pool for name in (MATERIALIZE_ALL, "undo_associations")
             for node in repository.get_job(name).graph.nodes if node.name in writers}
    assert pools == {name: CRM_WRITES_POOL for name in writers}

    with fresh_database("dagster") as dagster_db:
        home = _shipped_instance_home(tmp_path, monkeypatch, dagster_db)
        with dg.DagsterInstance.from_config(str(home)) as instance:
            storage = instance.event_log_storage
            # What a step's executor does before its first claim: the pool gets the instance's default limit.
            storage.initialize_concurrency_limit_to_default(CRM_WRITES_POOL)
            assert storage.get_concurrency_info(CRM_WRITES_POOL).slot_count == 1
            first = storage.claim_concurrency_slot(CRM_WRITES_POOL, "run-a", "crm_push_results")
            second = storage.claim_concurrency_slot(CRM_WRITES_POOL, "run-b", "crm_push_results")
            assert first.is_claimed and not second.is_claimed
            storage.free_concurrency_slots_for_run("run-a")
            assert storage.claim_concurrency_slot(CRM_WRITES_POOL, "run-b", "crm_push_results").is_claimed
            _one_export_run_at_a_time(instance)


def _one_export_run_at_a_time(instance: dg.DagsterInstance) -> None:
    """The instance's run queue holds every run that builds or pushes the export batches while
    one is in progress (a push sends the batches its own run built and gated), and lets the CRM
    snapshot syncs through."""
    from dagster._utils.tags import TagConcurrencyLimitsCounter

    from crm_pipelines.jobs import ENGINY_SYNC, ENGINY_SYNC_AND_PUSH, EXPORT_PUSH, INCREMENTAL_SYNC

    repository = defs().get_repository_def()

    def run_of(job: str) -> dg.DagsterRun:
        return dg.DagsterRun(job_name=job, tags=dict(repository.get_job(job).tags))

    limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
    queue = TagConcurrencyLimitsCounter(limits, [run_of(EXPORT_PUSH)])
    assert [queue.is_blocked(run_of(job)) for job in (EXPORT_PUSH, ENGINY_SYNC, ENGINY_SYNC_AND_PUSH,
                                                      MATERIALIZE_ALL, INCREMENTAL_SYNC)] == [
        True, True, True, True, False]


def test_the_demo_instance_lets_one_export_run_and_one_crm_writing_step_run_at_a_time(tmp_path: Path) -> None:
    """The UI started by `crm-pipelines ui` runs on the demo's SQLite instance: a push launched
    there while the sensor's runs one waits for the crm_writes slot too."""
    from crm_pipelines.assets.export import CRM_WRITES_POOL
    from crm_pipelines.commands.demo import DEMO_INSTANCE

    (tmp_path / "dagster.yaml").write_text(DEMO_INSTANCE)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        storage = instance.event_log_storage
        storage.initialize_concurrency_limit_to_default(CRM_WRITES_POOL)
        assert storage.claim_concurrency_slot(CRM_WRITES_POOL, "run-a", "crm_push_results").is_claimed
        assert not storage.claim_concurrency_slot(CRM_WRITES_POOL, "run-b", "crm_activity_push").is_claimed
        _one_export_run_at_a_time(instance)
