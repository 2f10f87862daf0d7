"""Helpers for tests on the real PostgreSQL at 127.0.0.1:5432 (scripts/ensure_postgres.sh starts it)."""

import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import sqlalchemy as sa

SERVER = "postgresql+psycopg2://postgres@127.0.0.1:5432"
TEST_DB_URL = f"{SERVER}/test"

if TYPE_CHECKING:
    from crm_pipelines.resources.warehouse import Warehouse


@contextmanager
def fresh_schema(prefix: str = "t") -> Iterator[str]:
    """A schema of its own in database test, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(TEST_DB_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    try:
        yield name
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        engine.dispose()


@contextmanager
def warehouse_on(kind: str, directory: Path) -> Iterator["Warehouse"]:
    """An empty warehouse: a new DuckDB file in ``directory`` (kind "duckdb"), or else a new schema
    in PostgreSQL database test."""
    from crm_pipelines.resources.warehouse import Warehouse

    if kind == "duckdb":
        yield Warehouse(url=f"duckdb:///{directory / 'warehouse.duckdb'}")
        return
    with fresh_schema(kind) as schema:
        yield Warehouse(url=TEST_DB_URL, schema_name=schema)


@contextmanager
def fresh_database(prefix: str = "t") -> Iterator[str]:
    """A database of its own on the server, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(f"{SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield name
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def url_with_search_path(schema: str) -> str:
    return f"{TEST_DB_URL}?options=-csearch_path%3D{schema}"


@contextmanager
def dagster_instance_on_postgres(home, monkeypatch) -> Iterator["object"]:
    """A Dagster instance from the shipped deploy/dagster.postgres.yaml, on a database of its own."""
    import shutil
    from pathlib import Path

    import dagster as dg

    with fresh_database("dagster") as name:
        home.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(__file__).resolve().parents[1] / "deploy" / "dagster.postgres.yaml", home / "dagster.yaml")
        for key, value in {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_USERNAME": "postgres",
                           "DAGSTER_PG_PASSWORD": "", "DAGSTER_PG_DB": name}.items():
            monkeypatch.setenv(key, value)
        with dg.DagsterInstance.from_config(str(home)) as instance:
            yield instance
