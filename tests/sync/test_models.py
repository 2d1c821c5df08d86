"""Model rules that the database or clean() enforces, and the model list the roles rely on."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from io import StringIO

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, transaction

from portal.roles import ALL_CANONICAL
from sync.models import CANONICAL_MODELS, Assignment, InvoiceLine, RateCardLine, TimeEntry
from tests.factories import (
    AccountingPeriodFactory,
    AssignmentFactory,
    CurrencyFactory,
    FxRateFactory,
    InvoiceFactory,
    InvoiceLineFactory,
    ProjectFactory,
    RateCardFactory,
    RateCardLineFactory,
    RolePlaceholderFactory,
    TaskFactory,
    TimeEntryFactory,
    WorkerFactory,
)

JAN = dt.date(2026, 1, 1)


def test_every_model_the_roles_table_names_exists_and_is_canonical():
    for label in ALL_CANONICAL:
        assert apps.get_model(label) in CANONICAL_MODELS, label


def test_every_canonical_model_keeps_history():
    for model in CANONICAL_MODELS:
        assert hasattr(model, "history"), model.__name__
        assert model.history.model._meta.get_field("history_actor")


@pytest.mark.django_db(databases=["default", "sandbox"])  # makemigrations reads both
def test_the_migrations_match_the_models():
    out = StringIO()
    call_command("makemigrations", "sync", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


@pytest.mark.parametrize(
    ("worker", "placeholder"), [(True, True), (False, False)], ids=["both", "neither"]
)
def test_an_assignment_names_exactly_one_of_a_worker_or_a_placeholder(db, worker, placeholder):
    project = ProjectFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        AssignmentFactory(
            project=project,
            worker=WorkerFactory() if worker else None,
            role_placeholder=RolePlaceholderFactory(project=project) if placeholder else None,
        )


def test_an_assignment_may_staff_a_placeholder_instead_of_a_worker(db):
    project = ProjectFactory()
    assignment = AssignmentFactory(
        project=project, worker=None, role_placeholder=RolePlaceholderFactory(project=project)
    )
    assert Assignment.objects.get(pk=assignment.pk).worker is None


def test_a_time_entry_needs_positive_hours(db):
    with pytest.raises(IntegrityError), transaction.atomic():
        TimeEntryFactory(hours=Decimal("0.00"))


def test_a_time_entry_task_must_belong_to_its_project(db):
    entry = TimeEntryFactory.build(
        task=TaskFactory(), project=ProjectFactory(), worker=WorkerFactory()
    )
    with pytest.raises(ValidationError, match="another project"):
        entry.full_clean()


def test_one_fx_rate_per_currency_pair_and_date(db):
    FxRateFactory(effective_date=JAN)
    with pytest.raises(IntegrityError), transaction.atomic():
        FxRateFactory(effective_date=JAN)


@pytest.mark.parametrize(
    ("existing", "new", "clashes"),
    [
        ((JAN, None), (dt.date(2026, 6, 1), None), True),
        ((JAN, dt.date(2026, 3, 31)), (dt.date(2026, 3, 31), None), True),
        ((JAN, dt.date(2026, 3, 31)), (dt.date(2026, 4, 1), None), False),
        ((dt.date(2026, 4, 1), None), (JAN, dt.date(2026, 3, 31)), False),
        ((dt.date(2026, 4, 1), None), (JAN, dt.date(2026, 4, 1)), True),
    ],
)
def test_rate_card_lines_of_one_role_must_not_overlap(db, existing, new, clashes):
    card = RateCardFactory()
    RateCardLineFactory(
        rate_card=card, role="Senior", effective_from=existing[0], effective_to=existing[1]
    )
    line = RateCardLineFactory.build(
        rate_card=card, role="Senior", effective_from=new[0], effective_to=new[1]
    )

    if clashes:
        with pytest.raises(ValidationError, match="already has a rate"):
            line.full_clean()
    else:
        line.full_clean()


def test_overlapping_rates_are_fine_for_another_role_or_an_inactive_line(db):
    card = RateCardFactory()
    RateCardLineFactory(rate_card=card, role="Senior", effective_from=JAN)
    RateCardLineFactory(rate_card=card, role="Junior", effective_from=JAN, status="inactive")

    RateCardLineFactory.build(rate_card=card, role="Junior", effective_from=JAN).full_clean()
    RateCardLineFactory.build(rate_card=card, role="Manager", effective_from=JAN).full_clean()
    assert RateCardLine.objects.filter(rate_card=card).count() == 2


def test_a_rate_card_line_is_in_its_card_currency(db):
    line = RateCardLineFactory.build(
        rate_card=RateCardFactory(), currency=CurrencyFactory(code="USD")
    )
    with pytest.raises(ValidationError, match="rate card's currency"):
        line.full_clean()


def test_an_invoice_line_is_in_its_invoice_currency(db):
    line = InvoiceLineFactory.build(
        invoice=InvoiceFactory(), currency=CurrencyFactory(code="USD"), tax_code=None
    )
    with pytest.raises(ValidationError, match="invoice's currency"):
        line.full_clean()
    assert not InvoiceLine.objects.exists()


def test_accounting_periods_of_an_entity_are_unique_by_start_and_do_not_overlap(db):
    period = AccountingPeriodFactory(start_date=JAN, end_date=dt.date(2026, 1, 31))

    overlapping = AccountingPeriodFactory.build(
        legal_entity=period.legal_entity,
        start_date=dt.date(2026, 1, 15),
        end_date=dt.date(2026, 2, 14),
    )
    with pytest.raises(ValidationError, match="overlaps"):
        overlapping.full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        AccountingPeriodFactory(
            legal_entity=period.legal_entity, start_date=JAN, end_date=dt.date(2026, 1, 20)
        )


def test_task_codes_are_unique_within_a_project_only(db):
    project = ProjectFactory()
    TaskFactory(project=project, code="1.1")
    TaskFactory(project=ProjectFactory(), code="1.1")

    with pytest.raises(IntegrityError), transaction.atomic():
        TaskFactory(project=project, code="1.1")


def test_a_wbs_parent_is_in_the_same_project_and_never_below_the_task(db):
    parent = TaskFactory()
    child = TaskFactory(project=parent.project, parent=parent)

    parent.parent = child
    with pytest.raises(ValidationError, match="own ancestor"):
        parent.full_clean()
    stranger = TaskFactory.build(project=ProjectFactory(), parent=parent)
    with pytest.raises(ValidationError, match="another project"):
        stranger.full_clean()


def test_invoice_numbers_are_unique_once_given_but_drafts_have_none(db):
    InvoiceFactory(number=None)
    InvoiceFactory(number=None)
    InvoiceFactory(number="INV-0001")

    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceFactory(number="INV-0001")


def test_time_entry_money_uses_its_currency(db):
    entry = TimeEntryFactory(bill_rate=Decimal("150.0000"), currency=CurrencyFactory(code="GBP"))
    assert str(TimeEntry.objects.get(pk=entry.pk).bill_rate_money) == "150.0000 GBP"
