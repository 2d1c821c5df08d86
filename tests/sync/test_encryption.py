"""Worker cost rates and credentials are ciphertext at rest, in history too, and decrypt exactly."""

from __future__ import annotations

from decimal import Decimal

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.test import override_settings

from sync.audit import acting_as
from sync.encryption import DecryptionFailed, EncryptedTextField, decrypt_text, encrypt_text
from sync.models import Worker
from tests.factories import WorkerFactory


def _raw_column(table: str, column: str, where: str, value) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column} FROM {table} WHERE {where} = %s",  # noqa: S608 - names are ours
            [value],
        )
        return [row[0] for row in cursor.fetchall()]


def test_the_cost_rate_is_ciphertext_in_the_worker_table_and_decrypts_to_the_decimal(db):
    worker = WorkerFactory(cost_rate=Decimal("85.5000"))

    [raw] = _raw_column(Worker._meta.db_table, "cost_rate", "id", worker.pk)

    assert raw.startswith("gAAAA")  # a Fernet token
    assert "85.5" not in raw
    assert decrypt_text(raw) == "85.5000"
    assert Worker.objects.get(pk=worker.pk).cost_rate == Decimal("85.5000")


def test_history_rows_hold_only_ciphertext_of_the_cost_rate(db):
    with acting_as("run:5"):
        worker = WorkerFactory(cost_rate=Decimal("85.5000"))
        worker.cost_rate = Decimal("92.2500")
        worker.save()

    history_table = Worker.history.model._meta.db_table
    raw = _raw_column(history_table, "cost_rate", "id", worker.pk)

    assert len(raw) == 2
    assert all(value.startswith("gAAAA") for value in raw)
    assert not any("85.5" in value or "92.25" in value for value in raw)
    assert sorted(Decimal(decrypt_text(value)) for value in raw) == [
        Decimal("85.5000"),
        Decimal("92.2500"),
    ]
    assert [row.cost_rate for row in worker.history.order_by("history_id")] == [
        Decimal("85.5000"),
        Decimal("92.2500"),
    ]


def test_the_same_rate_encrypts_differently_each_time_so_columns_cannot_be_matched(db):
    first = WorkerFactory(cost_rate=Decimal("85.5000"))
    second = WorkerFactory(cost_rate=Decimal("85.5000"))

    [a] = _raw_column(Worker._meta.db_table, "cost_rate", "id", first.pk)
    [b] = _raw_column(Worker._meta.db_table, "cost_rate", "id", second.pk)
    assert a != b


def test_a_worker_without_a_cost_rate_stores_null(db):
    worker = WorkerFactory(cost_rate=None, cost_rate_currency=None)

    assert _raw_column(Worker._meta.db_table, "cost_rate", "id", worker.pk) == [None]
    assert Worker.objects.get(pk=worker.pk).cost_rate_money is None


def test_a_float_cost_rate_is_refused_and_nothing_is_written(db):
    worker = WorkerFactory(cost_rate=Decimal("85.5000"))
    worker.cost_rate = 90.0

    with pytest.raises(TypeError, match=r"cost_rate: float 90\.0 refused"):
        worker.save()

    assert Worker.objects.get(pk=worker.pk).cost_rate == Decimal("85.5000")


def test_an_unchanged_cost_rate_does_not_bump_the_version_although_the_ciphertext_differs(db):
    worker = WorkerFactory(cost_rate=Decimal("85.5000"))
    worker = Worker.objects.get(pk=worker.pk)
    worker.cost_rate = Decimal("85.50")

    worker.save()

    assert Worker.objects.get(pk=worker.pk).version == 1


def test_the_cost_rate_permission_exists_on_worker():
    assert ("view_cost_rate", "Can see worker cost rates") in Worker._meta.permissions


def test_an_encrypted_text_field_round_trips_and_never_stores_the_plain_text():
    field = EncryptedTextField()
    field.set_attributes_from_name("api_token")

    stored = field.get_prep_value("s3cr3t-token")

    assert "s3cr3t" not in stored
    assert field.from_db_value(stored, None, connection) == "s3cr3t-token"
    assert field.get_prep_value(None) is None


def test_a_rotated_key_still_opens_old_values_and_a_wrong_key_fails_loudly(settings):
    old_token = encrypt_text("secret")
    new_key = Fernet.generate_key().decode()

    with override_settings(FIELD_ENCRYPTION_KEY=f"{new_key},{settings.FIELD_ENCRYPTION_KEY}"):
        assert decrypt_text(old_token) == "secret"
        assert decrypt_text(encrypt_text("fresh")) == "fresh"
    with (
        override_settings(FIELD_ENCRYPTION_KEY=new_key),
        pytest.raises(DecryptionFailed, match="cannot be decrypted"),
    ):
        decrypt_text(old_token)
