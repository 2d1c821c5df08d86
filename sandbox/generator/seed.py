"""`sandbox_seed`: write the synthetic firm into the sandbox and its fault manifest.

Not idempotent by design: seeding writes a whole firm with ids from 1, so it refuses a sandbox
that already holds records (`SandboxNotEmpty`) unless `reset=True`, which first deletes every
sandbox record, event, idempotency key and webhook. Everything happens in one transaction: a
failed or interrupted seed leaves the sandbox as it was.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import transaction

from sandbox.generator import kantata, netsuite, salesforce, scim, stripe
from sandbox.generator.activity import activity_write
from sandbox.generator.billing import billing_write
from sandbox.generator.firm_build import firm_build
from sandbox.generator.manifest import manifest_build, manifest_write
from sandbox.generator.writer import (
    IdBook,
    record_sink,
    sandbox_analyze,
    sandbox_clear,
    sandbox_is_empty,
    sandbox_record_count,
)
from sandbox.router import SANDBOX_DB

DEFAULT_AS_OF = dt.date(2026, 11, 16)
DEFAULT_SEED = 42


class SandboxNotEmpty(Exception):
    """The sandbox already holds records; seeding again would mix two firms."""


@dataclass(frozen=True)
class SeedResult:
    rows: int
    time_entries: int
    manifest: dict[str, Any]
    manifest_path: Path | None


def sandbox_seed(
    *,
    seed: int = DEFAULT_SEED,
    time_entries: int,
    scale: str = "",
    as_of: dt.date = DEFAULT_AS_OF,
    reset: bool = False,
    manifest_path: Path | None = None,
    progress: Callable[[int], None] | None = None,
    note: Callable[[str], None] | None = None,
    using: str = SANDBOX_DB,
) -> SeedResult:
    """Write the firm for (seed, time_entries, as_of). Same arguments, same rows and manifest.

    Raises SandboxNotEmpty when the sandbox holds records and `reset` is false.
    """
    report = progress or (lambda _done: None)
    tell = note or (lambda _message: None)
    with transaction.atomic(using=using):
        if reset:
            sandbox_clear(using=using)
        elif not sandbox_is_empty(using=using):
            raise SandboxNotEmpty(
                f"the sandbox already holds {sandbox_record_count(using=using):,} records; "
                "seed with --reset to replace them"
            )
        firm = firm_build(seed=seed, time_entries=time_entries, as_of=as_of)
        book = IdBook()
        for system in (salesforce, kantata, scim, netsuite, stripe):
            system.ids_assign(firm, book)

        def erp_customer(customer):
            return netsuite.customer_id(book, customer)

        with record_sink(using=using, note=tell) as sink:
            for row in salesforce.rows(firm, book, erp_customer):
                sink.add(row)
            for row in kantata.rows(firm, book):
                sink.add(row)
            for row in scim.rows(firm, book):
                sink.add(row)
            for row in netsuite.rows(firm, book):
                sink.add(row)
            for row in stripe.customer_rows(firm, book, erp_customer):
                sink.add(row)
            activity = activity_write(firm=firm, book=book, sink=sink, progress=report)
            billing = billing_write(firm=firm, book=book, sink=sink, activity=activity)
        sandbox_analyze(using=using)
    tell("committed")
    manifest = manifest_build(
        firm=firm,
        book=book,
        activity=activity,
        billing=billing,
        scale=scale or str(time_entries),
        written=sink.written,
    )
    if manifest_path is not None:
        manifest_write(manifest=manifest, path=manifest_path)
    return SeedResult(
        rows=sink.rows,
        time_entries=activity.time_entries,
        manifest=manifest,
        manifest_path=manifest_path,
    )
