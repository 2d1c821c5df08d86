"""The sandbox as one plain WSGI application (not Django's handler).

Why not Django views: the portal's middleware stack (sessions, CSRF, LoginRequiredMiddleware,
axes) must never apply to an emulated vendor API, and each vendor has its own URL grammar and
error shapes. So the sandbox is a small WSGI app that routes by prefix to a `Dialect`, and uses
Django only for the ORM (the `sandbox` database alias).

Per request, in this order:
  prefix -> dialect; route match (404/405 in the vendor's shape); authenticate (401);
  concurrency slot (429); rate-limit budget (dialect-shaped, e.g. Salesforce 403);
  injected 5xx; injected delay; the handler; `after_response`; maybe drop the answer.

Control endpoints (loopback test tooling, not part of any vendor API):
  GET /_control/faults            current seed and per-system fault settings
  PUT|POST /_control/faults       {"seed": 7, "systems": {"kantata": {"error_rate": 0.2}}}
  DELETE /_control/faults         back to the defaults (optionally ?seed=N)
  GET /_control/health            {"status": "ok", "systems": [...]}
  GET /                           the systems and their base URLs
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

import orjson
from django.db import close_old_connections, connections

from sandbox.core.dialects import Dialect, Route, dialects_load
from sandbox.core.faults import (
    Busy,
    FaultBook,
    FaultDecision,
    OverBudget,
    fault_config_merge,
)
from sandbox.core.protocol import (
    CONCURRENCY_LIMITED,
    INJECTED_FAULT,
    INTERNAL,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    RATE_LIMITED,
    Request,
    Response,
    SandboxError,
)
from sandbox.router import SANDBOX_DB

logger = logging.getLogger("sandbox")

CONTROL_PREFIX = "/_control"
MAX_BODY_BYTES = 32 * 1024 * 1024


class ResponseDropped(Exception):
    """Raised to an in-process caller (no real socket) when the answer is dropped by a fault."""


class SandboxApp:
    """WSGI callable serving every loaded dialect under its prefix.

    `manage_connections` tidies Django DB connections around each request as Django's own
    handler does (a broken connection is closed), except that each server thread keeps its
    connection to the sandbox database open across requests until `close()`: with Django's
    default CONN_MAX_AGE of 0 every request would set up a new PostgreSQL session (~3-5 ms of
    both processes' CPU), more than the emulator's own work on an upsert. In-process tests
    turn it off so that requests share the test transaction.
    """

    def __init__(
        self,
        *,
        dialects: list[Dialect] | None = None,
        faults: FaultBook | None = None,
        manage_connections: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.dialects = dialects if dialects is not None else dialects_load()
        self.faults = faults or FaultBook()
        self.faults.defaults_add(
            {d.system: dict(d.default_faults) for d in self.dialects if d.default_faults}
        )
        self.manage_connections = manage_connections
        self.sleep = sleep
        self.clock = clock
        self._held_lock = threading.Lock()
        self._held: set[Any] = set()  # each server thread's sandbox DatabaseWrapper
        # Longest prefix first so that "/scim/v2" could coexist with "/scim".
        self._by_prefix = sorted(self.dialects, key=lambda d: len(d.prefix), reverse=True)

    def dialect(self, system: str) -> Dialect:
        return next(d for d in self.dialects if d.system == system)

    def close(self) -> None:
        """Close the sandbox database connections the server threads kept. Call once the
        server has stopped (its threads no longer use them)."""
        with self._held_lock:
            held, self._held = self._held, set()
        for wrapper in held:
            wrapper.inc_thread_sharing()
            try:
                wrapper.close()
            finally:
                wrapper.dec_thread_sharing()

    def _connections_tidy(self) -> None:
        sandbox = connections[SANDBOX_DB]
        if sandbox.connection is not None:
            sandbox.close_at = None  # kept across requests (see the class docstring)
            if sandbox not in self._held:
                with self._held_lock:
                    self._held.add(sandbox)
        close_old_connections()  # still closes a connection left unusable by an error

    # -- WSGI ---------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if self.manage_connections:
            self._connections_tidy()
        try:
            response, dropped = self._respond(environ)
        finally:
            if self.manage_connections:
                self._connections_tidy()
        if dropped is not None:
            return self._drop(environ, start_response, dropped)
        reason = _reason(response.status)
        headers = [(name, value) for name, value in response.headers.items()]
        headers.append(("Content-Length", str(len(response.body))))
        start_response(f"{response.status} {reason}", headers)
        return [response.body]

    def _drop(self, environ: dict, start_response: Callable, mode: str) -> Iterator[bytes]:
        """Break the connection after the write committed: the client never gets an answer."""
        if mode == "timeout":
            self.sleep(self.faults.config(environ["sandbox.system"]).drop_hang_seconds)
        # Announce a body that never comes; waitress closes the connection when the app
        # writes less than Content-Length, so the client sees the connection drop mid-answer.
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "64")])
        yield b""
        if "waitress.client_disconnected" not in environ:
            raise ResponseDropped("the sandbox dropped this response after committing the write")

    def _respond(self, environ: dict[str, Any]) -> tuple[Response, str | None]:
        path = environ.get("PATH_INFO", "") or "/"
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if path.startswith(CONTROL_PREFIX + "/") or path == "/":
            return self._control(environ, method, path), None
        dialect = next(
            (d for d in self._by_prefix if path == d.prefix or path.startswith(d.prefix + "/")),
            None,
        )
        if dialect is None:
            return _plain_error(404, f"no sandbox system serves {path}"), None
        environ["sandbox.system"] = dialect.system
        request = Request(
            method=method,
            path=path[len(dialect.prefix) :] or "/",
            query_string=environ.get("QUERY_STRING", ""),
            headers=_headers(environ),
            body=_body(environ),
            base_url=_host_url(environ) + dialect.prefix,
            system=dialect.system,
            drift=self.faults.drift(system=dialect.system),
        )
        try:
            return self._dispatch(dialect, request)
        except SandboxError as exc:
            return _render(dialect, request, exc), None

    def _dispatch(self, dialect: Dialect, request: Request) -> tuple[Response, str | None]:
        route, params, path_known = dialect.match(request.method, request.path)
        if route is None:
            if path_known:
                raise SandboxError(405, METHOD_NOT_ALLOWED, f"{request.method} is not allowed here")
            raise SandboxError(404, NOT_FOUND, "The requested resource does not exist")
        if route.auth and dialect.authenticate is not None:
            dialect.authenticate(request)
        system = dialect.system
        try:
            self.faults.enter(system=system)
        except Busy as exc:
            raise SandboxError(429, CONCURRENCY_LIMITED, "Too many concurrent requests") from exc
        try:
            return self._guarded(dialect, route, params, request)
        finally:
            self.faults.leave(system=system)

    def _guarded(
        self, dialect: Dialect, route: Route, params: dict[str, str], request: Request
    ) -> tuple[Response, str | None]:
        system = dialect.system
        started = self.clock()
        if route.counted:
            try:
                used, limit = self.faults.spend(system=system)
            except OverBudget as exc:
                request.state["usage"] = (exc.used, exc.limit)
                raise SandboxError(
                    429,
                    RATE_LIMITED,
                    "Request limit exceeded",
                    extra={"used": exc.used, "limit": exc.limit, "reset_in": exc.reset_in},
                ) from exc
            request.state["usage"] = (used, limit)
        target = request.path + ("?" + request.query_string if request.query_string else "")
        decision = self.faults.decide(
            system=system, method=request.method, target=target, body=request.body
        )
        if decision.delay_seconds:
            self.sleep(decision.delay_seconds)
        if decision.error_status is not None:
            self._latency_pad(started, decision)
            raise SandboxError(
                decision.error_status, INJECTED_FAULT, "Injected fault: the service is unavailable"
            )
        try:
            response = route.handler(request, **params)
        except SandboxError:  # a refusal (404, 400, …) takes the system's latency too
            self._latency_pad(started, decision)
            raise
        except Exception:
            logger.exception("sandbox %s handler failed on %s", system, request.path)
            raise SandboxError(500, INTERNAL, "An unexpected error occurred") from None
        if dialect.after_response is not None:
            dialect.after_response(request, response)
        self._latency_pad(started, decision)
        if decision.drop and route.is_write and response.status < 400:
            return response, self.faults.config(system).drop_mode
        return response, None

    def _latency_pad(self, started: float, decision: FaultDecision) -> None:
        """Hold the answer until the system's latency has passed since the request began:
        its own work counts towards the latency, as a real system's does."""
        if decision.latency_seconds:
            remaining = started + decision.delay_seconds + decision.latency_seconds - self.clock()
            if remaining > 0:
                self.sleep(remaining)

    # -- control ------------------------------------------------------------------------------
    def _control(self, environ: dict[str, Any], method: str, path: str) -> Response:
        host = _host_url(environ)
        if path == "/" and method == "GET":
            return Response.json({"systems": {d.system: host + d.prefix for d in self.dialects}})
        if path == CONTROL_PREFIX + "/health" and method == "GET":
            return Response.json({"status": "ok", "systems": [d.system for d in self.dialects]})
        if path != CONTROL_PREFIX + "/faults":
            return _plain_error(404, f"no control endpoint at {path}")
        if method == "GET":
            return Response.json(self.faults.snapshot())
        if method == "DELETE":
            seed = _query_int(environ, "seed")
            self.faults.reset(seed=seed)
            return Response.json(self.faults.snapshot())
        if method not in {"PUT", "POST"}:
            return _plain_error(405, "use GET, PUT, POST or DELETE")
        try:
            payload = orjson.loads(_body(environ) or b"{}")
        except orjson.JSONDecodeError as exc:
            return _plain_error(400, f"malformed JSON: {exc}")
        try:
            faults_apply(self.faults, payload, known={d.system for d in self.dialects})
        except ValueError as exc:
            return _plain_error(400, str(exc))
        return Response.json(self.faults.snapshot())


def faults_apply(book: FaultBook, payload: Any, *, known: set[str]) -> None:
    """Apply a control payload {"seed": n, "reset": bool, "systems": {system: {...}}}.

    Raises ValueError on an unknown system or a bad setting, before anything is applied.
    """
    if not isinstance(payload, dict):
        raise ValueError("expected a JSON object")
    unknown = set(payload) - {"seed", "reset", "systems"}
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}; use seed, reset, systems")
    seed = payload.get("seed")
    if seed is not None and not isinstance(seed, int):
        raise ValueError("seed must be an integer")
    systems = payload.get("systems", {})
    if not isinstance(systems, dict):
        raise ValueError("systems must be an object of system -> settings")
    for system, changes in systems.items():
        if system not in known:
            raise ValueError(f"unknown system {system!r}; known: {sorted(known)}")
        if not isinstance(changes, dict):
            raise ValueError(f"settings of {system} must be an object")
        fault_config_merge(book.config(system), changes)  # refuse before applying anything
    if payload.get("reset"):
        book.reset(seed=seed)
    elif seed is not None:
        book.set_seed(seed)
    for system, changes in systems.items():
        book.configure(system=system, changes=changes)


def _render(dialect: Dialect, request: Request, error: SandboxError) -> Response:
    try:
        response = dialect.render_error(request, error)
    except Exception:
        logger.exception("sandbox %s failed to render an error", dialect.system)
        return _plain_error(500, error.message)
    response.headers.update(error.headers)
    if dialect.after_response is not None:
        dialect.after_response(request, response)
    return response


def _plain_error(status: int, message: str) -> Response:
    return Response.json({"error": message}, status=status)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    headers = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").lower()] = value
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    return headers


def _body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0:
        return b""
    return environ["wsgi.input"].read(min(length, MAX_BODY_BYTES))


def _host_url(environ: dict[str, Any]) -> str:
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME')}:{environ.get('SERVER_PORT')}"
    return f"{scheme}://{host}"


def _query_int(environ: dict[str, Any], name: str) -> int | None:
    values = parse_qs(environ.get("QUERY_STRING", "")).get(name)
    if not values:
        return None
    try:
        return int(values[-1])
    except ValueError:
        return None
