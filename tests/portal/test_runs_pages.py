"""The Runs area: connection health (deliveries by state, error rate, circuit, last successful
run), recent runs, and what integration ops do there: pause, resume, run a cycle now."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError

from sync.models import TimeEntry
from sync.pipeline.models import Connection, Delivery, SyncRun
from sync.tasks_cycle import cycle_run

SECRET = "cred-runs-page-client-secret"


def connection(name: str, **values) -> Connection:
    made = Connection(name=name, system="erp", dialect="netsuite", **values)
    made.credentials_set({"client_secret": SECRET})
    made.save()
    return made


def deliveries(to: Connection, state: str, n: int, *, age: dt.timedelta = dt.timedelta(0)):
    now = timezone.now()
    made = Delivery.objects.bulk_create(
        Delivery(
            connection=to,
            operation="erp.time_bill.upsert",
            content_type=ContentType.objects.get_for_model(TimeEntry),
            object_id=str(i),
            record_version=1,
            idempotency_key=f"{to.name}:{state}:{age}:{i}",
            external_id=f"KT-TE-{i}",
            payload={},
            next_attempt_at=now,
            correlation_id="c",
            state=state,
        )
        for i in range(n)
    )
    Delivery.objects.filter(pk__in=[d.pk for d in made]).update(created_at=now - age)


@pytest.fixture
def ops(client, role_user):
    user = role_user("integration_ops")
    client.force_login(user)
    return user


@pytest.mark.django_db
def test_the_runs_page_shows_deliveries_by_state_error_rate_and_circuit_per_connection(client, ops):
    erp = connection("erp-main")
    crm = connection("crm-main", circuit_open_until=timezone.now() + dt.timedelta(minutes=5))
    deliveries(erp, "delivered", 2)
    deliveries(erp, "failed", 1)
    deliveries(erp, "pending", 4)
    deliveries(erp, "failed", 5, age=dt.timedelta(hours=25))  # outside the 24 h window
    deliveries(crm, "in_flight", 1)
    SyncRun.objects.create(
        kind="cycle",
        connection=erp,
        status="succeeded",
        started_at=timezone.now() - dt.timedelta(minutes=3),
        finished_at=timezone.now() - dt.timedelta(minutes=2),
        pulled=12,
    )
    page = client.get(reverse("area-runs"))
    assert page.status_code == 200
    health = {c.name: c for c in page.context["connections"]}
    # States in Delivery.State order: pending, in flight, delivered, failed.
    assert health["erp-main"].state_counts == (4, 0, 2, 1)
    assert health["erp-main"].error_rate_percent == Decimal("33.3")
    assert health["erp-main"].last_success_at is not None
    assert not health["erp-main"].circuit_open
    assert health["crm-main"].state_counts == (0, 1, 0, 0)
    assert health["crm-main"].error_rate_percent is None
    assert health["crm-main"].circuit_open
    assert health["crm-main"].last_success_at is None
    body = page.content.decode()
    assert 'data-connection="crm-main" data-enabled="yes" data-circuit="open"' in body
    assert 'data-connection="erp-main" data-enabled="yes" data-circuit="closed"' in body
    assert "33.3 %" in body
    assert [r.run.pulled for r in page.context["runs"]] == [12]
    assert SECRET not in body


@pytest.mark.django_db
def test_a_circuit_whose_time_has_passed_reads_closed(client, ops):
    connection("erp-main", circuit_open_until=timezone.now() - dt.timedelta(seconds=1))
    [health] = client.get(reverse("area-runs")).context["connections"]
    assert not health.circuit_open


@pytest.mark.django_db
def test_integration_ops_pause_and_resume_a_connection_and_its_history_names_them(client, ops):
    erp = connection("erp-main")
    act = reverse("runs-connection-act", args=[erp.pk])
    paused = client.post(act, {"action": "pause"}, follow=True)
    erp.refresh_from_db()
    assert erp.enabled is False
    assert "Connection erp-main is paused." in paused.content.decode()
    latest = erp.history.order_by("-history_id").first()
    assert latest.history_user == ops
    assert latest.history_actor == f"user:{ops.get_username()}"
    assert b'value="resume"' in paused.content

    client.post(act, {"action": "resume"})
    erp.refresh_from_db()
    assert erp.enabled is True
    assert erp.credentials_dict() == {"client_secret": SECRET}  # untouched by the toggle
    assert [h.enabled for h in erp.history.order_by("history_id")] == [True, False, True]


@pytest.mark.django_db
def test_pausing_a_paused_connection_writes_no_history(client, ops):
    erp = connection("erp-main", enabled=False)
    client.post(reverse("runs-connection-act", args=[erp.pk]), {"action": "pause"})
    assert erp.history.count() == 1


@pytest.mark.django_db
def test_the_auditor_sees_no_button_and_gets_403_on_every_post(client, role_user):
    erp = connection("erp-main")
    client.force_login(role_user("auditor"))
    body = client.get(reverse("area-runs")).content.decode()
    assert "erp-main" in body
    for button in ("Run a cycle now", "Pause", "Run a cycle", "Send a heartbeat now"):
        assert button not in body
    for url, action in [
        (reverse("runs-act"), "cycle"),
        (reverse("runs-connection-act", args=[erp.pk]), "pause"),
        (reverse("runs-connection-act", args=[erp.pk]), "resume"),
        (reverse("runs-connection-act", args=[erp.pk]), "cycle"),
    ]:
        assert client.post(url, {"action": action}).status_code == 403, (url, action)
    erp.refresh_from_db()
    assert erp.enabled
    assert not SyncRun.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["finance", "pmo", "executive", "mapping_admin"])
def test_roles_outside_the_runs_area_neither_read_it_nor_act(client, role_user, role):
    erp = connection("erp-main")
    client.force_login(role_user(role))
    assert client.get(reverse("area-runs")).status_code == 403
    response = client.post(reverse("runs-connection-act", args=[erp.pk]), {"action": "pause"})
    assert response.status_code == 403


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_celery")
def test_run_a_cycle_now_runs_the_cycle_task(client, ops):
    page = client.post(reverse("runs-act"), {"action": "cycle"}, follow=True)
    [run] = SyncRun.objects.all()
    assert run.kind == SyncRun.Kind.CYCLE
    assert run.status == SyncRun.Status.SUCCEEDED
    said = page.content.decode()
    assert "queued for every enabled connection" in said
    assert f'data-run="{run.pk}"' in said


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_celery")
def test_a_paused_connection_runs_no_cycle_until_resumed(client, ops):
    erp = connection("erp-main", enabled=False)
    page = client.post(
        reverse("runs-connection-act", args=[erp.pk]), {"action": "cycle"}, follow=True
    )
    assert "Connection erp-main is paused: resume it first." in page.content.decode()
    assert not SyncRun.objects.exists()


@pytest.mark.django_db
def test_a_broker_that_cannot_be_reached_is_a_message_not_a_500(client, ops, monkeypatch):
    from portal.celery import app

    def refused(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(app, "send_task", refused)  # where Celery hands a task to the broker
    assert cycle_run.app is app
    page = client.post(reverse("runs-act"), {"action": "cycle"}, follow=True)
    assert page.status_code == 200
    assert "the broker (Redis) cannot be reached" in page.content.decode()


@pytest.mark.django_db
def test_an_unknown_action_is_a_message(client, ops):
    erp = connection("erp-main")
    page = client.post(reverse("runs-connection-act", args=[erp.pk]), {}, follow=True)
    assert "Unknown action" in page.content.decode()


@pytest.mark.django_db
def test_an_action_on_a_connection_that_does_not_exist_is_not_found(client, ops):
    response = client.post(reverse("runs-connection-act", args=[999]), {"action": "pause"})
    assert response.status_code == 404
