"""Fault injection per system, deterministic under a seed.

A `FaultBook` holds one `FaultConfig` per system plus the counters the faults need. The app
asks it, once per request, for a `FaultDecision`:

- `error_status`   answer with an injected 5xx (vendor-shaped) before the handler runs
- `delay_seconds`  sleep first (slow responses; a delay beyond the client's timeout is a timeout)
- `latency_seconds` the least time the answer takes, the system's own work included: the app
                   pads the request to it after the work (a real system's latency is its time
                   to answer, so with 50 ms and 10 requests in flight it serves 200/s, not
                   10 / (50 ms + the emulator's own work))
- `drop`           run the handler (the write commits), then break the connection instead of
                   answering: the indeterminate case a connector must resolve by lookup

Determinism: the decision for a request is drawn from sha256(seed, system, method, path, query,
body, n) where n counts earlier identical requests since the book was last configured. Same
seed + same requests (in any interleaving of *different* requests) => same faults; a retry of an
identical request gets a fresh, but equally reproducible, draw.

Budgets that are not random: `rate_limit` requests per `rate_window_seconds` (fixed windows from
the first counted request; the Salesforce daily API limit is this with a 24 h window) and
`concurrency_limit` requests in flight (answered 429). Schema drift (`rename_fields`,
`add_fields`) is applied by dialects to each record they render, through `Request.drift`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FaultConfig:
    error_rate: float = 0.0
    error_statuses: list[int] = field(default_factory=lambda: [500, 503])
    slow_rate: float = 0.0
    slow_seconds: float = 0.0
    latency_seconds: float = 0.0
    drop_rate: float = 0.0
    drop_mode: str = "reset"  # "reset": headers then close; "timeout": hang drop_hang_seconds
    drop_hang_seconds: float = 30.0
    rate_limit: int | None = None
    rate_window_seconds: float = 60.0
    concurrency_limit: int | None = None
    rename_fields: dict[str, str] = field(default_factory=dict)
    add_fields: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_FIELD_TYPES: dict[str, Callable[[Any], Any]] = {
    "error_rate": float,
    "slow_rate": float,
    "slow_seconds": float,
    "latency_seconds": float,
    "drop_rate": float,
    "drop_hang_seconds": float,
    "rate_window_seconds": float,
}


def fault_config_merge(config: FaultConfig, changes: dict[str, Any]) -> FaultConfig:
    """A copy of `config` with `changes` applied; raises ValueError on an unknown or bad value."""
    known = {f.name for f in dataclasses.fields(FaultConfig)}
    values = config.as_dict()
    for name, raw in changes.items():
        if name not in known:
            raise ValueError(f"unknown fault setting {name!r}; known: {sorted(known)}")
        values[name] = _coerce(name, raw)
    for name in ("error_rate", "slow_rate", "drop_rate"):
        if not 0.0 <= values[name] <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1")
    if values["drop_mode"] not in {"reset", "timeout"}:
        raise ValueError("drop_mode must be 'reset' or 'timeout'")
    return FaultConfig(**values)


def _coerce(name: str, raw: Any) -> Any:
    try:
        if name in _FIELD_TYPES:
            return _FIELD_TYPES[name](raw)
        if name in {"rate_limit", "concurrency_limit"}:
            return None if raw in (None, "", "none", "off") else int(raw)
        if name == "error_statuses":
            items = raw.split(",") if isinstance(raw, str) else raw
            statuses = [int(item) for item in items]
            # 5xx, or 429: a vendor throttling for reasons of its own (another tenant, a
            # platform limit), apart from the concurrency and rate budgets below.
            if not statuses or any(not (500 <= s <= 599 or s == 429) for s in statuses):
                raise ValueError("error_statuses must be 5xx codes or 429")
            return statuses
        if name in {"rename_fields", "add_fields"}:
            if not isinstance(raw, dict):
                raise ValueError(f"{name} must be an object")
            return dict(raw)
        if name == "drop_mode":
            return str(raw)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bad value for {name}: {raw!r} ({exc})") from exc
    return raw  # pragma: no cover - every field is listed above


@dataclass(frozen=True)
class FaultDecision:
    error_status: int | None = None
    delay_seconds: float = 0.0
    drop: bool = False
    latency_seconds: float = 0.0


@dataclass
class _Window:
    started: float
    used: int


class Busy(Exception):
    """Over the concurrency limit."""


class OverBudget(Exception):
    """Over the rate-limit budget of the current window."""

    def __init__(self, used: int, limit: int, reset_in: float) -> None:
        super().__init__(f"{used}/{limit}")
        self.used = used
        self.limit = limit
        self.reset_in = reset_in


class FaultBook:
    """Fault settings and counters of one running sandbox (one per app instance; thread-safe)."""

    def __init__(
        self,
        *,
        seed: int = 0,
        defaults: dict[str, dict[str, Any]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._defaults = {system: dict(v) for system, v in (defaults or {}).items()}
        self.seed = seed
        self._configs: dict[str, FaultConfig] = {}
        self._seen: Counter[bytes] = Counter()
        self._windows: dict[str, _Window] = {}
        self._inflight: Counter[str] = Counter()
        self.reset()

    # -- configuration ------------------------------------------------------------------------
    def defaults_add(self, defaults: dict[str, dict[str, Any]]) -> None:
        """Add dialect defaults (under explicit settings already made), e.g. a daily limit."""
        with self._lock:
            for system, values in defaults.items():
                base = fault_config_merge(FaultConfig(), values)
                self._defaults.setdefault(system, {}).update(values)
                current = self._configs.get(system)
                if current is None:
                    self._configs[system] = base
                else:
                    explicit = {
                        k: v for k, v in current.as_dict().items() if v != getattr(FaultConfig(), k)
                    }
                    self._configs[system] = fault_config_merge(base, explicit)

    def reset(self, *, seed: int | None = None) -> None:
        """Back to each system's defaults (dialect defaults such as Salesforce's daily limit)."""
        with self._lock:
            if seed is not None:
                self.seed = seed
            self._configs = {
                system: fault_config_merge(FaultConfig(), values)
                for system, values in self._defaults.items()
            }
            self._seen.clear()
            self._windows.clear()

    def configure(
        self, *, system: str, changes: dict[str, Any], seed: int | None = None
    ) -> FaultConfig:
        """Merge `changes` into one system's settings and restart the deterministic draw."""
        with self._lock:
            config = fault_config_merge(self._configs.get(system, FaultConfig()), changes)
            self._configs[system] = config
            if seed is not None:
                self.seed = seed
            self._seen.clear()
            if "rate_limit" in changes or "rate_window_seconds" in changes:
                self._windows.pop(system, None)
            return config

    def set_seed(self, seed: int) -> None:
        with self._lock:
            self.seed = seed
            self._seen.clear()

    def config(self, system: str) -> FaultConfig:
        return self._configs.get(system) or FaultConfig()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "seed": self.seed,
                "systems": {system: c.as_dict() for system, c in sorted(self._configs.items())},
            }

    # -- per request --------------------------------------------------------------------------
    def decide(self, *, system: str, method: str, target: str, body: bytes) -> FaultDecision:
        """The faults for this request (see the module docstring for the determinism contract)."""
        config = self.config(system)
        if not (
            config.error_rate or config.slow_rate or config.drop_rate or config.latency_seconds
        ):
            return FaultDecision()
        with self._lock:
            identity = hashlib.sha256(
                b"\0".join([system.encode(), method.encode(), target.encode(), body])
            ).digest()
            self._seen[identity] += 1
            occurrence = self._seen[identity]
        draw = hashlib.sha256(f"{self.seed}:{occurrence}:".encode() + identity).digest()
        u_error, u_slow, u_drop, u_status = (
            int.from_bytes(draw[i : i + 8], "big") / 2**64 for i in (0, 8, 16, 24)
        )
        error_status = None
        if u_error < config.error_rate:
            statuses = config.error_statuses
            error_status = statuses[int(u_status * len(statuses))]
        delay = config.slow_seconds if u_slow < config.slow_rate else 0.0
        drop = error_status is None and u_drop < config.drop_rate
        return FaultDecision(
            error_status=error_status,
            delay_seconds=delay,
            drop=drop,
            latency_seconds=config.latency_seconds,
        )

    def spend(self, *, system: str) -> tuple[int, int | None]:
        """Count one request against the system's budget. Returns (used, limit).

        Raises OverBudget (without counting) when the window's budget is already used up.
        """
        config = self.config(system)
        if config.rate_limit is None:
            return 0, None
        with self._lock:
            now = self._clock()
            window = self._windows.get(system)
            if window is None or now - window.started >= config.rate_window_seconds:
                window = self._windows[system] = _Window(started=now, used=0)
            if window.used >= config.rate_limit:
                reset_in = config.rate_window_seconds - (now - window.started)
                raise OverBudget(window.used, config.rate_limit, reset_in)
            window.used += 1
            return window.used, config.rate_limit

    def usage(self, *, system: str) -> tuple[int, int | None]:
        config = self.config(system)
        with self._lock:
            window = self._windows.get(system)
            return (window.used if window else 0), config.rate_limit

    def enter(self, *, system: str) -> None:
        """Take a concurrency slot; raises Busy over the limit. Pair with `leave`."""
        limit = self.config(system).concurrency_limit
        with self._lock:
            if limit is not None and self._inflight[system] >= limit:
                raise Busy(system)
            self._inflight[system] += 1

    def leave(self, *, system: str) -> None:
        with self._lock:
            self._inflight[system] -= 1

    def drift(self, *, system: str) -> Callable[[dict], dict]:
        """A function that applies the system's schema drift to one rendered record."""
        config = self.config(system)
        if not (config.rename_fields or config.add_fields):
            return _no_drift
        renames, additions = dict(config.rename_fields), dict(config.add_fields)

        def apply(record: dict) -> dict:
            drifted = {renames.get(key, key): value for key, value in record.items()}
            for key, value in additions.items():
                drifted.setdefault(key, value)
            return drifted

        return apply


def _no_drift(record: dict) -> dict:
    return record
