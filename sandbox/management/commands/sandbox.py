"""`python manage.py sandbox <subcommand>`: serve, credentials, faults, and what others add.

Thin: parses arguments and hands them to the subcommand (see sandbox/commands/__init__.py).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from sandbox.commands import subcommands_discover


class Command(BaseCommand):
    help = "Run the emulated vendor systems (CRM, PSA, HR, ERP, billing) on loopback."

    def add_arguments(self, parser):
        subparsers = parser.add_subparsers(dest="subcommand", metavar="subcommand")
        subparsers.required = True
        for name, sub in subcommands_discover().items():
            subparser = subparsers.add_parser(name, help=sub.help, description=sub.help)
            sub.add_arguments(subparser)

    def handle(self, *args, subcommand: str, **options):
        sub = subcommands_discover().get(subcommand)
        if sub is None:
            raise CommandError(f"unknown subcommand {subcommand!r}")
        # call_command passes its own stdout/stderr in options; self.stdout already wraps them.
        options.pop("stdout", None)
        options.pop("stderr", None)
        sub.run(stdout=self.stdout, stderr=self.stderr, **options)
