"""The admin shows every canonical record and its history; cost rates stay masked without leave."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib import admin
from django.urls import reverse

from sync.admin import CanonicalAdminForm
from sync.audit import acting_as
from sync.models import CANONICAL_MODELS, TimeEntry, Worker
from tests.factories import FACTORIES, TimeEntryFactory, WorkerFactory

MODELS = [pytest.param(model, id=model.__name__) for model in CANONICAL_MODELS]
MASK = "••••"


def _url(model, view: str, *args) -> str:
    return reverse(f"admin:sync_{model._meta.model_name}_{view}", args=args)


@pytest.mark.parametrize("model", MODELS)
def test_a_superuser_can_list_open_and_read_the_history_of_every_record(db, admin_client, model):
    record = FACTORIES[model]()
    record.correlation_id = "deal-42"
    record.save()

    for url in (
        _url(model, "changelist"),
        _url(model, "change", record.pk),
        _url(model, "history", record.pk),
        _url(model, "add"),
    ):
        assert admin_client.get(url).status_code == 200, url


@pytest.fixture
def worker_with_changed_rate(db):
    with acting_as("run:1"):
        worker = WorkerFactory(cost_rate=Decimal("85.5000"))
        worker.cost_rate = Decimal("92.2500")
        worker.save()
    return worker


@pytest.fixture
def staff_client(client, role_user):
    def sign_in(role: str):
        client.force_login(role_user(role, is_staff=True))
        return client

    return sign_in


def _pages(worker) -> list[str]:
    first_history_id = worker.history.order_by("history_id").first().history_id
    return [
        _url(Worker, "changelist"),
        _url(Worker, "change", worker.pk),
        _url(Worker, "history", worker.pk),
        _url(Worker, "simple_history", worker.pk, first_history_id),
    ]


def test_an_auditor_sees_the_cost_rate_masked_in_lists_forms_and_history(
    worker_with_changed_rate, staff_client
):
    client = staff_client("auditor")

    for url in _pages(worker_with_changed_rate):
        response = client.get(url)
        body = response.content.decode()
        assert response.status_code == 200, url
        assert "85.5" not in body, url
        assert "92.25" not in body, url
        assert "gAAAA" not in body, url
        assert MASK in body, url


def test_finance_sees_the_decrypted_cost_rate_and_never_ciphertext(
    worker_with_changed_rate, staff_client
):
    client = staff_client("finance")

    history = client.get(_pages(worker_with_changed_rate)[2]).content.decode()
    change = client.get(_pages(worker_with_changed_rate)[1]).content.decode()

    assert "85.5" in history
    assert "92.25" in history
    assert "92.25" in change
    assert "gAAAA" not in history + change


def test_the_history_page_names_the_actor_of_each_row(worker_with_changed_rate, admin_client):
    body = admin_client.get(_pages(worker_with_changed_rate)[2]).content.decode()

    assert "run:1" in body


# --- lifecycle, frozen records and stale forms on the change form ---------------------------


def _time_entry_form_data(entry, **changes) -> dict[str, str]:
    """What the browser posts from the change form of `entry`, with `changes` applied."""
    data = {
        "worker": str(entry.worker_id),
        "project": str(entry.project_id),
        "task": str(entry.task_id),
        "work_date": entry.work_date.isoformat(),
        "hours": str(entry.hours),
        "billable": "on",
        "bill_rate": str(entry.bill_rate),
        "currency": str(entry.currency_id),
        "status": entry.status,
        "approved_at_0": "",
        "approved_at_1": "",
        "correlation_id": entry.correlation_id,
        "mapping_versions": "{}",
        "loaded_version": str(entry.version),
    }
    data.update({name: str(value) for name, value in changes.items()})
    return data


def _form_errors(response) -> list[str]:
    form = response.context["adminform"].form
    return [str(message) for messages in form.errors.values() for message in messages]


def test_an_illegal_status_change_in_the_admin_is_a_form_error_and_writes_nothing(
    db, admin_client, history_of
):
    entry = TimeEntryFactory(status="reversed")

    response = admin_client.post(
        _url(TimeEntry, "change", entry.pk), _time_entry_form_data(entry, status="draft")
    )

    assert response.status_code == 200
    assert any("may not move from 'reversed' to 'draft'" in e for e in _form_errors(response))
    assert "may not move from" in response.content.decode()
    stored = TimeEntry.objects.get(pk=entry.pk)
    assert (stored.status, stored.version) == ("reversed", 1)
    assert len(history_of(TimeEntry, [entry])) == 1


def test_editing_a_posted_entry_in_the_admin_is_a_form_error_and_writes_nothing(
    db, admin_client, history_of
):
    entry = TimeEntryFactory(status="posted")

    response = admin_client.post(
        _url(TimeEntry, "change", entry.pk), _time_entry_form_data(entry, hours="1.00")
    )

    assert response.status_code == 200
    assert any("hours" in e and "reversal" in e for e in _form_errors(response))
    stored = TimeEntry.objects.get(pk=entry.pk)
    assert (stored.hours, stored.version) == (Decimal("7.50"), 1)
    assert len(history_of(TimeEntry, [entry])) == 1


def test_a_change_form_opened_before_someone_else_saved_is_refused_and_writes_nothing(
    db, admin_client
):
    entry = TimeEntryFactory(status="draft")
    opened = _time_entry_form_data(entry, hours="5.00")
    entry.hours = Decimal("6.00")
    entry.save()  # version 2 while the form still says version 1

    response = admin_client.post(_url(TimeEntry, "change", entry.pk), opened)

    assert response.status_code == 200
    assert any("version 1" in e and "version 2" in e for e in _form_errors(response))
    stored = TimeEntry.objects.get(pk=entry.pk)
    assert (stored.hours, stored.version) == (Decimal("6.00"), 2)


def test_a_legal_status_change_of_a_posted_entry_in_the_admin_is_saved(db, admin_client):
    entry = TimeEntryFactory(status="posted")

    response = admin_client.post(
        _url(TimeEntry, "change", entry.pk), _time_entry_form_data(entry, status="reversed")
    )

    assert response.status_code == 302, _form_errors(response)
    stored = TimeEntry.objects.get(pk=entry.pk)
    assert (stored.status, stored.version) == ("reversed", 2)


def test_the_change_form_carries_the_version_it_was_opened_at(db, admin_client):
    entry = TimeEntryFactory()

    body = admin_client.get(_url(TimeEntry, "change", entry.pk)).content.decode()

    assert 'name="loaded_version" value="1"' in body


@pytest.mark.parametrize("model", MODELS)
def test_every_canonical_admin_form_and_inline_checks_the_lifecycle(model):
    model_admin = admin.site._registry[model]

    assert issubclass(model_admin.form, CanonicalAdminForm)
    for inline in model_admin.inlines:
        assert issubclass(inline.form, CanonicalAdminForm), inline


def test_a_time_entry_shows_its_psa_id_and_is_found_by_it(db, admin_client):
    wanted = TimeEntryFactory(psa_id="KT-42")
    TimeEntryFactory(psa_id="KT-4242")  # contains the other: an exact search skips it

    page = admin_client.get(_url(TimeEntry, "change", wanted.pk))
    assert page.status_code == 200
    assert "KT-42" in page.content.decode()
    found = admin_client.get(_url(TimeEntry, "changelist"), {"q": "KT-42"})
    assert list(found.context["cl"].result_list) == [wanted]
