"""Helpers for the bulk paths (thousands of records a batch)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Cyclic garbage collection off for one batch, then back as it was.

    A batch allocates a few objects per record (payload dicts, rows, rendered lines), almost all
    freed by reference counting; with the collector on, every 700 allocations start a
    collection that walks them all again, and the older generations grow with the batch:
    7 µs of the engine's ~50 µs of Python an entry (bench/README.md). Any cycle the batch does
    make is collected by the first collection after it, so memory stays bounded by the batch.
    The switch is process-wide: threads running beside a batch (eager mode, the test
    server) go uncollected until it ends, and nested or overlapping batches leave the
    collector as the first one found it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
