"""Connection credentials are encrypted at rest and never rendered back."""

from __future__ import annotations

import pytest
from django.db import connection as db
from django.urls import reverse

from sync.pipeline.models import Connection

pytestmark = pytest.mark.django_db


def test_credentials_are_ciphertext_in_the_table_and_absent_from_history():
    conn = Connection(
        name="erp", system="erp", dialect="netsuite", base_url="http://127.0.0.1:8100/netsuite"
    )
    conn.credentials_set({"token": "s3cret-token-value"})
    conn.save()
    with db.cursor() as cursor:
        cursor.execute("SELECT credentials FROM pipeline_connection WHERE id = %s", [conn.id])
        (stored,) = cursor.fetchone()
        history_columns = {
            c.name
            for c in db.introspection.get_table_description(cursor, "pipeline_historicalconnection")
        }
    assert "s3cret" not in stored
    assert "credentials" not in history_columns  # old secrets are not kept at all
    assert conn.history.count() == 1
    assert Connection.objects.get().credentials_dict() == {"token": "s3cret-token-value"}


def test_the_admin_form_never_shows_credentials_and_keeps_them_when_left_blank(
    client, django_user_model
):
    admin = django_user_model.objects.create_superuser("root", password="unused-pass-123")
    client.force_login(admin)
    conn = Connection(
        name="erp", system="erp", dialect="netsuite", base_url="http://127.0.0.1:8100/netsuite"
    )
    conn.credentials_set({"token": "s3cret-token-value"})
    conn.save()
    url = reverse("admin:pipeline_connection_change", args=[conn.id])

    page = client.get(url).content.decode()
    assert "s3cret" not in page
    history = client.get(reverse("admin:pipeline_connection_history", args=[conn.id]))
    assert "s3cret" not in history.content.decode()

    form = {
        "name": "erp",
        "system": "erp",
        "dialect": "netsuite",
        "base_url": "http://127.0.0.1:8100/netsuite",
        "enabled": "on",
        "max_concurrency": "10",
        "timeout_seconds": "10",
        "pull_interval_seconds": "60",
        "new_credentials": "",
    }
    assert client.post(url, {**form, "max_concurrency": "8"}).status_code == 302
    conn.refresh_from_db()
    assert conn.max_concurrency == 8
    assert conn.credentials_dict() == {"token": "s3cret-token-value"}

    moved = client.post(url, {**form, "base_url": "https://attacker.example.com/"})
    assert moved.status_code == 200
    assert "Re-enter the credentials" in moved.content.decode()
    conn.refresh_from_db()
    assert conn.base_url == "http://127.0.0.1:8100/netsuite"

    for malformed in ("[1, 2", '{"pin": ' + "9" * 5000 + "}", "[" * 5000):
        bad = client.post(url, {**form, "new_credentials": malformed})
        assert bad.status_code == 200
        assert "Not valid JSON" in bad.content.decode()
    conn.refresh_from_db()
    assert conn.credentials_dict() == {"token": "s3cret-token-value"}


def test_the_admin_disables_connections_and_keeps_runs_never_deletes_them(
    client, django_user_model
):
    from django.utils import timezone

    from sync.pipeline.models import SyncRun

    client.force_login(django_user_model.objects.create_superuser("root", password="pw-123456"))
    conn = Connection.objects.create(
        name="erp", system="erp", dialect="netsuite", base_url="http://127.0.0.1:8100/netsuite"
    )
    run = SyncRun.objects.create(kind="cycle", started_at=timezone.now(), connection=conn)
    for name, pk in (("connection", conn.pk), ("syncrun", run.pk)):
        page = client.post(reverse(f"admin:pipeline_{name}_delete", args=[pk]), {"post": "yes"})
        assert page.status_code == 403, name
    assert Connection.objects.filter(pk=conn.pk).exists()
    assert SyncRun.objects.filter(pk=run.pk).exists()
