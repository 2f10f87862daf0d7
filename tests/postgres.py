"""Helpers for tests on the real PostgreSQL at 127.0.0.1:5432 (scripts/ensure_postgres.sh starts it)."""

import uuid
from contextlib import contextmanager
from typing import Iterator

import sqlalchemy as sa

SERVER = "postgresql+psycopg2://postgres@127.0.0.1:5432"
TEST_DB_URL = f"{SERVER}/test"


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
