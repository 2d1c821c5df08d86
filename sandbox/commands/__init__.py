"""Subcommands of `python manage.py sandbox …`, one module each, found without registration.

A subcommand module exposes `SUBCOMMAND = Subcommand(name, help, add_arguments, run)` (or a list
`SUBCOMMANDS`). Modules are discovered in this package (`sandbox/commands/<name>.py`) and
in `sandbox.<package>.commands` of any sandbox subpackage (e.g. the generator's `seed` in
`sandbox/generator/commands.py`), so a new subcommand needs no edit to a shared file.

`run(*, stdout, stderr, **options)` receives argparse's options as keyword arguments and writes
through Django's OutputWrapper `stdout`/`stderr`. Raise django.core.management.CommandError for
a user error.
"""

from __future__ import annotations

import importlib
import pkgutil
from argparse import ArgumentParser
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Subcommand:
    name: str
    help: str
    add_arguments: Callable[[ArgumentParser], None]
    run: Callable[..., None]


def _module_subcommands(module_name: str) -> list[Subcommand]:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return []
        raise
    found = list(getattr(module, "SUBCOMMANDS", []))
    if isinstance(getattr(module, "SUBCOMMAND", None), Subcommand):
        found.append(module.SUBCOMMAND)
    return found


def subcommands_discover() -> dict[str, Subcommand]:
    """All subcommands by name, sorted."""
    found: list[Subcommand] = []
    for info in pkgutil.iter_modules(__path__):
        found.extend(_module_subcommands(f"{__name__}.{info.name}"))
    sandbox_dir = Path(__file__).resolve().parent.parent
    for info in pkgutil.iter_modules([str(sandbox_dir)]):
        if info.ispkg and info.name not in {"commands", "management", "migrations"}:
            found.extend(_module_subcommands(f"sandbox.{info.name}.commands"))
    return {sub.name: sub for sub in sorted(found, key=lambda s: s.name)}
