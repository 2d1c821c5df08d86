"""`/trace/<correlation id>/`: every record of one correlation id, in time order, for the roles
that open the Exceptions or the Runs area."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils import timezone

from sync.models import TimeEntry
from sync.pipeline.exception_items import Failure, exception_items_raise
from sync.pipeline.models import Connection, Delivery, InboxItem
from sync.pipeline.trace import TRACE_LIMIT, trace_for
from tests import factories as f

CORR = "0f3c9a6e5b7d4c21a8e9f0b1c2d3e4f5"
OTHER = "99999999999999999999999999999999"
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def _connection() -> Connection:
    connection, _ = Connection.objects.get_or_create(
        name="erp-trace", defaults={"system": "erp", "dialect": "netsuite"}
    )
    return connection


def inbox_item(corr: str, *, minutes: int, external_id: str = "KT-TE-1") -> InboxItem:
    return InboxItem.objects.create(
        connection=_connection(),
        system="psa",
        entity="time_entries",
        external_id=external_id,
        payload={"id": external_id, "secretNote": "payload-marker-71"},
        payload_hash="0" * 64,
        received_at=at(minutes),
        correlation_id=corr,
    )


def time_entry(corr: str, *, minutes: int) -> TimeEntry:
    entry = f.TimeEntryFactory(correlation_id=corr)
    f.ExternalRefFactory(record=entry, system="psa", external_id=f"KT-TE-{entry.pk}")
    f.ExternalRefFactory(record=entry, system="erp", external_id=f"NS-TB-{entry.pk}")
    TimeEntry.objects.filter(pk=entry.pk).update(created_at=at(minutes))
    return entry


def delivery(corr: str, *, minutes: int, record: TimeEntry) -> Delivery:
    made = Delivery.objects.create(
        connection=_connection(),
        operation="erp.time_bill.upsert",
        content_type=ContentType.objects.get_for_model(TimeEntry),
        object_id=str(record.pk),
        record_version=1,
        idempotency_key=f"erp:timebill:{record.pk}:v1:{corr}",
        external_id=f"KT-TE-{record.pk}",
        payload={"body": {"laborCost": "payload-marker-72"}},
        next_attempt_at=at(minutes),
        correlation_id=corr,
        state=Delivery.State.FAILED,
        attempts=3,
    )
    Delivery.objects.filter(pk=made.pk).update(created_at=at(minutes))
    return made


def exception_item(corr: str, *, minutes: int, queue: str = "time_and_expense", key: str = "1"):
    return exception_items_raise(
        failures=[
            Failure(
                record_key=f"psa:time_entries:{key}-{corr[:6]}",
                stage="deliver",
                queue=queue,
                code="PERIOD_CLOSED",
                message="The ERP period is closed.",
                money_at_risk=Decimal("10.00"),
                currency="EUR",
                correlation_id=corr,
            )
        ],
        now=at(minutes),
    )[0]


@pytest.fixture
def story():
    """One approval's path: received, recorded, delivered (and failed), re-sent by the PSA; and
    the same kinds of rows under another correlation id."""
    first = inbox_item(CORR, minutes=0)
    entry = time_entry(CORR, minutes=1)
    sent = delivery(CORR, minutes=2, record=entry)
    failed = exception_item(CORR, minutes=3)
    again = inbox_item(CORR, minutes=4)
    other_entry = time_entry(OTHER, minutes=0)
    others = [
        inbox_item(OTHER, minutes=1, external_id="KT-TE-2"),
        delivery(OTHER, minutes=1, record=other_entry),
        exception_item(OTHER, minutes=1, key="2"),
    ]
    return {"rows": [first, entry, sent, failed, again], "others": [other_entry, *others]}


@pytest.mark.django_db
def test_the_trace_lists_inbox_item_record_delivery_and_exception_in_time_order_and_no_other_id(
    client, role_user, story
):
    client.force_login(role_user("integration_ops"))
    page = client.get(reverse("trace", args=[CORR]))
    assert page.status_code == 200
    events = page.context["trace"].events
    assert [(e.kind, str(e.row.pk)) for e in events] == [
        ("inbox", str(story["rows"][0].pk)),
        ("record", str(story["rows"][1].pk)),
        ("delivery", str(story["rows"][2].pk)),
        ("exception", str(story["rows"][3].pk)),
        ("inbox", str(story["rows"][4].pk)),
    ]
    assert [e.at for e in events] == sorted(e.at for e in events)
    shown = {(type(row).__name__, str(row.pk)) for row in story["others"]}
    traced = {(type(row).__name__, str(row.pk)) for row in story["rows"]}
    assert not shown & traced
    body = page.content.decode()
    # The record's id in the ERP, from its external reference.
    assert f"NS-TB-{story['rows'][1].pk}" in body
    assert f'href="/exceptions/{story["rows"][3].pk}/"' in body
    assert f'href="/exceptions/{story["others"][3].pk}/"' not in body


@pytest.mark.django_db
def test_the_trace_shows_no_payload(client, role_user, story):
    client.force_login(role_user("finance"))
    body = client.get(reverse("trace", args=[CORR])).content.decode()
    assert "payload-marker-71" not in body
    assert "payload-marker-72" not in body


@pytest.mark.django_db
def test_a_record_shows_its_external_id_in_each_system(story):
    record = trace_for(correlation_id=CORR).records[0]
    assert record.model == "sync.timeentry"
    assert {(ref.system, ref.external_id) for ref in record.refs} == {
        ("erp", f"NS-TB-{record.pk}"),
        ("psa", f"KT-TE-{record.pk}"),
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("finance", 200),
        ("pmo", 200),
        ("integration_ops", 200),
        ("auditor", 200),
        ("executive", 403),
        ("mapping_admin", 403),
    ],
)
def test_the_roles_of_the_exceptions_and_runs_areas_read_a_trace_and_no_other(
    client, role_user, role, status
):
    client.force_login(role_user(role))
    assert client.get(reverse("trace", args=[CORR])).status_code == status


@pytest.mark.django_db
def test_an_anonymous_visitor_is_sent_to_sign_in_first(client):
    response = client.get(reverse("trace", args=[CORR]))
    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/")


@pytest.mark.django_db
def test_nobody_posts_to_a_trace(client, role_user):
    client.force_login(role_user("integration_ops"))
    assert client.post(reverse("trace", args=[CORR])).status_code == 405


@pytest.mark.django_db
def test_pmo_sees_no_exception_item_of_a_queue_it_does_not_work(client, role_user, story):
    setup = exception_item(CORR, minutes=5, queue="project_setup", key="3")
    client.force_login(role_user("pmo"))
    found = client.get(reverse("trace", args=[CORR])).context["trace"]
    assert [e.pk for e in found.exception_items] == [setup.pk]
    assert len(found.inbox_items) == 2


@pytest.mark.django_db
def test_a_correlation_id_nothing_carries_shows_an_empty_trace(client, role_user):
    client.force_login(role_user("auditor"))
    page = client.get(reverse("trace", args=["never-seen"]))
    assert page.status_code == 200
    assert page.context["trace"].empty
    assert "Nothing carries this correlation id." in page.content.decode()


@pytest.mark.django_db
def test_a_correlation_id_longer_than_64_characters_is_not_found(client, role_user):
    client.force_login(role_user("auditor"))
    assert client.get(reverse("trace", args=["x" * 64])).status_code == 200
    assert client.get(reverse("trace", args=["x" * 65])).status_code == 404


@pytest.mark.django_db
def test_a_correlation_id_a_webhook_header_set_with_a_slash_is_traced_too(client, role_user):
    inbox_item("vendor/run 7", minutes=0)
    client.force_login(role_user("integration_ops"))
    page = client.get(reverse("trace", args=["vendor/run 7"]))
    assert page.status_code == 200
    assert len(page.context["trace"].inbox_items) == 1


@pytest.mark.django_db
def test_a_trace_says_when_it_lists_only_the_first_rows_of_a_kind(client, role_user):
    now = timezone.now()
    InboxItem.objects.bulk_create(
        InboxItem(
            system="psa",
            entity="time_entries",
            external_id=str(i),
            payload={},
            payload_hash="0" * 64,
            received_at=now,
            correlation_id=CORR,
        )
        for i in range(TRACE_LIMIT + 1)
    )
    client.force_login(role_user("integration_ops"))
    page = client.get(reverse("trace", args=[CORR]))
    assert len(page.context["trace"].inbox_items) == TRACE_LIMIT
    assert page.context["trace"].capped == ("inbox",)
    assert f"Only the first {TRACE_LIMIT} of each kind" in page.content.decode()


@pytest.mark.django_db
def test_the_exception_item_page_links_its_full_trace(client, role_user, story):
    item = story["rows"][3]
    client.force_login(role_user("finance"))
    body = client.get(reverse("exceptions-item", args=[item.pk])).content.decode()
    assert f'href="{reverse("trace", args=[CORR])}"' in body
    assert "Full trace" in body


@pytest.mark.django_db
def test_an_exception_item_without_a_correlation_id_has_no_full_trace_link(client, role_user):
    item = exception_item("", minutes=0, key="4")
    client.force_login(role_user("finance"))
    body = client.get(reverse("exceptions-item", args=[item.pk])).content.decode()
    assert "Full trace" not in body
