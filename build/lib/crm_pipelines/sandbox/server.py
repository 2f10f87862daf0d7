"""Start the sandbox: in the foreground for the CLI, or in a background thread for tests."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from crm_pipelines.sandbox.app import SandboxContext, build_app
from crm_pipelines.sandbox.tls import SandboxTls, ensure_certificate


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningSandbox:
    ctx: SandboxContext
    base_url: str
    tls: SandboxTls
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        # Clients keep connections alive; without force_exit uvicorn waits for them to close.
        self.server.force_exit = True
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _config(ctx: SandboxContext, host: str, port: int, tls: SandboxTls) -> uvicorn.Config:
    return uvicorn.Config(
        build_app(ctx), host=host, port=port, log_level="warning",
        ssl_certfile=str(tls.certfile), ssl_keyfile=str(tls.keyfile),
        # The sandbox answers one client's calls quickly; h11 keeps it dependency-light.
        http="h11", lifespan="off",
        # Let long request lines through to the CRM modules, which answer them with each CRM's
        # own URI limit (Salesforce 16 KB, Dataverse 32 KB) instead of h11's bare 400.
        h11_max_incomplete_event_size=96 * 1024,
    )


def start_in_thread(ctx: SandboxContext | None = None, *, host: str = "127.0.0.1",
                    port: int | None = None, tls_dir: str | Path) -> RunningSandbox:
    """Serve on a free loopback port in a daemon thread; returns once it accepts calls."""
    ctx = ctx or SandboxContext()
    port = port or free_port()
    tls = ensure_certificate(tls_dir)
    ctx.base_url = f"https://{host}:{port}"
    server = uvicorn.Server(_config(ctx, host, port, tls))
    thread = threading.Thread(target=server.run, name="crm-sandbox", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the sandbox CRM did not start on {host}:{port}")
        time.sleep(0.02)
    return RunningSandbox(ctx, ctx.base_url, tls, server, thread)


def serve_forever(ctx: SandboxContext, *, host: str, port: int, tls_dir: str | Path) -> None:
    tls = ensure_certificate(tls_dir)
    ctx.base_url = f"https://{host}:{port}"
    uvicorn.Server(_config(ctx, host, port, tls)).run()
