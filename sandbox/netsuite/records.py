"""NetSuite record bodies: validate a write body, load references, render a record as REST does.

Follows "Working with Records" and "Error Handling in REST Web Services" of the REST web
services guide (https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/
section_156570709583.html): a bad value is a 400 `INVALID_CONTENT` whose `o:errorPath` points at
the field ("item.items[0].item"); a missing mandatory field is a 400 `USER_ERROR`
("Please enter value(s) for: …").
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sandbox import storage
from sandbox.core.protocol import Request, SandboxError
from sandbox.models import SandboxRecord
from sandbox.netsuite.schema import (
    RECORDS,
    SYSTEM,
    FieldSpec,
    RecordSpec,
    record_spec,
)
from sandbox.router import SANDBOX_DB

INVALID_CONTENT = "INVALID_CONTENT"
USER_ERROR = "USER_ERROR"
NONEXISTENT_ID = "NONEXISTENT_ID"


def invalid(detail: str, path: str) -> SandboxError:
    return SandboxError(400, INVALID_CONTENT, detail, fields=[path])


def invalid_value(value: Any, path: str) -> SandboxError:
    field_name = path.rsplit(".", 1)[-1]
    return invalid(
        "Error while accessing a resource. You have entered an Invalid Field Value "
        f"{value} for the following field: {field_name}",
        path,
    )


def user_error(detail: str, path: str) -> SandboxError:
    return SandboxError(
        400, USER_ERROR, f"Error while accessing a resource. {detail}", fields=[path]
    )


def _label(name: str) -> str:
    """'caseTaskEvent' -> 'Case Task Event' (NetSuite names fields by label in messages)."""
    out = "".join(" " + ch if ch.isupper() else ch for ch in name)
    return out[:1].upper() + out[1:]


def required_missing(name: str, path: str) -> SandboxError:
    return user_error(f"Please enter value(s) for: {_label(name)}", path)


# -- references --------------------------------------------------------------------------------
@dataclass
class _Memo:
    """What one write request has read: records by internal id (None: no live record has that
    id), and the accounting periods covering a date. A timeBill names its employee, project,
    task and subsidiary, and the rules look at several of them again (the employee's
    department, the project's customer): each is read once per request."""

    records: dict[int, SandboxRecord | None] = field(default_factory=dict)
    periods: dict[str, list[dict]] = field(default_factory=dict)


_memo: ContextVar[_Memo | None] = ContextVar("netsuite_records_memo", default=None)

# Every field name that holds a reference in some record type: what `upsert_prefetch` follows.
_REFERENCE_KEYS = sorted(
    {
        field_spec.name
        for spec in RECORDS.values()
        for field_spec in spec.fields
        if field_spec.kind == "ref"
    }
)


@contextlib.contextmanager
def records_memo() -> Iterator[None]:
    """Within the block (one write request), `records_by_id` reads each record at most once.

    Nested blocks share the outer memo. Writes in the block change the memo's instances in
    place (storage.record_update), so later checks see them.
    """
    if _memo.get() is not None:
        yield
        return
    token = _memo.set(_Memo())
    try:
        yield
    finally:
        _memo.reset(token)


def _live(ids: set[int]) -> dict[int, SandboxRecord]:
    return storage.records_get(system=SYSTEM, ids=ids)


def _covering(tran_date: str) -> tuple[str, str, list[str]]:
    start, end = storage.data_text_sql("startDate"), storage.data_text_sql("endDate")
    closed = storage.data_text_sql("closed")  # JSON true: 'true' on PostgreSQL, 1 on SQLite
    return (
        "accountingPeriod",
        f"{start} <= %s AND {end} >= %s AND CAST({closed} AS TEXT) IN ('true', '1')",
        [tran_date, tran_date],
    )


def closed_periods_covering(tran_date: str) -> list[dict]:
    """The data of the live closed accounting periods whose dates cover `tran_date` (of any
    subsidiary), in id order."""
    memo = _memo.get()
    if memo is not None and tran_date in memo.periods:
        return memo.periods[tran_date]
    object_type, where, params = _covering(tran_date)
    periods = storage.records_data(
        system=SYSTEM, object_type=object_type, where=where, params=params
    )
    if memo is not None:
        memo.periods[tran_date] = periods
    return periods


def upsert_prefetch(*, spec: RecordSpec, external_id: str, body: Any) -> SandboxRecord | None:
    """Read in one go (one query on PostgreSQL) what an upsert by external id reads: the record
    with that external id, returned (None if there is none), and, into the active memo, the
    records the body refers to, the records those refer to, and the periods covering the
    body's date."""
    memo = _memo.get()
    if memo is None:
        raise RuntimeError("upsert_prefetch needs records_memo()")
    ids = _body_ref_ids(spec, body) if isinstance(body, dict) else set()
    tran_date = body.get("tranDate") if isinstance(body, dict) else None
    dated = spec.in_closed_period_check and isinstance(tran_date, str)
    related = storage.records_related(
        system=SYSTEM,
        ids=ids,
        object_type=spec.name,
        external_id=external_id,
        reference_keys=_REFERENCE_KEYS,
        extra=_covering(tran_date) if dated else None,
    )
    target = None
    for pk, record in related.records.items():
        memo.records.setdefault(pk, record)
        if record.object_type == spec.name and record.external_id == external_id:
            target = record
    # What was asked for and not found does not exist (live): no second look.
    first = [related.records[pk] for pk in ids if pk in related.records]
    for pk in ids:
        memo.records.setdefault(pk, None)
    for record in [*first, *([target] if target is not None else [])]:
        for key in _REFERENCE_KEYS:
            value = record.data.get(key)
            if isinstance(value, str) and value.isdigit() and len(value) <= 18:
                memo.records.setdefault(int(value), None)
    if dated:
        memo.periods[tran_date] = [record.data for record in related.extra]
    return target


def records_by_id(
    ids: Iterable[int], *, types: Iterable[str] | None = None
) -> dict[int, SandboxRecord]:
    """Live NetSuite records by internal id (one query, none for ids the memo holds)."""
    wanted = {int(i) for i in ids}
    if not wanted:
        return {}
    memo = _memo.get()
    if memo is None:
        found = _live(wanted)
    else:
        missing = wanted - memo.records.keys()
        if missing:
            loaded = _live(missing)
            memo.records.update({pk: loaded.get(pk) for pk in missing})
        found = {pk: row for pk in wanted if (row := memo.records[pk]) is not None}
    if types is None:
        return found
    allowed = set(types)
    return {pk: row for pk, row in found.items() if row.object_type in allowed}


def record_find(record_id: Any, *types: str) -> SandboxRecord | None:
    try:
        pk = int(record_id)
    except (TypeError, ValueError):
        return None
    return records_by_id([pk], types=types).get(pk)


def _body_ref_ids(spec: RecordSpec, body: dict[str, Any]) -> set[int]:
    """The internal ids a request body refers to by {"id": …} (sublist lines included)."""
    ids: set[int] = set()

    def add(value: Any) -> None:
        raw = value.get("id") if isinstance(value, dict) else None
        if isinstance(raw, int | str) and not isinstance(raw, bool) and str(raw).isdigit():
            ids.add(int(raw))

    for key, value in body.items():
        field_spec = spec.field(key)
        if field_spec is None:
            continue
        if field_spec.kind == "ref":
            add(value)
        elif field_spec.kind == "sublist" and isinstance(value, dict):
            items = value.get("items")
            for item in items if isinstance(items, list) else []:
                if isinstance(item, dict):
                    for line_spec in field_spec.line:
                        if line_spec.kind == "ref":
                            add(item.get(line_spec.name))
    return ids


def records_prefetch(*, spec: RecordSpec, body: Any) -> None:
    """Load into the memo (if one is active) what a write body refers to, and what those
    records refer to in turn (a project's customer, an employee's department): two queries."""
    if _memo.get() is None or not isinstance(body, dict):
        return
    first = records_by_id(_body_ref_ids(spec, body))
    second: set[int] = set()
    for row in first.values():
        target = record_spec(row.object_type)
        if target is not None:
            second |= _referenced_ids(target, row.data)
    records_by_id(second)


def _reference_clean(spec: FieldSpec, value: Any, path: str) -> str:
    """A reference body value ({"id": "5"} or {"externalId": "X"}) as the stored id string."""
    if not isinstance(value, dict) or not ({"id", "externalId"} & set(value)):
        raise invalid(
            f"Error while accessing a resource. Invalid value for the reference field {spec.name}:"
            ' expected an object with "id" or "externalId".',
            path,
        )
    if "id" in value:
        raw = value["id"]
        if isinstance(raw, bool) or not isinstance(raw, int | str) or not str(raw).isdigit():
            raise invalid_value(raw, path)
        found = record_find(raw, *spec.targets)
    else:
        raw = value["externalId"]
        if not isinstance(raw, str):
            raise invalid_value(raw, path)
        found = (
            SandboxRecord.objects.using(SANDBOX_DB)
            .filter(system=SYSTEM, object_type__in=spec.targets, external_id=raw, deleted=False)
            .first()
        )
    if found is None:
        raise invalid_value(raw, path)
    return str(found.pk)


def _select_clean(spec: FieldSpec, value: Any, path: str) -> str:
    option = value.get("id") if isinstance(value, dict) else value
    if option is not None and not isinstance(option, bool):
        option = str(option)
    if option is None or spec.option_name(option) is None:
        raise invalid_value(option, path)
    return option


def _number_clean(spec: FieldSpec, value: Any, path: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise invalid_value(value, path)
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise invalid_value(value, path) from None
    if not number.is_finite():
        raise invalid_value(value, path)
    if spec.kind == "integer":
        if number != number.to_integral_value():
            raise invalid_value(value, path)
        return int(number)
    return int(number) if number == number.to_integral_value() else float(number)


def value_clean(spec: FieldSpec, value: Any, path: str) -> Any:
    """One body value as stored; raises INVALID_CONTENT naming `path`."""
    if value is None:
        return None
    kind = spec.kind
    if kind == "ref":
        return _reference_clean(spec, value, path)
    if kind == "select":
        return _select_clean(spec, value, path)
    if kind in {"number", "integer"}:
        return _number_clean(spec, value, path)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise invalid_value(value, path)
        return value
    if kind == "sublist":
        return _sublist_clean(spec, value, path)
    if not isinstance(value, str):
        raise invalid_value(value, path)
    if kind == "date":
        try:
            return dt.date.fromisoformat(value).isoformat()
        except ValueError:
            raise invalid_value(value, path) from None
    if len(value) > (4000 if kind == "text" else spec.length):
        raise invalid(
            f"Error while accessing a resource. The value of {spec.name} is too long.", path
        )
    return value


def _sublist_clean(spec: FieldSpec, value: Any, path: str) -> list[dict]:
    items = value.get("items") if isinstance(value, dict) else None
    if not isinstance(items, list):
        raise invalid(
            f"Error while accessing a resource. The sublist {spec.name} expects "
            '{"items": [...]}.',
            path,
        )
    lines = []
    by_name = {line.name: line for line in spec.line}
    for index, item in enumerate(items):
        line_path = f"{path}.items[{index}]"
        if not isinstance(item, dict):
            raise invalid_value(item, line_path)
        cleaned: dict[str, Any] = {}
        for key, raw in item.items():
            if key == "links":
                continue
            field_spec = by_name.get(key)
            if field_spec is None or not field_spec.writable:
                raise _unknown_field(key, spec.name, f"{line_path}.{key}")
            cleaned[key] = value_clean(field_spec, raw, f"{line_path}.{key}")
        for field_spec in spec.line:
            if field_spec.required and cleaned.get(field_spec.name) is None:
                raise required_missing(field_spec.name, f"{line_path}.{field_spec.name}")
        cleaned["line"] = index + 1
        lines.append({k: v for k, v in cleaned.items() if v is not None})
    return lines


def _unknown_field(name: str, owner: str, path: str) -> SandboxError:
    return invalid(
        f"Error while accessing a resource. Field '{name}' for record '{owner}' was not found. "
        "Reason: NOT_FOUND - Field does not exist or is read-only.",
        path,
    )


def body_clean(*, spec: RecordSpec, body: Any) -> dict[str, Any]:
    """The writable fields of a request body, cleaned (refs resolved to id strings).

    Values given as null are kept as None (they clear the field). Mandatory fields are checked
    later, on the merged record, by `required_check`.
    """
    if not isinstance(body, dict):
        raise invalid("Invalid content in the request body: a JSON object is expected.", "")
    records_prefetch(spec=spec, body=body)
    cleaned: dict[str, Any] = {}
    for key, value in body.items():
        if key == "links":
            continue
        field_spec = spec.field(key)
        if field_spec is None or not field_spec.writable:
            raise _unknown_field(key, spec.name, key)
        cleaned[key] = value_clean(field_spec, value, key)
    return cleaned


def required_check(*, spec: RecordSpec, data: dict[str, Any]) -> None:
    for field_spec in spec.fields:
        if field_spec.required and data.get(field_spec.name) in (None, ""):
            raise required_missing(field_spec.name, field_spec.name)


# -- rendering ---------------------------------------------------------------------------------
def ns_datetime(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def record_url(base_url: str, record_type: str, record_id: int | str) -> str:
    return f"{base_url}/services/rest/record/v1/{record_type}/{record_id}"


def _referenced_ids(spec: RecordSpec, data: dict[str, Any]) -> set[int]:
    ids: set[int] = set()
    for field_spec in spec.fields:
        value = data.get(field_spec.name)
        if field_spec.kind == "ref" and value:
            ids.add(int(value))
        elif field_spec.kind == "sublist" and isinstance(value, list):
            for line_spec in field_spec.line:
                if line_spec.kind == "ref":
                    ids.update(
                        int(line[line_spec.name]) for line in value if line.get(line_spec.name)
                    )
    return ids


def _refname(row: SandboxRecord | None) -> str | None:
    if row is None:
        return None
    target = record_spec(row.object_type)
    if target is None or not target.name_field:
        return str(row.pk)
    return row.data.get(target.name_field) or str(row.pk)


def _rendered_value(spec: FieldSpec, value: Any, base_url: str, refs: dict) -> Any:
    if spec.kind == "ref":
        row = refs.get(int(value))
        rendered = {"id": str(value), "refName": _refname(row)}
        if row is not None:
            rendered["links"] = [
                {"rel": "self", "href": record_url(base_url, row.object_type, value)}
            ]
        return {k: v for k, v in rendered.items() if v is not None}
    if spec.kind == "select":
        return {"id": value, "refName": spec.option_name(value)}
    return value


def record_render(
    *, request: Request, spec: RecordSpec, record: SandboxRecord, expand: bool = False
) -> dict[str, Any]:
    """A record as GET /record/v1/{type}/{id} returns it (empty fields left out)."""
    base_url = request.base_url
    url = record_url(base_url, spec.name, record.pk)
    data = record.data
    refs = records_by_id(_referenced_ids(spec, data))
    rendered: dict[str, Any] = {"links": [{"rel": "self", "href": url}], "id": str(record.pk)}
    if record.external_id is not None:
        rendered["externalId"] = record.external_id
    rendered["dateCreated"] = ns_datetime(record.created_at)
    rendered["lastModifiedDate"] = ns_datetime(record.updated_at)
    for field_spec in spec.fields:
        if field_spec.name in rendered or field_spec.name == "id":
            continue
        value = data.get(field_spec.name)
        if field_spec.kind == "sublist":
            rendered[field_spec.name] = _sublist_render(
                field_spec, value or [], f"{url}/{field_spec.name}", base_url, refs, expand
            )
            continue
        if value is None:
            continue
        rendered[field_spec.name] = _rendered_value(field_spec, value, base_url, refs)
    return request.drift(rendered)


def _sublist_render(spec, lines, url, base_url, refs, expand) -> dict[str, Any]:
    if not expand:
        return {"links": [{"rel": "self", "href": url}]}
    items = []
    for line in lines:
        item: dict[str, Any] = {"links": []}
        for line_spec in spec.line:
            value = line.get(line_spec.name)
            if value is not None:
                item[line_spec.name] = _rendered_value(line_spec, value, base_url, refs)
        items.append(item)
    return {
        "links": [{"rel": "self", "href": url}],
        "count": len(items),
        "hasMore": False,
        "items": items,
        "offset": 0,
        "totalResults": len(items),
    }
