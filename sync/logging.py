"""Structured logs: every line carries the sync run and the correlation id of the work in hand.

`run_scope(run_id)` marks the work of one sync run (the cycle wraps pulls, processors and
deliveries in it); the correlation id comes from `sync.connectors.base.correlation_id_var`,
which the connectors already set around each request. `ContextFilter` copies both onto every
log record; `KeyValueFormatter` (logfmt) and `JsonFormatter` render them. Wire them in
settings.LOGGING (see the lead's note in the cycle report):

    "filters": {"context": {"()": "sync.logging.ContextFilter"}},
    "formatters": {"kv": {"()": "sync.logging.KeyValueFormatter"}},
    "handlers": {"console": {..., "formatter": "kv", "filters": ["context"]}},

Context variables, not thread locals: they follow the work into threads started with
`contextvars.copy_context()` and into asyncio tasks, and nest and restore cleanly.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
from collections.abc import Iterator
from contextvars import ContextVar

from sync.connectors.base import correlation_id_var
from sync.redaction import value_redact

run_id_var: ContextVar[int | None] = ContextVar("sync_run_id", default=None)

NONE = "-"
# LogRecord attributes that are not "extra" fields a caller passed.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "run_id",
    "correlation_id",
}


@contextlib.contextmanager
def run_scope(run_id: int | None) -> Iterator[None]:
    """Every log line written inside the block names `run_id`. Nests and restores."""
    token = run_id_var.set(run_id)
    try:
        yield
    finally:
        run_id_var.reset(token)


class ContextFilter(logging.Filter):
    """Adds `run_id` and `correlation_id` to every record ("-" when none is set).

    A value passed explicitly with `extra=` wins over the context.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "run_id", None) is None:
            run_id = run_id_var.get()
            record.run_id = NONE if run_id is None else run_id
        if getattr(record, "correlation_id", None) is None:
            record.correlation_id = correlation_id_var.get() or NONE
        return True


def _context(record: logging.LogRecord) -> tuple[object, object]:
    # Works without the filter too (a handler someone forgot to give it).
    run_id = getattr(record, "run_id", None)
    if run_id is None:
        run_id = run_id_var.get()
    correlation = getattr(record, "correlation_id", None) or correlation_id_var.get()
    return (NONE if run_id is None else run_id), (correlation or NONE)


def _timestamp(record: logging.LogRecord) -> str:
    moment = dt.datetime.fromtimestamp(record.created, tz=dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _extras(record: logging.LogRecord) -> dict[str, object]:
    """The `extra=` fields, with credentials and cost rates masked (sync.redaction)."""
    extras = {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
    return value_redact(extras, cost_rates_visible=False)


def _message(record: logging.LogRecord) -> str:
    """The message, its %-arguments masked like extras: a payload logged whole stays safe."""
    args = record.args
    if not args:
        return record.getMessage()
    masked = value_redact(args, cost_rates_visible=False)
    return str(record.msg) % (masked if isinstance(args, dict) else tuple(masked))


def _logfmt(value: object) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' ="\\\n\t'):
        escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    return text


class KeyValueFormatter(logging.Formatter):
    """logfmt lines: `ts=… level=INFO logger=sync.pipeline.cycle run_id=42 correlation_id=…
    msg="…"` followed by any `extra=` fields and, for an exception, its traceback quoted."""

    def format(self, record: logging.LogRecord) -> str:
        run_id, correlation = _context(record)
        fields: dict[str, object] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "run_id": run_id,
            "correlation_id": correlation,
            "msg": _message(record),
            **_extras(record),
        }
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        return " ".join(f"{key}={_logfmt(value)}" for key, value in fields.items())


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the same fields as KeyValueFormatter."""

    def format(self, record: logging.LogRecord) -> str:
        run_id, correlation = _context(record)
        fields: dict[str, object] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "run_id": run_id,
            "correlation_id": correlation,
            "msg": _message(record),
            **_extras(record),
        }
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        return json.dumps(fields, default=str)
