"""Salesforce records: validate a write body, render a record, translate SOQL to the ORM.

Vendor behaviour followed: REST API Developer Guide, "Insert or Update (Upsert) a Record Using
an External ID" and "Status Codes and Error Responses"
(https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal
from typing import Any

from django.db.models import F, Q, QuerySet
from django.db.models.fields.json import KeyTransform

from sandbox import storage
from sandbox.core.params import aware_datetime
from sandbox.core.protocol import SandboxError
from sandbox.models import SandboxRecord
from sandbox.salesforce.schema import (
    EXTERNAL_ID_FIELD,
    OBJECTS,
    SYSTEM,
    FieldSpec,
    ObjectSpec,
    sf_id,
    sf_id_parse,
)
from sandbox.salesforce.soql import SoqlQuery

_COLUMNS = {
    "Id": "pk",
    "CreatedDate": "created_at",
    "LastModifiedDate": "updated_at",
    "SystemModstamp": "updated_at",
    "IsDeleted": "deleted",
    EXTERNAL_ID_FIELD: "external_id",
}
_NUMERIC = {"currency", "double", "percent", "int"}


def sf_datetime(value: dt.datetime) -> str:
    """Salesforce's dateTime format: 2024-01-31T10:00:00.000+0000."""
    value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def record_render(
    *, obj: ObjectSpec, record: SandboxRecord, fields: list[FieldSpec] | None, version: str
) -> dict[str, Any]:
    """A record as the REST API returns it: attributes first, then the fields asked for."""
    rendered: dict[str, Any] = {
        "attributes": {
            "type": obj.name,
            "url": f"/services/data/{version}/sobjects/{obj.name}/{sf_id(obj, record.pk)}",
        }
    }
    for spec in fields if fields is not None else obj.fields.values():
        rendered[spec.name] = field_value(obj=obj, record=record, spec=spec)
    return rendered


def field_value(*, obj: ObjectSpec, record: SandboxRecord, spec: FieldSpec) -> Any:
    name = spec.name
    if name == "Id":
        return sf_id(obj, record.pk)
    if name == "CreatedDate":
        return sf_datetime(record.created_at)
    if name in {"LastModifiedDate", "SystemModstamp"}:
        return sf_datetime(record.updated_at)
    if name == "IsDeleted":
        return record.deleted
    if name == EXTERNAL_ID_FIELD:
        return record.external_id
    return record.data.get(name)


# -- writes ------------------------------------------------------------------------------------
def body_clean(*, obj: ObjectSpec, body: Any, creating: bool) -> dict[str, Any]:
    """The writable fields of a request body, by canonical name; raises Salesforce's 400s."""
    if not isinstance(body, dict):
        raise SandboxError(
            400,
            "JSON_PARSER_ERROR",
            "Cannot deserialize instance of SObject from a non-object value at [line:1, column:1]",
        )
    cleaned: dict[str, Any] = {}
    for key, value in body.items():
        if key == "attributes":
            continue
        spec = obj.field(key)
        if spec is None:
            raise SandboxError(
                400, "INVALID_FIELD", f"No such column '{key}' on sobject of type {obj.name}"
            )
        if not spec.writable:
            raise SandboxError(
                400,
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {spec.name}. Please check the security "
                "settings of this field and verify that it is read/write for your profile or "
                "permission set.",
                fields=[spec.name],
            )
        cleaned[spec.name] = _value_clean(spec, value)
    if creating:
        missing = [
            spec.name
            for spec in obj.fields.values()
            if spec.required and cleaned.get(spec.name) is None
        ]
        if missing:
            raise SandboxError(
                400,
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                fields=missing,
            )
    else:
        blanked = [
            name for name, value in cleaned.items() if value is None and obj.fields[name].required
        ]
        if blanked:
            raise SandboxError(
                400,
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(blanked)}]",
                fields=blanked,
            )
    return cleaned


def _deserialize_error(spec: FieldSpec, kind: str, value: Any) -> SandboxError:
    return SandboxError(
        400,
        "JSON_PARSER_ERROR",
        f"Cannot deserialize instance of {kind} from {_json_kind(value)} value {value!r} or "
        f"request may be missing a required field (field {spec.name})",
    )


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "VALUE_TRUE" if value else "VALUE_FALSE"
    if isinstance(value, str):
        return "VALUE_STRING"
    if isinstance(value, int | float):
        return "VALUE_NUMBER"
    if isinstance(value, list):
        return "START_ARRAY"
    return "START_OBJECT"


def _value_clean(spec: FieldSpec, value: Any) -> Any:
    if value is None:
        return None
    kind = spec.type
    if kind in _NUMERIC:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _deserialize_error(spec, "double" if kind != "int" else "int", value)
        if kind == "int" and not float(value).is_integer():
            raise _deserialize_error(spec, "int", value)
        return int(value) if kind == "int" else value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _deserialize_error(spec, "boolean", value)
        return value
    if not isinstance(value, str):
        raise _deserialize_error(spec, "String", value)
    if kind == "date":
        try:
            return dt.date.fromisoformat(value).isoformat()
        except ValueError:
            raise _deserialize_error(spec, "date", value) from None
    if kind == "datetime":
        moment = aware_datetime(value)
        if moment is None:
            raise _deserialize_error(spec, "dateTime", value)
        return sf_datetime(moment)
    if kind == "picklist" and value not in spec.picklist:
        raise SandboxError(
            400,
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            f"{spec.name}: bad value for restricted picklist field: {value}",
            fields=[spec.name],
        )
    if kind == "reference":
        target = OBJECTS[spec.references]
        pk = sf_id_parse(value, expected=target)
        if pk is None:
            raise SandboxError(
                400,
                "MALFORMED_ID",
                f"{spec.name}: id value of incorrect type: {value}",
                fields=[spec.name],
            )
        if storage.record_get(system=SYSTEM, object_type=target.name, record_id=pk) is None:
            raise SandboxError(
                400,
                "INVALID_CROSS_REFERENCE_KEY",
                f"invalid cross reference id: {value}",
                fields=[spec.name],
            )
        return sf_id(target, pk)
    if len(value) > spec.length:
        raise SandboxError(
            400,
            "STRING_TOO_LONG",
            f"{spec.name}: data value too large: {value[:40]}… (max length={spec.length})",
            fields=[spec.name],
        )
    return value


def columns_for(*, obj: ObjectSpec, data: dict[str, Any]) -> dict[str, Any]:
    """The promoted columns (status, parent_id) of a record with this data."""
    columns: dict[str, Any] = {}
    if obj.status_field:
        columns["status"] = data.get(obj.status_field) or ""
    if obj.parent_field:
        reference = data.get(obj.parent_field)
        columns["parent_id"] = sf_id_parse(reference) if reference else None
    return columns


def derived_fields(*, obj: ObjectSpec, data: dict[str, Any]) -> dict[str, Any]:
    """Fields Salesforce computes (IsClosed/IsWon from the stage)."""
    if obj.name == "Opportunity" and "StageName" in data:
        stage = data["StageName"]
        return {"IsClosed": stage in {"Closed Won", "Closed Lost"}, "IsWon": stage == "Closed Won"}
    return {}


# -- SOQL -> ORM -------------------------------------------------------------------------------
def _target(obj: ObjectSpec, spec: FieldSpec) -> tuple[str, Any]:
    """(lookup name, expression or None) for a field: a column, or a key of `data`."""
    if spec.name in _COLUMNS:
        return _COLUMNS[spec.name], None
    if spec.name == obj.status_field:
        return "status", None
    if spec.name == obj.parent_field:
        return "parent_id", None
    alias = "f_" + spec.name.lower()
    if spec.type in _NUMERIC or spec.type == "boolean":
        return alias, KeyTransform(spec.name, "data")
    return alias, storage.data_text(spec.name)


def _operand(obj: ObjectSpec, spec: FieldSpec, column: str, value: Any) -> Any:
    if value is None:
        return None
    if column in {"pk", "parent_id"}:
        expected = obj if column == "pk" else OBJECTS[spec.references]
        pk = sf_id_parse(value, expected=expected)
        if pk is None:
            raise SandboxError(400, "INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {value}")
        return pk
    if column in {"created_at", "updated_at"}:
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, Decimal):
        if value == value.to_integral_value() and abs(value) < 2**53:
            return int(value)
        number = float(value)
        if not math.isfinite(number):
            raise SandboxError(400, "NUMBER_OUTSIDE_VALID_RANGE", f"number too large: {value}")
        return number
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


_LOOKUPS = {"=": "exact", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}


def soql_queryset(query: SoqlQuery) -> QuerySet:
    """The records a query selects, ordered (ORDER BY, then id), without LIMIT/OFFSET."""
    obj = query.obj
    qs = storage.record_queryset(system=SYSTEM, object_type=obj.name)
    aliases: dict[str, Any] = {}

    def target(spec: FieldSpec) -> str:
        name, expression = _target(obj, spec)
        if expression is not None:
            aliases[name] = expression
        return name

    conditions = Q()
    for cond in query.where:
        name = target(cond.field)
        if cond.op in {"IN", "NOT IN"}:
            values = [_operand(obj, cond.field, name, v) for v in cond.value]
            q = Q(**{f"{name}__in": [v for v in values if v is not None]})
            if None in values:
                q |= Q(**{f"{name}__isnull": True})
            conditions &= q if cond.op == "IN" else ~q
            continue
        value = _operand(obj, cond.field, name, cond.value)
        if cond.op == "LIKE":
            conditions &= Q(**{f"{name}__iregex": _like_regex(value)})
        elif value is None:
            conditions &= Q(**{f"{name}__isnull": cond.op == "="})
        elif cond.op == "!=":
            conditions &= ~Q(**{name: value})
        else:
            conditions &= Q(**{f"{name}__{_LOOKUPS[cond.op]}": value})
    ordering = []
    for order in query.order_by:
        expression = F(target(order.field))
        if order.descending:
            ordering.append(expression.desc(nulls_last=order.nulls_last is not False))
        else:
            ordering.append(expression.asc(nulls_first=order.nulls_last is not True))
    if aliases:
        qs = qs.alias(**aliases)
    return qs.filter(conditions).order_by(*ordering, "pk")


def _like_regex(pattern: str) -> str:
    """SOQL LIKE (% and _ wildcards; matched case-insensitively) as a regular expression."""
    parts = [".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern]
    return "^" + "".join(parts) + "$"
