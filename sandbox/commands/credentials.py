"""`sandbox credentials`: each system's base URL and test credentials as JSON."""

from __future__ import annotations

import orjson

from sandbox.commands import Subcommand
from sandbox.core.dialects import dialects_load
from sandbox.core.server import DEFAULT_HOST, DEFAULT_PORT


def sandbox_credentials(*, host: str, port: int) -> dict[str, dict]:
    """{system: {"base_url": …, credentials…}} for a sandbox served at host:port."""
    root = f"http://{host}:{port}"
    return {d.system: d.credentials(root + d.prefix) for d in dialects_load()}


def _add_arguments(parser):
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)


def _run(*, stdout, stderr, host: str, port: int, **options):
    payload = sandbox_credentials(host=host, port=port)
    stdout.write(orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode())


SUBCOMMAND = Subcommand(
    name="credentials",
    help="Print each system's base URL and test credentials as JSON.",
    add_arguments=_add_arguments,
    run=_run,
)
