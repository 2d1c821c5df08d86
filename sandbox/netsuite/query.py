"""SuiteQL and the record service's `q` filter, translated to the ORM; SuiteQL row rendering.

Both end as the same conditions (`suiteql.Comparison` / `Logical`) over one `schema.Table`.
SuiteQL answers as NetSuite does: column names in lower case, every value a string, booleans
"T"/"F", dates in the default "M/D/YYYY" preference, empty values left out.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import BigIntegerField, F, FloatField, Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from sandbox.models import SandboxRecord
from sandbox.netsuite.schema import (
    SYSTEM,
    TRANSACTION_TYPES,
    FieldSpec,
    RecordSpec,
    Table,
)
from sandbox.netsuite.suiteql import (
    Comparison,
    Logical,
    SelectItem,
    SuiteQLError,
    SuiteQLQuery,
    date_format,
)
from sandbox.router import SANDBOX_DB

_COLUMNS = {
    "id": ("pk", "integer"),
    "externalid": ("external_id", "string"),
    "datecreated": ("created_at", "datetime"),
    "lastmodifieddate": ("updated_at", "datetime"),
}
_LOOKUPS = {"=": "exact", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}


@dataclass(frozen=True)
class Target:
    lookup: str  # ORM path: "pk", "updated_at", "data__companyName", "object_type"
    kind: str
    name: str  # column name as answered
    spec: FieldSpec | None = None


def target_resolve(table: Table, column: str) -> Target:
    """The ORM target of a column of `table`; raises SuiteQLError for an unknown column."""
    column = column.lower()
    if column in _COLUMNS:
        lookup, kind = _COLUMNS[column]
        return Target(lookup, kind, column)
    if column in {"type", "recordtype"} and table.name == "transaction":
        return Target("object_type", "type", column)
    for spec in table.specs:
        field_spec = spec.column(column)
        if field_spec is not None and field_spec.kind != "sublist":
            return Target(f"data__{field_spec.name}", field_spec.kind, column, field_spec)
    raise SuiteQLError(f"Field '{column}' for record '{table.name}' was not found.")


def table_queryset(table: Table) -> QuerySet:
    return SandboxRecord.objects.using(SANDBOX_DB).filter(
        system=SYSTEM, object_type__in=[spec.name for spec in table.specs], deleted=False
    )


# -- conditions --------------------------------------------------------------------------------
def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value)
    for pattern in ("%Y-%m-%d", "%m/%d/%Y"):
        try:
            return dt.datetime.strptime(text, pattern).replace(tzinfo=dt.UTC).date()
        except ValueError:
            continue
    raise SuiteQLError(f"Invalid date value '{text}'")


def _as_datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, str) and "T" in value:
        try:
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise SuiteQLError(f"Invalid date value '{value}'") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    day = _as_date(value)
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _as_bool(value: Any) -> bool:
    text = str(value).strip().upper()
    if text in {"T", "TRUE", "Y"}:
        return True
    if text in {"F", "FALSE", "N"}:
        return False
    raise SuiteQLError(f"Invalid boolean value '{value}': use 'T' or 'F'")


def _coerce(target: Target, value: Any) -> Any:
    kind = target.kind
    if kind == "integer" and target.lookup == "pk":
        try:
            return int(Decimal(str(value)))
        except ArithmeticError:
            raise SuiteQLError(f"Invalid number '{value}' for {target.name}") from None
    if kind == "datetime":
        return _as_datetime(value)
    if kind == "type":
        spec = TRANSACTION_TYPES.get(str(value))
        return spec.name if spec else f"?{value}"
    if kind == "boolean":
        return _as_bool(value)
    if kind in {"number", "integer"}:
        try:
            number = Decimal(str(value))
        except ArithmeticError:
            raise SuiteQLError(f"Invalid number '{value}' for {target.name}") from None
        return int(number) if number == number.to_integral_value() else float(number)
    if kind == "date":
        return _as_date(value).isoformat()
    if isinstance(value, Decimal):
        return str(int(value)) if value == value.to_integral_value() else str(value)
    return str(value)


def _like_regex(pattern: str) -> str:
    parts = [".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern]
    return "^" + "".join(parts) + "$"


def _comparison_q(table: Table, cond: Comparison) -> Q:
    target = target_resolve(table, cond.column)
    path, op = target.lookup, cond.op
    if op in {"is null", "is not null"}:
        q = Q(**{f"{path}__isnull": True})
        return q if op == "is null" else ~q
    if op in {"like", "not like"}:
        q = Q(**{f"{path}__iregex": _like_regex(str(cond.value))})
        return q if op == "like" else ~q
    if op in {"in", "not in"}:
        values = [_coerce(target, v) for v in cond.value]
        q = Q(**{f"{path}__in": values})
        return q if op == "in" else ~q
    if op == "between":
        low, high = (_coerce(target, v) for v in cond.value)
        return Q(**{f"{path}__gte": low, f"{path}__lte": high})
    value = _coerce(target, cond.value)
    if target.kind == "boolean" and op in {"=", "!="}:
        # An unset checkbox is false, as in NetSuite.
        q = Q(**{path: True}) if value else Q(**{path: False}) | Q(**{f"{path}__isnull": True})
        return q if op == "=" else ~q
    if op == "!=":
        return ~Q(**{path: value})
    if op not in _LOOKUPS:
        raise SuiteQLError(f"Unsupported operator {op}")
    return Q(**{f"{path}__{_LOOKUPS[op]}": value})


def condition_q(table: Table, node: Any) -> Q:
    if node is None:
        return Q()
    if isinstance(node, Comparison):
        return _comparison_q(table, node)
    if not isinstance(node, Logical):  # pragma: no cover - the parsers build only these
        raise SuiteQLError(f"Unsupported condition {node!r}")
    if node.op == "not":
        return ~condition_q(table, node.children[0])
    combined = condition_q(table, node.children[0])
    for child in node.children[1:]:
        part = condition_q(table, child)
        combined = combined & part if node.op == "and" else combined | part
    return combined


def _order_expression(target: Target):
    if not target.lookup.startswith("data__"):
        return F(target.lookup)
    text = KeyTextTransform(target.spec.name, "data")
    if target.kind in {"number"}:
        return Cast(text, FloatField())
    if target.kind in {"integer", "ref"}:
        return Cast(text, BigIntegerField())
    return text


def query_queryset(table: Table, *, where: Any, order_by: list[tuple[str, bool]]) -> QuerySet:
    """Rows of `table` matching `where`, ordered (then by id, so that paging is stable)."""
    qs = table_queryset(table).filter(condition_q(table, where))
    ordering = []
    for column, descending in order_by:
        expression = _order_expression(target_resolve(table, column))
        ordering.append(expression.desc(nulls_last=True) if descending else expression.asc())
    return qs.order_by(*ordering, "pk")


# -- rendering ---------------------------------------------------------------------------------
def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "T" if value else "F"
    if isinstance(value, float):
        return format(Decimal(repr(value)).normalize(), "f")
    return str(value)


def _us_date(value: dt.date) -> str:
    return f"{value.month}/{value.day}/{value.year}"


def _raw(record: SandboxRecord, target: Target) -> Any:
    if target.lookup == "pk":
        return record.pk
    if target.lookup == "external_id":
        return record.external_id
    if target.lookup in {"created_at", "updated_at"}:
        return getattr(record, target.lookup)
    if target.lookup == "object_type":
        spec = next((s for s in TRANSACTION_TYPES.values() if s.name == record.object_type), None)
        return spec.transaction_type if spec else None
    value = record.data.get(target.spec.name)
    if target.kind == "boolean" and value is None:
        return False
    if target.kind == "date" and value:
        return dt.date.fromisoformat(value)
    return value


def _formatted(value: Any, item: SelectItem | None) -> str | None:
    if item is not None and item.function == "to_char" and isinstance(value, dt.date):
        return value.strftime(date_format(item.format))
    if isinstance(value, dt.datetime):
        return _us_date(value.astimezone(dt.UTC).date())
    if isinstance(value, dt.date):
        return _us_date(value)
    return _text(value)


def select_targets(table: Table, query: SuiteQLQuery, spec: RecordSpec | None) -> list:
    """(answer key, target, item) per selected column; SELECT * lists every column of the type."""
    if query.items is not None:
        return [(item.alias, target_resolve(table, item.column), item) for item in query.items]
    specs = (spec,) if spec is not None else table.specs
    pairs, seen = [], set()
    for record_spec in specs:
        for field_spec in record_spec.fields:
            if field_spec.kind == "sublist" or field_spec.column in seen:
                continue
            seen.add(field_spec.column)
            pairs.append((field_spec.column, target_resolve(table, field_spec.column), None))
    if table.name == "transaction":
        pairs.append(("type", target_resolve(table, "type"), None))
    return pairs


def row_render(record: SandboxRecord, targets: list) -> dict[str, Any]:
    row: dict[str, Any] = {"links": []}
    for key, target, item in targets:
        text = _formatted(_raw(record, target), item)
        if text is not None:
            row[key] = text
    return row
