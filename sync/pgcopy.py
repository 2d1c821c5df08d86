"""PostgreSQL COPY for the bulk paths: rows rendered straight to COPY's text format.

A model instance per row, Django's INSERT compiler and the driver's per-row adaptation cost
more than the database's own work once a batch has thousands of rows. `CopyRows` renders a
table's constant columns once and only the varying ones per row (`str.format` over a prepared
template), and `copy_insert` sends one COPY per table. The rows are the ones the ORM would
write: a column left out takes the field's default, and a column without one is refused.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import orjson
from django.db import connections, models, router

from sync.encryption import EncryptedDecimalField, EncryptedTextField

NULL = "\\N"
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NEEDS_ESCAPE = re.compile(r"[\\\t\n\r]").search


def _text(value: str) -> str:
    return value.translate(_ESCAPES) if _NEEDS_ESCAPE(value) else value


def _aware(value: dt.datetime) -> str:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: timezone-aware datetimes only")
    return value.isoformat()


_RENDER: dict[type, Callable[[Any], str]] = {
    str: _text,
    bool: lambda v: "t" if v else "f",
    int: str,
    Decimal: str,
    dt.date: dt.date.isoformat,
    dt.datetime: _aware,
}


def copy_value(value: Any) -> str:
    """One value in COPY text format (NULL as \\N, text escaped)."""
    if value is None:
        return NULL
    render = _RENDER.get(type(value))
    if render is not None:
        return render(value)
    if isinstance(value, str):  # a choices member (TextChoices) is its value
        return _text(str(value))
    raise TypeError(f"no COPY rendering for {type(value).__name__}: {value!r}")


def copy_json(value: Any) -> str:
    """A JSON column's value: always serialised (a JSON string too), then escaped."""
    return _text(orjson.dumps(value).decode())


# Fields whose database value is not the Python value: rendered from `get_db_prep_save` (so a
# cost rate is stored encrypted, as the ORM stores it).
_PREPARED_FIELDS = (EncryptedTextField, EncryptedDecimalField)


def _renderer(field: models.Field, connection: Any) -> Callable[[Any], str]:
    if isinstance(field, models.JSONField):
        return copy_json
    if isinstance(field, _PREPARED_FIELDS):
        return lambda value: copy_value(field.get_db_prep_save(value, connection))
    return copy_value


def _template_escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


class CopyRows:
    """The COPY statement and row renderer of one table.

    `variables` are the attnames given per row, in order; `constants` are rendered once; every
    other column takes its field's default, and one without a default raises ValueError (the
    ORM would refuse the row too). `omit` leaves columns to the database (an identity key).
    """

    def __init__(
        self,
        model: type[models.Model],
        *,
        variables: Sequence[str],
        constants: Mapping[str, Any] | None = None,
        omit: Sequence[str] = (),
    ) -> None:
        constants = constants or {}
        connection = connections[router.db_for_write(model)]
        quote = connection.ops.quote_name
        fields = [f for f in model._meta.concrete_fields if f.attname not in omit]
        names = {f.attname for f in fields}
        unknown = (set(variables) | set(constants)) - names
        if unknown:
            raise ValueError(f"{model._meta.db_table} has no columns {sorted(unknown)}")
        slots = {name: i for i, name in enumerate(variables)}
        renderers = {f.attname: _renderer(f, connection) for f in fields}
        parts = []
        for f in fields:
            if f.attname in slots:
                parts.append(f"{{{slots[f.attname]}}}")
                continue
            if f.attname in constants:
                value = constants[f.attname]
            else:
                value = f.get_default()
                if value is None and not f.null:
                    raise ValueError(
                        f"COPY into {model._meta.db_table} lacks required column {f.attname}"
                    )
            parts.append(_template_escape(renderers[f.attname](value)))
        self.template = "\t".join(parts) + "\n"
        self.renderers = [renderers[name] for name in variables]
        self.sql = "COPY {} ({}) FROM STDIN".format(
            quote(model._meta.db_table), ", ".join(quote(f.column) for f in fields)
        )

    def render(self, values: Sequence[Any]) -> list[str]:
        """The row's variables in COPY text format (feed `template.format(*rendered)`)."""
        return [r(v) for r, v in zip(self.renderers, values, strict=True)]

    def line(self, values: Sequence[Any]) -> str:
        return self.template.format(*self.render(values))


def copy_supported(model: type[models.Model]) -> bool:
    return connections[router.db_for_write(model)].vendor == "postgresql"


def copy_write(model: type[models.Model], table: CopyRows, rows: Sequence[Sequence[Any]]) -> None:
    """COPY `rows` (each the values of `table`'s variables, in order) into `model`'s table."""
    line = table.line
    copy_lines(model, table, "".join([line(row) for row in rows]))


def copy_lines(model: type[models.Model], table: CopyRows, data: str) -> None:
    """COPY lines already rendered with `table` (its template) into `model`'s table. A database
    error is Django's, as the ORM raises it (IntegrityError for a violated constraint)."""
    connection = connections[router.db_for_write(model)]
    with (
        connection.wrap_database_errors,
        connection.cursor() as cursor,
        cursor.copy(table.sql) as copy,
    ):
        copy.write(data)


def ids_draw(model: type[models.Model], n: int) -> list[int]:
    """`n` new primary keys from the table's identity sequence, ascending."""
    if n == 0:
        return []
    with connections[router.db_for_write(model)].cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [model._meta.db_table, model._meta.pk.column, n],
        )
        return sorted(row[0] for row in cursor.fetchall())


def copy_insert(
    *,
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    constants: Mapping[str, Any] | None = None,
    omit: Sequence[str] = (),
) -> None:
    """Insert `rows` (values of `columns`, in order) by one COPY; no history, no signals."""
    if rows:
        copy_write(model, CopyRows(model, variables=columns, constants=constants, omit=omit), rows)
