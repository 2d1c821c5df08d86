"""`sandbox serve`: all systems in one loopback process (waitress, several threads).

Faults are set at start with `--seed` and repeated `--fault SYSTEM:SETTING=VALUE` (or
`--faults-json '{"systems": {...}}'`), and changed while running through /_control/faults.
"""

from __future__ import annotations

import orjson
from django.core.management.base import CommandError

from sandbox.commands import Subcommand
from sandbox.core.app import SandboxApp, faults_apply
from sandbox.core.faults import FaultBook
from sandbox.core.server import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_THREADS, sandbox_serve


def fault_flags_parse(flags: list[str]) -> dict[str, dict[str, str]]:
    """["kantata:error_rate=0.1", "*:latency_seconds=0.05"] -> {system: {setting: value}}."""
    systems: dict[str, dict[str, str]] = {}
    for flag in flags:
        system, sep, assignment = flag.partition(":")
        name, eq, value = assignment.partition("=")
        if not sep or not eq or not system or not name:
            raise CommandError(f"--fault expects SYSTEM:SETTING=VALUE, got {flag!r}")
        systems.setdefault(system, {})[name] = value
    return systems


def _add_arguments(parser):
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS)
    parser.add_argument("--seed", type=int, default=0, help="seed of the deterministic faults")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SYSTEM:SETTING=VALUE",
        help="e.g. kantata:error_rate=0.1, salesforce:rate_limit=1000, *:slow_rate=0.2",
    )
    parser.add_argument("--faults-json", default="", help='{"systems": {"scim": {...}}}')


def _run(*, stdout, stderr, host, port, threads, seed, fault, faults_json, **options):
    app = SandboxApp(faults=FaultBook(seed=seed))
    known = {d.system for d in app.dialects}
    systems = fault_flags_parse(fault)
    if "*" in systems:
        every = systems.pop("*")
        for system in known:
            systems[system] = {**every, **systems.get(system, {})}
    try:
        if faults_json:
            faults_apply(app.faults, orjson.loads(faults_json), known=known)
        faults_apply(app.faults, {"systems": systems}, known=known)
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise CommandError(str(exc)) from exc
    root = f"http://{host}:{port}"
    for dialect in app.dialects:
        stdout.write(f"{dialect.system:<11} {root}{dialect.prefix}")
    stdout.write(f"control     {root}/_control/faults (seed {app.faults.seed})")
    workers = [factory() for dialect in app.dialects for factory in dialect.workers]
    for worker in workers:
        worker.start()
    try:
        sandbox_serve(app=app, host=host, port=port, threads=threads)
    except KeyboardInterrupt:
        stdout.write("sandbox stopped")
    finally:
        for worker in workers:
            worker.stop()


SUBCOMMAND = Subcommand(
    name="serve",
    help="Serve every emulated system on loopback under its prefix (Ctrl-C stops).",
    add_arguments=_add_arguments,
    run=_run,
)
