"""How an emulated system plugs into the sandbox: a `Dialect` with its `Route`s.

A dialect is a package `sandbox/<name>/` whose `__init__.py` exposes `DIALECT`. The core
imports every package named in `DIALECT_PACKAGES` that exists (a missing one is skipped, so the
NetSuite and Stripe packages can land later without touching the core).

    DIALECT = Dialect(
        system="kantata",                 # the fault-config and storage key
        prefix="/kantata",                # everything under it is this system's
        routes=[Route("GET", "/api/v1/{resource}", workspaces_list), …],
        render_error=render_error,        # SandboxError -> the vendor's error body
        authenticate=authenticate,        # raises SandboxError(401, …) or returns None
        credentials=credentials,          # base_url -> dict printed by `sandbox credentials`
        default_faults={"rate_limit": 100_000, "rate_window_seconds": 86_400},
        after_response=add_limit_header,  # optional: decorate every answer (usage headers…)
        workers=(WebhookDispatcher,),     # optional: threads `serve` runs (start()/stop())
    )

Route patterns are paths below the prefix with `{name}` (one segment) or `{name:regex}`
placeholders (the regex may not contain braces: write `[0-9]+`, not `[0-9]{1,18}`), passed to
the handler as keyword arguments: `handler(request, **params)`.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.core.protocol import Request, Response, SandboxError

Handler = Callable[..., Response]

DIALECT_PACKAGES = ("salesforce", "kantata", "scim", "netsuite", "stripe")

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_PLACEHOLDER = re.compile(r"{(\w+)(?::([^{}]+))?}")


@dataclass
class Route:
    method: str
    pattern: str
    handler: Handler
    auth: bool = True  # run the dialect's authenticate first
    counted: bool = True  # counts against the rate-limit budget (token requests don't)
    writes: bool | None = None  # commits data (drop faults apply); default: POST/PUT/PATCH/DELETE
    regex: re.Pattern = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.pattern.count("{") != len(_PLACEHOLDER.findall(self.pattern)):
            raise ValueError(f"braces inside a placeholder regex are not supported: {self.pattern}")
        parts, last = [], 0
        for match in _PLACEHOLDER.finditer(self.pattern):
            parts.append(re.escape(self.pattern[last : match.start()]))
            parts.append(f"(?P<{match.group(1)}>{match.group(2) or '[^/]+'})")
            last = match.end()
        parts.append(re.escape(self.pattern[last:]))
        self.regex = re.compile("".join(parts) + r"\Z")

    @property
    def is_write(self) -> bool:
        return self.method in WRITE_METHODS if self.writes is None else self.writes


@dataclass
class Dialect:
    system: str
    prefix: str
    routes: list[Route]
    render_error: Callable[[Request, SandboxError], Response]
    authenticate: Callable[[Request], None] | None = None
    credentials: Callable[[str], dict[str, Any]] = lambda base_url: {"base_url": base_url}
    default_faults: dict[str, Any] = field(default_factory=dict)
    after_response: Callable[[Request, Response], None] | None = None
    # Background threads `serve` starts (e.g. webhook delivery); each needs start() and stop().
    workers: tuple[Callable[[], Any], ...] = ()

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """(route, params, path_known). path_known without a route means 405."""
        path_known = False
        for route in self.routes:
            found = route.regex.match(path)
            if found is None:
                continue
            path_known = True
            if route.method == method:
                return route, found.groupdict(), True
        return None, {}, path_known


def dialects_load(names: tuple[str, ...] = DIALECT_PACKAGES) -> list[Dialect]:
    """The dialects whose packages exist and expose DIALECT, in `names` order."""
    loaded = []
    for name in names:
        module_name = f"sandbox.{name}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        dialect = getattr(module, "DIALECT", None)
        if isinstance(dialect, Dialect):
            loaded.append(dialect)
    return loaded
