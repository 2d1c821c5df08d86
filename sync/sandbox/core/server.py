"""Serving the sandbox with waitress: the `serve` subcommand and a thread-backed server for tests.

`sandbox_server_start` binds (port 0 = any free loopback port), serves in a daemon thread and
returns a handle with `base_url` and `stop()`. Tests of the indeterminate case need a real
socket, because only a real connection can be dropped mid-answer.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from waitress.server import create_server

from sync.sandbox.core.app import SandboxApp

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8100
DEFAULT_THREADS = 8


def sandbox_serve(
    *, app: SandboxApp, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, threads: int = 8
) -> None:
    """Serve until interrupted (blocks)."""
    server = create_server(app, host=host, port=port, threads=threads, ident="ledgerbridge-sandbox")
    try:
        server.run()
    finally:
        server.close()


@dataclass
class RunningSandbox:
    app: SandboxApp
    base_url: str
    _server: object
    _thread: threading.Thread

    def url(self, system: str) -> str:
        return self.base_url + self.app.dialect(system).prefix

    def stop(self) -> None:
        self._server.close()
        self._thread.join(timeout=10)


def sandbox_server_start(
    *, app: SandboxApp, host: str = DEFAULT_HOST, port: int = 0, threads: int = 4
) -> RunningSandbox:
    server = create_server(app, host=host, port=port, threads=threads, ident="ledgerbridge-sandbox")
    bound_port = server.effective_port
    thread = threading.Thread(target=server.run, name="sandbox-server", daemon=True)
    thread.start()
    return RunningSandbox(
        app=app, base_url=f"http://{host}:{bound_port}", _server=server, _thread=thread
    )
