"""The raw SQL the migrations run, one file a concern, PostgreSQL only: what models cannot say."""

from __future__ import annotations

from pathlib import Path

from django.db import migrations

SQL_DIR = Path(__file__).resolve().parent


def postgresql_script(name: str, *, reverse: str) -> migrations.RunPython:
    """A migration operation that runs `sync/sql/<name>` on PostgreSQL (and `reverse` when the
    migration is unapplied); other databases skip it."""

    def run(script: str):
        def operation(apps, schema_editor) -> None:
            if schema_editor.connection.vendor == "postgresql":
                # No parameters: % in the file is PL/pgSQL's, not a placeholder.
                schema_editor.execute((SQL_DIR / script).read_text(), params=None)

        return operation

    return migrations.RunPython(run(name), run(reverse), elidable=False)
