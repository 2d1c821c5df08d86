"""`sandbox faults`: show or change the faults of a running sandbox via /_control/faults.

    manage.py sandbox faults                                  # show
    manage.py sandbox faults --seed 7 --set kantata:error_rate=0.2 --set scim:drop_rate=1
    manage.py sandbox faults --reset [--seed 7]               # back to the defaults

Uses the standard library's http.client: the sandbox needs no HTTP client library.
"""

from __future__ import annotations

import http.client

import orjson
from django.core.management.base import CommandError

from sandbox.commands import Subcommand
from sandbox.commands.serve import fault_flags_parse
from sandbox.core.server import DEFAULT_HOST, DEFAULT_PORT


def control_call(*, host: str, port: int, method: str, path: str, body: bytes = b"") -> dict:
    """One request to the control endpoint; raises CommandError when it fails."""
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request(method, path, body=body or None)
        answer = connection.getresponse()
        payload = answer.read()
    except OSError as exc:
        raise CommandError(f"no sandbox answers at {host}:{port} ({exc})") from exc
    finally:
        connection.close()
    if answer.status != 200:
        raise CommandError(f"{answer.status}: {payload.decode(errors='replace')}")
    return orjson.loads(payload)


def _add_arguments(parser):
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--reset", action="store_true", help="back to the dialect defaults first")
    parser.add_argument(
        "--set", dest="assignments", action="append", default=[], metavar="SYSTEM:SETTING=VALUE"
    )


def _run(*, stdout, stderr, host, port, seed, reset, assignments, **options):
    if not (reset or assignments or seed is not None):
        result = control_call(host=host, port=port, method="GET", path="/_control/faults")
    else:
        payload: dict = {"systems": fault_flags_parse(assignments)}
        if seed is not None:
            payload["seed"] = seed
        if reset:
            payload["reset"] = True
        result = control_call(
            host=host, port=port, method="PUT", path="/_control/faults", body=orjson.dumps(payload)
        )
    stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


SUBCOMMAND = Subcommand(
    name="faults",
    help="Show or change the faults of a running sandbox (see /_control/faults).",
    add_arguments=_add_arguments,
    run=_run,
)
