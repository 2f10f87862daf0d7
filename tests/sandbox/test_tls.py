"""The sandbox's certificate: clients trust it through a bundle, even when an earlier sandbox's
bundle is what REQUESTS_CA_BUNDLE points at."""

from pathlib import Path

import pytest
import requests

from crm_pipelines.sandbox.app import SandboxContext
from crm_pipelines.sandbox.server import start_in_thread
from crm_pipelines.sandbox.tls import MARKER, ensure_certificate


def test_a_new_sandbox_bundle_replaces_an_earlier_sandbox_certificate(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    first = ensure_certificate(tmp_path / "first")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(first.ca_bundle))
    second = ensure_certificate(tmp_path / "second")
    bundle = second.ca_bundle.read_text()
    assert bundle.count(MARKER) == 1
    assert second.certfile.read_text() in bundle and first.certfile.read_text() not in bundle
    running = start_in_thread(SandboxContext(crms=()), tls_dir=tmp_path / "second")
    try:
        assert requests.get(f"{running.base_url}/_sandbox/stats", verify=str(second.ca_bundle)).ok
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{running.base_url}/_sandbox/stats", verify=str(first.ca_bundle))
    finally:
        running.stop()
