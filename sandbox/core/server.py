"""Serving the sandbox with waitress: the `serve` subcommand and a thread-backed server for tests.

`sandbox_server_start` binds (port 0 = any free loopback port), serves in a daemon thread and
returns a handle with `base_url` and `stop()`. Tests of the indeterminate case need a real
socket, because only a real connection can be dropped mid-answer.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer
from waitress.server import create_server as waitress_server
from waitress.task import WSGITask

from sandbox.core.app import SandboxApp

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8100
# Request threads. A request sleeping in an injected latency holds its thread: with NetSuite at
# 50 ms and 10 requests allowed in flight, fewer than 10 threads would queue requests in the
# server instead of answering them, and the limit the client is tested against would never be
# reached. The sleep itself releases the GIL and holds no database transaction.
DEFAULT_THREADS = 16


class _NoContentKeepAliveTask(WSGITask):
    """waitress closes the connection after any HTTP/1.1 response without a Content-Length,
    204 No Content included, although a 204 must not carry one (RFC 9110 §8.6) and needs no
    framing. NetSuite answers every record write with a 204, so a client writing through the
    sandbox would open a TCP connection per write (and the server accept one), which no vendor
    makes it do. Such a response keeps the connection unless the client asked to close it."""

    def set_close_on_finish(self) -> None:
        keep = (
            not self.has_body
            and self.version == "1.1"
            and not self.close_on_finish
            and self.request.headers.get("CONNECTION", "").lower() != "close"
        )
        if not keep:
            super().set_close_on_finish()


class _Channel(HTTPChannel):
    task_class = _NoContentKeepAliveTask


def create_server(app: SandboxApp, **options):
    """waitress's server for the sandbox (see _NoContentKeepAliveTask)."""
    server = waitress_server(app, **options)
    for listener in [server, *getattr(server, "map", {}).values()]:
        if isinstance(listener, BaseWSGIServer):
            listener.channel_class = _Channel
    return server


def sandbox_serve(
    *,
    app: SandboxApp,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    threads: int = DEFAULT_THREADS,
) -> None:
    """Serve until interrupted (blocks)."""
    server = create_server(app, host=host, port=port, threads=threads, ident="ledgerbridge-sandbox")
    try:
        server.run()
    finally:
        server.close()
        app.close()


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
        self.app.close()


def sandbox_server_start(
    *, app: SandboxApp, host: str = DEFAULT_HOST, port: int = 0, threads: int = DEFAULT_THREADS
) -> RunningSandbox:
    server = create_server(app, host=host, port=port, threads=threads, ident="ledgerbridge-sandbox")
    bound_port = server.effective_port
    thread = threading.Thread(target=server.run, name="sandbox-server", daemon=True)
    thread.start()
    return RunningSandbox(
        app=app, base_url=f"http://{host}:{bound_port}", _server=server, _thread=thread
    )
