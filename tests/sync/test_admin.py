"""The admin shows every canonical record and its history; cost rates stay masked without leave."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from sync.audit import acting_as
from sync.models import CANONICAL_MODELS, Worker
from tests.factories import FACTORIES, WorkerFactory

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
