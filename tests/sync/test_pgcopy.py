"""COPY writes the rows the ORM would: text and JSON round-trip exactly, None is NULL, bad
input is refused before anything is written, and each new record gets one "+" history row.

`field__any` returns exactly the rows `field__in` would, on PostgreSQL and on SQLite.

The COPY tests need PostgreSQL (`scripts/test.py`, i.e. `make test`); on SQLite they fail,
never skip: deselect them with `-m 'not integration'` for a quick SQLite pass.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import Q

from sync.audit import audited_bulk_create, audited_copy_create
from sync.errors import UnknownStatus
from sync.models import Customer, ExternalRef, TimeEntry, Worker
from sync.pgcopy import NULL, copy_insert, copy_json, copy_value
from sync.pipeline.models import Connection, Delivery
from tests import factories as f

AT = dt.datetime(2026, 10, 14, 9, 30, 15, 123456, tzinfo=dt.UTC)

# Text that COPY's text format must escape, plus its own markers given as plain text.
AWKWARD = [
    "tab\there",
    "new\nline",
    "carriage\rreturn\r\n",
    "back\\slash",
    "\\N",  # COPY's NULL marker, as text: must stay text
    "\\.",  # COPY's end-of-data marker
    "ends with a backslash \\",
    "\\t is not a tab",
    "{0} {} {{}} {name} }{",
    "Zoë Ünïcødé — 東京 🚀",
    "",
    "all\t{1}\\n\n\\\r}",
]


@pytest.fixture
def postgres(db):
    if connection.vendor != "postgresql":
        pytest.fail(
            "COPY needs PostgreSQL: run through `scripts/test.py` (make test).", pytrace=False
        )


@pytest.fixture
def time_refs(db) -> dict:
    """What a time entry points at, for rows given as column values."""
    project = f.ProjectFactory()
    return {
        "worker_id": f.WorkerFactory().pk,
        "project_id": project.pk,
        "task_id": f.TaskFactory(project=project).pk,
        "currency_id": f.CurrencyFactory(code="EUR").pk,
    }


TIME_COLUMNS = (
    "worker_id",
    "project_id",
    "task_id",
    "currency_id",
    "work_date",
    "hours",
    "bill_rate",
    "billable",
    "approved_at",
    "status",
    "mapping_versions",
    "correlation_id",
)


def time_row(refs: dict, **change) -> tuple:
    values = {
        **refs,
        "work_date": dt.date(2026, 10, 14),
        "hours": Decimal("7.50"),
        "bill_rate": Decimal("120.0000"),
        "billable": True,
        "approved_at": AT,
        "status": "approved",
        "mapping_versions": {"legal-entity": 3},
        "correlation_id": "c-1",
    }
    values.update(change)
    return tuple(values[name] for name in TIME_COLUMNS)


def nothing_written(model) -> bool:
    # A query after the refusal also proves the transaction was not aborted by a failed COPY.
    return not model.objects.exists() and not model.history.exists()


# --- rendering (no database) -------------------------------------------------------------


def test_none_renders_as_copys_null_and_the_text_backslash_n_does_not():
    assert copy_value(None) == NULL
    assert copy_value("\\N") != NULL


@pytest.mark.parametrize("value", [0.1, 7.5, float("nan")])
def test_a_float_is_refused_with_a_type_error(value):
    with pytest.raises(TypeError):
        copy_value(value)


def test_a_naive_datetime_is_refused_with_a_value_error():
    with pytest.raises(ValueError, match="naive"):
        copy_value(dt.datetime(2026, 10, 14, 9, 30))  # noqa: DTZ001 - the point of the test


def test_a_json_value_is_one_copy_field_however_awkward_its_strings():
    rendered = copy_json({"k\t": AWKWARD})
    assert "\t" not in rendered
    assert "\n" not in rendered
    assert "\r" not in rendered


# --- text and JSON round trips (PostgreSQL) ----------------------------------------------


@pytest.mark.integration
def test_awkward_text_round_trips_exactly_through_audited_copy_create(postgres):
    entity = f.LegalEntityFactory()
    ids = audited_copy_create(
        model=Customer,
        columns=("name", "tax_id", "legal_entity_id"),
        rows=[(text, text[::-1][:50], entity.pk) for text in AWKWARD],
        constants={"status": "approved", "correlation_id": "{corr}\t\\N{0}é"},
        actor="run:7",
    )

    stored = {c.pk: c for c in Customer.objects.filter(pk__in=ids)}
    # The primary keys come back in row order.
    assert [stored[pk].name for pk in ids] == AWKWARD
    assert [stored[pk].tax_id for pk in ids] == [text[::-1][:50] for text in AWKWARD]
    assert {c.correlation_id for c in stored.values()} == {"{corr}\t\\N{0}é"}
    assert {c.status for c in stored.values()} == {"approved"}


@pytest.mark.integration
def test_awkward_text_and_json_round_trip_exactly_through_copy_insert(postgres):
    erp = Connection.objects.create(
        name="erp", system="erp", dialect="netsuite", base_url="http://127.0.0.1:9/netsuite"
    )
    payloads = [
        {"memo": text, text: [text, None, 1, True], "nested": {"deeper": text}} for text in AWKWARD
    ]
    payloads[0] = 'a JSON string\twith \\ a backslash, "quotes" and {braces} é'
    payloads[1] = "null"  # the JSON string "null", not JSON null
    payloads[2] = ["list", "of\tthings", {"n": 12345678901234}]
    rows = [
        (f"ext-{n}\t{text}", text, f"key-{n}", payload, f"corr-{n}")
        for n, (text, payload) in enumerate(zip(AWKWARD, payloads, strict=True))
    ]
    copy_insert(
        model=Delivery,
        columns=("external_id", "last_error", "idempotency_key", "payload", "correlation_id"),
        rows=rows,
        omit=["id"],
        constants={
            "connection_id": erp.pk,
            "operation": "op\t{x}\\",
            "content_type_id": ContentType.objects.get_for_model(Customer).pk,
            "object_id": "{}",
            "record_version": 1,
            "next_attempt_at": AT,
            "created_at": AT,
        },
    )

    stored = {d.idempotency_key: d for d in Delivery.objects.all()}
    assert len(stored) == len(rows)
    for external_id, last_error, key, payload, correlation_id in rows:
        d = stored[key]
        assert (d.external_id, d.last_error, d.payload, d.correlation_id) == (
            external_id,
            last_error,
            payload,
            correlation_id,
        )
        assert (d.operation, d.object_id, d.next_attempt_at) == ("op\t{x}\\", "{}", AT)
    # Columns left out take the field's default, as the ORM would write them.
    assert {(d.state, d.attempts, d.target_id) for d in stored.values()} == {("pending", 0, "")}
    assert Delivery.objects.filter(payload="null").count() == 1


@pytest.mark.integration
def test_json_columns_round_trip_dicts_with_awkward_strings_and_json_strings(postgres):
    entity = f.LegalEntityFactory()
    values = [
        {"legal-entity": 3, "note": "tab\there", "keys\n\\": AWKWARD},
        {text: text for text in AWKWARD},
        "a bare JSON string\t\\N\n{0}",
        "",
        {},
    ]
    ids = audited_copy_create(
        model=Customer,
        columns=("name", "legal_entity_id", "mapping_versions"),
        rows=[(f"c{n}", entity.pk, value) for n, value in enumerate(values)],
        actor="run:7",
    )

    stored = dict(Customer.objects.filter(pk__in=ids).values_list("pk", "mapping_versions"))
    assert [stored[pk] for pk in ids] == values
    history = dict(Customer.history.filter(id__in=ids).values_list("id", "mapping_versions"))
    assert [history[pk] for pk in ids] == values


@pytest.mark.integration
def test_none_is_written_as_null(postgres):
    customer = f.CustomerFactory()
    customer_type = ContentType.objects.get_for_model(Customer)
    ids = audited_copy_create(
        model=ExternalRef,
        columns=("system", "object_id", "external_id", "last_synced_at"),
        rows=[("crm", str(customer.pk), "A-1", None), ("erp", str(customer.pk), "A-2", AT)],
        constants={"content_type_id": customer_type.pk},
        actor="run:7",
    )
    assert list(
        ExternalRef.objects.filter(pk__in=ids)
        .order_by("external_id")
        .values_list("external_id", "last_synced_at")
    ) == [("A-1", None), ("A-2", AT)]
    assert ExternalRef.objects.filter(last_synced_at__isnull=True).count() == 1
    assert ExternalRef.history.filter(last_synced_at__isnull=True).count() == 1


# --- refusals before anything is written (PostgreSQL) ------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"hours": 7.5}, TypeError),
        ({"bill_rate": 120.0}, TypeError),
        ({"approved_at": dt.datetime(2026, 10, 14, 9, 30)}, ValueError),  # noqa: DTZ001
        ({"status": "nonsense"}, UnknownStatus),
    ],
    ids=["float-hours", "float-rate", "naive-datetime", "unknown-status"],
)
def test_a_bad_value_in_any_row_is_refused_before_anything_is_written(
    postgres, time_refs, change, error
):
    rows = [time_row(time_refs), time_row(time_refs, **change), time_row(time_refs)]
    with pytest.raises(error):
        audited_copy_create(model=TimeEntry, columns=TIME_COLUMNS, rows=rows, actor="run:7")
    assert nothing_written(TimeEntry)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("constants", "error"),
    [
        ({"approved_at": dt.datetime(2026, 10, 14, 9, 30)}, ValueError),  # noqa: DTZ001
        ({"status": "nonsense"}, UnknownStatus),
        ({"billable": 1.0}, TypeError),
    ],
    ids=["naive-datetime", "unknown-status", "float"],
)
def test_a_bad_constant_is_refused_before_anything_is_written(
    postgres, time_refs, constants, error
):
    columns = [c for c in TIME_COLUMNS if c not in constants]
    rows = [
        tuple(
            v for c, v in zip(TIME_COLUMNS, time_row(time_refs), strict=True) if c not in constants
        )
    ]
    with pytest.raises(error):
        audited_copy_create(
            model=TimeEntry, columns=columns, rows=rows, constants=constants, actor="run:7"
        )
    assert nothing_written(TimeEntry)


@pytest.mark.integration
@pytest.mark.parametrize("missing", ["worker_id", "work_date", "hours"])
def test_a_missing_required_column_is_refused_before_anything_is_written(
    postgres, time_refs, missing
):
    at = TIME_COLUMNS.index(missing)
    columns = TIME_COLUMNS[:at] + TIME_COLUMNS[at + 1 :]
    row = time_row(time_refs)
    with pytest.raises(ValueError, match=missing):
        audited_copy_create(
            model=TimeEntry, columns=columns, rows=[row[:at] + row[at + 1 :]], actor="run:7"
        )
    assert nothing_written(TimeEntry)


@pytest.mark.integration
def test_copy_insert_refuses_a_float_and_a_missing_column_before_writing(postgres):
    erp = Connection.objects.create(
        name="erp", system="erp", dialect="netsuite", base_url="http://127.0.0.1:9/netsuite"
    )
    constants = {
        "connection_id": erp.pk,
        "operation": "op",
        "object_id": "1",
        "content_type_id": ContentType.objects.get_for_model(Customer).pk,
        "record_version": 1,
        "payload": {},
        "correlation_id": "c",
        "created_at": AT,
    }
    good = ("key-1", "ext-1", AT)
    columns = ("idempotency_key", "external_id", "next_attempt_at")
    with pytest.raises(TypeError):
        copy_insert(
            model=Delivery,
            columns=columns,
            rows=[good, ("key-2", "ext-2", 1.5)],
            constants=constants,
            omit=["id"],
        )
    with pytest.raises(ValueError, match="next_attempt_at"):
        copy_insert(
            model=Delivery, columns=columns[:2], rows=[good[:2]], constants=constants, omit=["id"]
        )
    assert not Delivery.objects.exists()


# --- history (PostgreSQL) ----------------------------------------------------------------


@pytest.mark.integration
def test_each_copied_record_gets_one_plus_history_row_by_the_actor_with_its_values(
    postgres, time_refs
):
    rows = [
        time_row(time_refs),
        time_row(
            time_refs,
            hours=Decimal("0.25"),
            billable=False,
            approved_at=None,
            status="submitted",
            mapping_versions={},
            correlation_id="tab\tc",
        ),
        time_row(time_refs, work_date=dt.date(2026, 2, 28), bill_rate=Decimal("99.1234")),
    ]
    ids = audited_copy_create(model=TimeEntry, columns=TIME_COLUMNS, rows=rows, actor="user:bob")

    fields = [field.attname for field in TimeEntry._meta.concrete_fields]
    records = {r["id"]: r for r in TimeEntry.objects.filter(pk__in=ids).values(*fields)}
    history = list(
        TimeEntry.history.filter(id__in=ids).values(
            *fields,
            "history_type",
            "history_actor",
            "history_user_id",
            "history_change_reason",
        )
    )
    assert sorted(h["id"] for h in history) == sorted(ids)  # one row per record
    for row in history:
        record = records[row["id"]]
        assert (row["history_type"], row["history_actor"], row["history_user_id"]) == (
            "+",
            "user:bob",
            None,
        )
        assert record["version"] == row["version"] == 1
        assert {name: row[name] for name in fields} == record
    # The rows hold what was given, in order.
    given = [dict(zip(TIME_COLUMNS, row, strict=True)) for row in rows]
    assert [records[pk]["hours"] for pk in ids] == [g["hours"] for g in given]
    assert [records[pk]["approved_at"] for pk in ids] == [g["approved_at"] for g in given]


@pytest.mark.integration
def test_copy_writes_the_record_and_history_row_audited_bulk_create_writes(postgres, time_refs):
    row = time_row(time_refs, correlation_id="same")
    (copied,) = audited_copy_create(
        model=TimeEntry, columns=TIME_COLUMNS, rows=[row], actor="run:7"
    )
    (created,) = audited_bulk_create(
        model=TimeEntry,
        objs=[TimeEntry(**dict(zip(TIME_COLUMNS, row, strict=True)))],
        actor="run:7",
    )
    ignore = {"id", "created_at", "updated_at", "history_id", "history_date"}

    def columns(model, **where) -> dict:
        (values,) = model.objects.filter(**where).values()
        return {k: v for k, v in values.items() if k not in ignore}

    assert columns(TimeEntry, pk=copied) == columns(TimeEntry, pk=created.pk)
    history = TimeEntry.history.model
    assert columns(history, id=copied) == columns(history, id=created.pk)


@pytest.mark.integration
def test_a_worker_cost_rate_written_by_copy_is_encrypted_and_reads_back(postgres):
    # The cost rate is sensitive: the ORM stores ciphertext (sync/encryption.py), in the
    # record and in its history. COPY must not store the plain number.
    entity = f.LegalEntityFactory()
    (pk,) = audited_copy_create(
        model=Worker,
        columns=("employee_number", "name", "legal_entity_id", "cost_rate"),
        rows=[("E-COPY-1", "Ada", entity.pk, Decimal("85.5000"))],
        actor="run:7",
    )
    table = Worker._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT cost_rate FROM {table} WHERE id = %s", [pk])  # noqa: S608
        (raw,) = cursor.fetchone()
    assert "85.5" not in raw
    assert Worker.objects.get(pk=pk).cost_rate == Decimal("85.5000")
    assert Worker.history.get(id=pk).cost_rate == Decimal("85.5000")


# --- field__any (PostgreSQL and SQLite) --------------------------------------------------


@pytest.fixture
def refs(db) -> dict[str, ExternalRef]:
    """Refs with awkward external ids, keyed by external id."""
    ids = [
        "A-1",
        "A-2",
        "a,b",
        "a",
        "b",
        "{x}",
        "NULL",
        'quote"d',
        "tab\tbed",
        "Zoë",
        "back\\slash\\",
        " spaced ",
        "",
        "x" * 255,
    ]
    return {external_id: f.ExternalRefFactory(external_id=external_id) for external_id in ids}


def test_any_returns_exactly_the_rows_with_one_of_the_integers(refs):
    chosen = [refs["A-1"].pk, refs["Zoë"].pk]
    found = ExternalRef.objects.filter(pk__any=[*chosen, 10**9])
    assert sorted(found.values_list("pk", flat=True)) == sorted(chosen)
    assert sorted(
        ExternalRef.objects.filter(id__any={refs["a"].pk}).values_list("pk", flat=True)
    ) == [refs["a"].pk]


def test_any_returns_exactly_the_rows_with_one_of_the_strings(refs):
    # Sent as one array literal on PostgreSQL: every element quoted and escaped.
    wanted = [
        "a,b",
        "{x}",
        "NULL",
        'quote"d',
        "tab\tbed",
        "Zoë",
        "back\\slash\\",
        " spaced ",
        "",
        "not there",
    ]
    found = ExternalRef.objects.filter(external_id__any=wanted)
    assert sorted(found.values_list("external_id", flat=True)) == sorted(wanted[:-1])
    # The same as `__in`, whatever the values.
    assert sorted(found.values_list("pk", flat=True)) == sorted(
        ExternalRef.objects.filter(external_id__in=wanted).values_list("pk", flat=True)
    )


def test_any_converts_values_not_of_the_fields_own_type_as_in_does(refs):
    """Plain ints and str skip the field's conversion (a fast path); anything else takes it."""
    a, b = refs["A-1"], refs["Zoë"]
    cases = [
        ("pk", [str(a.pk), b.pk]),  # a numeric string among ints
        ("pk", [str(a.pk), str(b.pk)]),
        ("object_id", [int(a.object_id), b.object_id]),  # an int for a text field
    ]
    for field, values in cases:
        found = ExternalRef.objects.filter(**{f"{field}__any": values})
        expected = ExternalRef.objects.filter(**{f"{field}__in": values})
        assert sorted(found.values_list("pk", flat=True)) == sorted(
            expected.values_list("pk", flat=True)
        ), (field, values)
        assert found.exists(), (field, values)


def test_any_with_an_empty_list_matches_nothing_and_excludes_nothing(refs):
    assert not ExternalRef.objects.filter(pk__any=[]).exists()
    assert not ExternalRef.objects.filter(external_id__any=[]).exists()
    assert ExternalRef.objects.exclude(external_id__any=[]).count() == len(refs)
    assert list(
        ExternalRef.objects.filter(Q(pk__any=[]) | Q(external_id="A-2")).values_list(
            "external_id", flat=True
        )
    ) == ["A-2"]


def test_any_does_not_match_a_value_longer_than_the_column_by_its_prefix(refs):
    # external_id holds at most 255 characters; a longer value matches no row, as with `__in`.
    too_long = "x" * 300
    assert not ExternalRef.objects.filter(external_id__in=[too_long]).exists()
    assert not ExternalRef.objects.filter(external_id__any=[too_long]).exists()


def test_any_does_not_round_a_decimal_to_the_columns_places(db):
    entry = f.TimeEntryFactory(hours=Decimal("7.51"))
    assert list(TimeEntry.objects.filter(hours__any=[Decimal("7.51")])) == [entry]
    assert not TimeEntry.objects.filter(hours__in=[Decimal("7.505")]).exists()
    assert not TimeEntry.objects.filter(hours__any=[Decimal("7.505")]).exists()
