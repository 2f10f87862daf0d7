"""dbt, pointed at the warehouse the IO manager writes.

dbt_project/profiles.yml reads its connection from environment variables; this resource sets
them from the Warehouse resource for each dbt command, so the rollups land next to the tables
the Dagster assets wrote — the same DuckDB file, or the same PostgreSQL database and schema —
whatever CRM_PIPELINES_WAREHOUSE_URL says, and a password never appears in the resource's config.
"""

import hashlib
import os
import shutil
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
from dagster_dbt import DbtCliResource, DbtProject
from dagster_dbt.compat import DBT_PYTHON_VERSION
from dagster_dbt.core.dbt_cli_invocation import DbtCliInvocation
from sqlalchemy.engine import make_url

from crm_pipelines.resources.warehouse import WAREHOUSE_SCHEMA_ENV, Warehouse

if TYPE_CHECKING:
    from packaging.version import Version

DBT_TARGET_ENV = "CRM_PIPELINES_DBT_TARGET"
# Read by dbt_project/macros/rollup_scope.sql: set to a time, the rollup models rebuild only the
# contacts changed since; unset for a full build (never inherited from the caller).
ROLLUPS_CHANGED_SINCE_ENV = "CRM_PIPELINES_ROLLUPS_CHANGED_SINCE"


def dbt_profile_environment(warehouse: Warehouse) -> dict[str, str]:
    """The variables dbt_project/profiles.yml reads, for this warehouse."""
    env = {WAREHOUSE_SCHEMA_ENV: warehouse.schema}
    if warehouse.kind == "duckdb":
        # dbt runs in the project directory: give it the file the Dagster process means.
        return {**env, DBT_TARGET_ENV: "duckdb",
                "CRM_PIPELINES_DBT_DUCKDB_PATH": str(warehouse.duckdb_path.resolve())}
    url = make_url(warehouse.sqlalchemy_url())
    return {
        **env,
        DBT_TARGET_ENV: "postgres",
        "CRM_PIPELINES_DBT_PG_HOST": url.host or str(url.query.get("host") or "localhost"),
        "CRM_PIPELINES_DBT_PG_PORT": str(url.port or 5432),
        "CRM_PIPELINES_DBT_PG_USER": url.username or "",
        "CRM_PIPELINES_DBT_PG_PASSWORD": url.password or "",
        "CRM_PIPELINES_DBT_PG_DBNAME": url.database or "",
    }


@contextmanager
def _environment(values: Mapping[str, str | None]) -> Iterator[None]:
    """The variables set (or, given None, unset) for as long as the block runs."""
    saved = {name: os.environ.get(name) for name in values}
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


PARTIAL_PARSE_FILE = "partial_parse.msgpack"
PARSES_KEPT = 8


def _parse_cache(project_dir: Path, warehouse: Warehouse) -> Path:
    """Where dbt's partial parse of the project for this warehouse is kept between runs. dbt reads
    one only when the profile's values are the ones it was parsed with, and each run's target path
    is new, so without this every dbt step parses the whole project again (about 1.5 s). The key
    leaves the password out: a parse made with another one is simply parsed again."""
    profile = {k: v for k, v in sorted(dbt_profile_environment(warehouse).items()) if not k.endswith("PASSWORD")}
    key = hashlib.sha256(repr(profile).encode()).hexdigest()[:16]
    return project_dir / "target" / "partial_parse" / f"{key}.msgpack"


def target_path_with_parse(project_dir: Path, warehouse: Warehouse, step: str, run_id: str) -> Path:
    """A new target path for one dbt command (named as dagster-dbt names its own), holding the
    last partial parse for this warehouse."""
    target = project_dir / "target" / f"{step}-{run_id[:7]}-{uuid.uuid4().hex[:7]}"
    cached = _parse_cache(project_dir, warehouse)
    if cached.exists():
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cached, target / PARTIAL_PARSE_FILE)
    return target


def keep_parse(target: Path, project_dir: Path, warehouse: Warehouse) -> None:
    """The command's partial parse, kept for the next (replaced whole: runs may end together)."""
    made = target / PARTIAL_PARSE_FILE
    cached = _parse_cache(project_dir, warehouse)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{uuid.uuid4().hex[:8]}")
        shutil.copyfile(made, partial)
        os.replace(partial, cached)
        # One file a warehouse: those of warehouses not used lately (a test's) are let go.
        kept = sorted(cached.parent.glob("*.msgpack"), key=lambda path: path.stat().st_mtime, reverse=True)
        for stale in kept[PARSES_KEPT:]:
            stale.unlink(missing_ok=True)
    except OSError:
        pass  # a read-only project folder: the next command parses the project whole, as without it


class WarehouseDbtResource(DbtCliResource):
    """The dbt CLI with its profile target following the warehouse: duckdb or postgres."""

    warehouse: dg.ResourceDependency[Warehouse]

    def cli(self, args: Sequence[str], rollups_changed_since: str = "", **kwargs: Any) -> DbtCliInvocation:
        """``rollups_changed_since``: an ISO time to rebuild the rollups of only the contacts changed
        since (dbt_project/macros/rollup_scope.sql); empty, every contact's."""
        # DbtCliResource copies os.environ into the dbt process when it starts it, inside
        # cli(); the variables are set for exactly that long.
        # Unset rather than empty for a full build: dbt reparses the files that read a variable
        # whenever its value, or whether it is set, differs from the parse it starts from.
        scope = {ROLLUPS_CHANGED_SINCE_ENV: rollups_changed_since or None}
        with _environment({**dbt_profile_environment(self.warehouse), **scope}):
            return super().cli(args, **kwargs)

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:  # type: ignore[override]
        # dagster-dbt opens a dbt adapter in this process before every dbt command (about 2 s of
        # loading the profile, project and adapter), only for fetch_row_counts and
        # fetch_column_metadata; the rollup assets count their rows through the Warehouse.
        return None

    @cached_property
    def _cli_version(self) -> "Version":
        # dagster-dbt asks the executable for its version (`dbt --version`, a subprocess that
        # takes about 3 s) on every dbt step; the dbt beside this Python is the dbt-core
        # package this process has imported, whose version it already knows.
        if DBT_PYTHON_VERSION is not None and Path(self.dbt_executable) == Path(sys.executable).with_name("dbt"):
            return DBT_PYTHON_VERSION
        return super()._cli_version


def _dbt_beside_python() -> str:
    beside = Path(sys.executable).with_name("dbt")
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")


@contextmanager
def dbt_on_path() -> Iterator[None]:
    """The dbt installed beside this Python (``.venv/bin/dbt``) findable by name, for dagster-dbt's
    own manifest preparer, when that directory is not on PATH (``.venv/bin/python -m pytest``)."""
    with _environment({"PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}):
        yield


def warehouse_dbt(project: DbtProject, warehouse: Warehouse) -> WarehouseDbtResource:
    """The dbt resource for this project and warehouse, running the dbt installed beside this Python."""
    return WarehouseDbtResource(project_dir=project, warehouse=warehouse, dbt_executable=_dbt_beside_python())
