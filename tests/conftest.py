"""Fixtures shared by the whole suite: the sandbox CRM over HTTPS and the real PostgreSQL."""

from __future__ import annotations

import os

import pytest

from crm_pipelines.sandbox.app import SandboxContext
from crm_pipelines.sandbox.server import RunningSandbox, start_in_thread


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


@pytest.fixture
def sandbox(sandbox_server: RunningSandbox) -> RunningSandbox:
    """The running sandbox with empty state, no faults and zeroed counters."""
    ctx = sandbox_server.ctx
    ctx.store.reset()
    ctx.stats.reset()
    ctx.faults.clear()
    ctx.settings.clear()
    return sandbox_server
