"""Fixtures shared by the whole suite: the sandbox CRM over HTTPS and the real PostgreSQL."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

from crm_pipelines.sandbox.app import SandboxContext
from crm_pipelines.sandbox.server import RunningSandbox, start_in_thread
from tests.pipeline import Template, build_template, template_in


@pytest.fixture(scope="session")
def sandbox_server(tmp_path_factory: pytest.TempPathFactory) -> RunningSandbox:
    running = start_in_thread(SandboxContext(), tls_dir=tmp_path_factory.mktemp("sandbox-tls"))
    # requests (simple-salesforce, msal) reads REQUESTS_CA_BUNDLE, which overrides a session's
    # own `verify`; point it at a bundle that trusts the sandbox as well as the system CAs.
    previous = os.environ.get("REQUESTS_CA_BUNDLE")
    os.environ["REQUESTS_CA_BUNDLE"] = str(running.tls.ca_bundle)
    yield running
    running.stop()
    if previous is None:
        os.environ.pop("REQUESTS_CA_BUNDLE", None)
    else:
        os.environ["REQUESTS_CA_BUNDLE"] = previous


def emptied(sandbox: RunningSandbox) -> RunningSandbox:
    """The running sandbox with empty state, no faults and zeroed counters."""
    ctx = sandbox.ctx
    ctx.store.reset()
    ctx.stats.reset()
    ctx.faults.clear()
    ctx.settings.clear()
    return sandbox


@pytest.fixture
def sandbox(sandbox_server: RunningSandbox) -> RunningSandbox:
    """The running sandbox with empty state, no faults and zeroed counters."""
    return emptied(sandbox_server)


def once_per_run(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """The directory ``name``, filled by ``build`` once per test run: the first xdist worker to ask
    builds it while the others wait for it, instead of each building its own."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # this run's temporary directory, which its workers share
    directory = root / name
    with FileLock(f"{directory}.lock"):
        if not (directory / ".built").exists():
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir()
            build(directory)
            (directory / ".built").touch()
    return directory


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    """Generated Enginy data with its warehouse copies and rollups, built once per test run."""
    return template_in(once_per_run(tmp_path_factory, "template", build_template))


def _start_order(item: pytest.Item) -> int:
    """The longest tests first, so that two workers end together: the demo served to the UI
    (minutes, mostly waiting on Dagster's daemons), then the end-to-end exports and the other
    slow tests, then the rest. xdist (--dist loadscope) hands out modules in the order of their
    first test."""
    if item.nodeid.startswith("tests/orchestration/test_dagster_dev.py"):
        return 0
    if item.nodeid.startswith("tests/export/test_export_end_to_end.py") or item.get_closest_marker("slow"):
        return 1
    return 2


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A stable sort, after pytest has grouped the tests that share a module-scoped fixture
    # value, so each group stays together and its fixture is built once.
    items.sort(key=_start_order)
