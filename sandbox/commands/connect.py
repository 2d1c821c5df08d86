"""`sandbox connect`: one Ledgerbridge connection per sandbox system, and the demo's first
published mappings (legal entity → ERP subsidiary, billing model → project template).
Idempotent."""

from __future__ import annotations

from django.core.management.base import CommandError

from sandbox.commands import Subcommand
from sandbox.core.server import DEFAULT_HOST, DEFAULT_PORT


def _add_arguments(parser):
    parser.add_argument(
        "--base-url",
        default=f"http://{DEFAULT_HOST}:{DEFAULT_PORT}",
        help="Where the sandbox is served (default %(default)s).",
    )


def _run(*, stdout, stderr, base_url: str, **options):
    from sandbox.product_setup import (
        connections_from_sandbox,
        legal_entity_mapping_from_sandbox,
        project_template_mapping_from_sandbox,
    )

    try:
        done = connections_from_sandbox(base_url=base_url)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    for item in done:
        c = item.connection
        verb = "created" if item.created else "updated"
        stdout.write(f"{verb} {c.name} ({c.system}, {c.dialect}) {c.base_url}")
    published = legal_entity_mapping_from_sandbox()
    if published is not None:
        stdout.write(f"published {published} mapping the sandbox ERP's subsidiaries")
    templates = project_template_mapping_from_sandbox()
    if templates is not None:
        stdout.write(f"published {templates}: the demo's project templates by billing model")


SUBCOMMAND = Subcommand(
    name="connect",
    help="Create or update one Ledgerbridge connection per sandbox system (and publish the "
    "demo legal-entity mapping).",
    add_arguments=_add_arguments,
    run=_run,
)
