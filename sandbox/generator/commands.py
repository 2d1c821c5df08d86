"""`python manage.py sandbox seed`: write the synthetic firm (thin: parse, call, report)."""

from __future__ import annotations

import datetime as dt
import time
from argparse import ArgumentParser
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError

from sandbox.commands import Subcommand
from sandbox.generator.firm import scale_time_entries
from sandbox.generator.seed import (
    DEFAULT_AS_OF,
    DEFAULT_SEED,
    SandboxNotEmpty,
    sandbox_seed,
)


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument(
        "--scale",
        default="demo",
        help="demo (5,000 time entries), small (50,000), large (1,000,000) or a number of "
        "time entries (default: demo)",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default 42)")
    parser.add_argument(
        "--as-of",
        dest="as_of",
        default=DEFAULT_AS_OF.isoformat(),
        help=f"the firm's 'today' (YYYY-MM-DD, default {DEFAULT_AS_OF}); time runs up to the "
        "day before",
    )
    parser.add_argument(
        "--manifest",
        default=None,
        help="where to write the fault manifest (default var/sandbox_manifest.json)",
    )
    parser.add_argument(
        "--reset",
        action="store_true",
        help="delete every sandbox record, event, idempotency key and webhook first "
        "(without it, seeding a non-empty sandbox is refused)",
    )


def run(
    *,
    stdout,
    stderr,
    scale: str,
    seed: int,
    as_of: str,
    manifest: str | None,
    reset: bool,
    **_options,
) -> None:
    try:
        count = scale_time_entries(scale)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    try:
        as_of_date = dt.date.fromisoformat(as_of)
    except ValueError:
        raise CommandError(f"--as-of must be a date (YYYY-MM-DD), got {as_of!r}") from None
    path = Path(manifest) if manifest else Path(settings.VAR_DIR) / "sandbox_manifest.json"
    started = time.monotonic()

    def progress(done: int) -> None:
        stderr.write(
            f"seed: {done:,} of {count:,} time entries ({done * 100 // count}%), "
            f"{time.monotonic() - started:.1f} s"
        )
        stderr.flush()

    def note(message: str) -> None:
        stderr.write(f"seed: {message}, {time.monotonic() - started:.1f} s")
        stderr.flush()

    try:
        result = sandbox_seed(
            seed=seed,
            time_entries=count,
            scale=scale,
            as_of=as_of_date,
            reset=reset,
            manifest_path=path,
            progress=progress,
            note=note,
        )
    except SandboxNotEmpty as exc:
        raise CommandError(str(exc)) from None
    elapsed = time.monotonic() - started
    faults = result.manifest["fault_counts"]
    stdout.write(
        f"seeded {result.rows:,} records ({result.time_entries:,} time entries) in "
        f"{elapsed:.1f} s, {result.rows / max(elapsed, 1e-9):,.0f} rows/s; "
        f"{sum(f['entries'] for f in faults.values())} planted faults; manifest {path}"
    )


SUBCOMMAND = Subcommand(
    name="seed",
    help="Write a synthetic services firm (with planted faults) into the sandbox systems.",
    add_arguments=add_arguments,
    run=run,
)
