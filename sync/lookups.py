"""`field__any=[…]`: membership in one array parameter.

`field__in=[…]` with a batch's thousands of values becomes thousands of placeholders, which the
driver parses on every query. On PostgreSQL `field__any` sends one array (`field = ANY(%s)`):
the planner sees it as a constant, so it hashes it when it filters a scan and probes an index
with it otherwise, whatever the table's statistics say. (`IN (SELECT unnest(%s))`, the earlier
form, is planned as a semi-join that becomes a nested loop over every row while a table that
has just grown has no statistics yet: 0.6-8 s a query in the engine benchmark.) Elsewhere
`field__any` is `field__in`.
"""

from __future__ import annotations

import re

from django.db.models import CharField, Field, IntegerField, Lookup, TextField
from django.db.models.fields import AutoFieldMixin
from django.db.models.lookups import In

_SIZE = re.compile(r"\(.*?\)")
_TEXT_PREP = (CharField.get_prep_value, TextField.get_prep_value)
# Each returns a prepared int as it is on PostgreSQL, where the fast path applies.
_INT_DB_PREP = (IntegerField.get_db_prep_value, AutoFieldMixin.get_db_prep_value)


def _unchanged_by_field(field: Field, values: list) -> bool:
    """Whether the field's get_prep_value and get_db_prep_value would return these values as
    they are: plain ints for Django's own integer fields, plain str for its own text fields.
    Checking costs ~30 ns a value; the two calls cost ~0.5 µs, for thousands of values a
    batch (bench/README.md)."""
    kind = type(field)
    if (
        isinstance(field, IntegerField)
        and kind.get_prep_value is IntegerField.get_prep_value
        and kind.get_db_prep_value in _INT_DB_PREP
    ):
        return all(type(v) is int for v in values)
    if (
        isinstance(field, CharField | TextField)
        and kind.get_prep_value in _TEXT_PREP
        and kind.get_db_prep_value is Field.get_db_prep_value
    ):
        return all(type(v) is str for v in values)
    return False


@Field.register_lookup
class AnyOf(Lookup):
    lookup_name = "any"
    prepare_rhs = False

    def get_prep_lookup(self):
        field = self.lhs.output_field
        values = list(self.rhs)
        self.prepared_as_is = _unchanged_by_field(field, values)
        return values if self.prepared_as_is else [field.get_prep_value(v) for v in values]

    def as_sql(self, compiler, connection):
        if connection.vendor != "postgresql":
            return In(self.lhs, list(self.rhs)).as_sql(compiler, connection)
        lhs, lhs_params = self.process_lhs(compiler, connection)
        field = self.lhs.output_field
        values = (
            self.rhs
            if self.prepared_as_is
            else [field.get_db_prep_value(v, connection, prepared=True) for v in self.rhs]
        )
        # The element type without its size: `varchar(255)` would truncate a longer value and
        # `numeric(6, 2)` round one, making them match rows `IN` would not.
        db_type = _SIZE.sub("", field.db_type(connection))
        return f"{lhs} = ANY(%s::{db_type}[])", [*lhs_params, array_literal(values)]


def _element(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def array_literal(values: list) -> str | list:
    """A batch's values as one PostgreSQL array literal (`{1,2}`, `{"a","b"}`), which the
    server parses in one go, instead of a list the driver adapts value by value (a few µs a
    value in Python). Only plain integers and text take this form; other types (and None)
    keep the list."""
    if all(type(v) is int for v in values):
        return "{" + ",".join(map(str, values)) + "}"
    if all(type(v) is str for v in values):
        return "{" + ",".join(map(_element, values)) + "}"
    return values
