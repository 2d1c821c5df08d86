"""factory_boy factories for the canonical model; every one builds a valid, saveable record.

Currencies are fetched or created by code (EUR by default), so records made by different
factories share them. `FACTORIES` maps each canonical model to its factory.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory
from django.contrib.contenttypes.models import ContentType

from sync import models as m

BASE_DATE = dt.date(2026, 1, 1)


def _letters(n: int) -> str:
    """A three-letter code for sequence number n: 'QAA', 'QAB', ... (never a real ISO code)."""
    return "Q" + chr(65 + (n // 26) % 26) + chr(65 + n % 26)


class CurrencyFactory(factory.django.DjangoModelFactory):
    code = factory.Sequence(_letters)
    name = factory.LazyAttribute(lambda o: f"Currency {o.code}")
    minor_units = 2

    class Meta:
        model = m.Currency
        django_get_or_create = ("code",)


def currency(code: str = "EUR"):
    return factory.SubFactory(CurrencyFactory, code=code)


class LegalEntityFactory(factory.django.DjangoModelFactory):
    code = factory.Sequence(lambda n: f"LE{n:04d}")
    name = factory.Sequence(lambda n: f"Ledgerbridge Entity {n}")
    country = "GB"
    functional_currency = currency("GBP")

    class Meta:
        model = m.LegalEntity


class FxRateFactory(factory.django.DjangoModelFactory):
    from_currency = currency("EUR")
    to_currency = currency("GBP")
    rate = Decimal("0.85123456")
    effective_date = factory.Sequence(lambda n: BASE_DATE + dt.timedelta(days=n))

    class Meta:
        model = m.FxRate


class TaxCodeFactory(factory.django.DjangoModelFactory):
    code = factory.Sequence(lambda n: f"VAT{n}")
    jurisdiction = "GB"
    rate = Decimal("20.0000")

    class Meta:
        model = m.TaxCode


class CostCentreFactory(factory.django.DjangoModelFactory):
    code = factory.Sequence(lambda n: f"CC{n:04d}")
    name = factory.Sequence(lambda n: f"Consulting {n}")
    legal_entity = factory.SubFactory(LegalEntityFactory)

    class Meta:
        model = m.CostCentre


class AccountingPeriodFactory(factory.django.DjangoModelFactory):
    legal_entity = factory.SubFactory(LegalEntityFactory)
    start_date = factory.Sequence(lambda n: BASE_DATE + dt.timedelta(days=40 * n))
    end_date = factory.LazyAttribute(lambda o: o.start_date + dt.timedelta(days=27))

    class Meta:
        model = m.AccountingPeriod


class CustomerFactory(factory.django.DjangoModelFactory):
    name = factory.Sequence(lambda n: f"Customer {n} Ltd")
    legal_entity = factory.SubFactory(LegalEntityFactory)
    tax_id = factory.Sequence(lambda n: f"GB{n:09d}")
    status = m.Customer.Status.APPROVED

    class Meta:
        model = m.Customer


class OpportunityFactory(factory.django.DjangoModelFactory):
    customer = factory.SubFactory(CustomerFactory)
    name = factory.Sequence(lambda n: f"Deal {n}")
    amount = Decimal("120000.00")
    currency = currency("EUR")
    close_date = BASE_DATE

    class Meta:
        model = m.Opportunity


class ContractFactory(factory.django.DjangoModelFactory):
    customer = factory.SubFactory(CustomerFactory)
    opportunity = None
    name = factory.Sequence(lambda n: f"SOW {n}")
    billing_model = m.Contract.BillingModel.TIME_AND_MATERIALS
    currency = currency("EUR")
    value = Decimal("250000.00")
    start_date = BASE_DATE
    status = m.Contract.Status.ACTIVE

    class Meta:
        model = m.Contract


class RateCardFactory(factory.django.DjangoModelFactory):
    name = factory.Sequence(lambda n: f"Rate card {n}")
    currency = currency("EUR")
    legal_entity = factory.SubFactory(LegalEntityFactory)

    class Meta:
        model = m.RateCard


class RateCardLineFactory(factory.django.DjangoModelFactory):
    rate_card = factory.SubFactory(RateCardFactory)
    role = factory.Sequence(lambda n: f"Consultant grade {n}")
    service_item_code = "CONSULTING"
    bill_rate = Decimal("150.0000")
    currency = factory.SelfAttribute("rate_card.currency")
    effective_from = BASE_DATE
    effective_to = None

    class Meta:
        model = m.RateCardLine


class ProjectFactory(factory.django.DjangoModelFactory):
    code = factory.Sequence(lambda n: f"PRJ-{n:05d}")
    name = factory.Sequence(lambda n: f"Project {n}")
    customer = factory.SubFactory(CustomerFactory)
    contract = factory.SubFactory(ContractFactory, customer=factory.SelfAttribute("..customer"))
    legal_entity = factory.SelfAttribute("customer.legal_entity")
    currency = currency("EUR")
    tax_code = factory.SubFactory(TaxCodeFactory)
    status = m.Project.Status.OPEN

    class Meta:
        model = m.Project


class TaskFactory(factory.django.DjangoModelFactory):
    project = factory.SubFactory(ProjectFactory)
    code = factory.Sequence(lambda n: f"1.{n}")
    name = factory.Sequence(lambda n: f"Workstream {n}")

    class Meta:
        model = m.Task


class WorkerFactory(factory.django.DjangoModelFactory):
    employee_number = factory.Sequence(lambda n: f"E{n:06d}")
    name = factory.Sequence(lambda n: f"Worker {n}")
    email = factory.LazyAttribute(lambda o: f"{o.employee_number.lower()}@example.com")
    legal_entity = factory.SubFactory(LegalEntityFactory)
    cost_rate = Decimal("85.5000")
    cost_rate_currency = currency("GBP")

    class Meta:
        model = m.Worker


class RolePlaceholderFactory(factory.django.DjangoModelFactory):
    project = factory.SubFactory(ProjectFactory)
    role_name = "Senior consultant"

    class Meta:
        model = m.RolePlaceholder


class AssignmentFactory(factory.django.DjangoModelFactory):
    project = factory.SubFactory(ProjectFactory)
    worker = factory.SubFactory(WorkerFactory)
    role_placeholder = None
    start_date = BASE_DATE
    end_date = BASE_DATE + dt.timedelta(days=90)
    hours_per_week = Decimal("37.50")

    class Meta:
        model = m.Assignment


class MilestoneFactory(factory.django.DjangoModelFactory):
    project = factory.SubFactory(ProjectFactory)
    contract = factory.SelfAttribute("project.contract")
    name = factory.Sequence(lambda n: f"Milestone {n}")
    amount = Decimal("10000.00")
    currency = currency("EUR")
    due_date = BASE_DATE + dt.timedelta(days=30)

    class Meta:
        model = m.Milestone


class UsageRecordFactory(factory.django.DjangoModelFactory):
    contract = factory.SubFactory(ContractFactory, billing_model=m.Contract.BillingModel.USAGE)
    quantity = Decimal("1250.0000")
    unit = "api_call"
    unit_price = Decimal("0.0125")
    currency = currency("EUR")
    period_date = BASE_DATE

    class Meta:
        model = m.UsageRecord


class TimeEntryFactory(factory.django.DjangoModelFactory):
    worker = factory.SubFactory(WorkerFactory)
    project = factory.SubFactory(ProjectFactory)
    task = factory.SubFactory(TaskFactory, project=factory.SelfAttribute("..project"))
    work_date = BASE_DATE
    hours = Decimal("7.50")
    billable = True
    bill_rate = Decimal("150.0000")
    currency = currency("EUR")

    class Meta:
        model = m.TimeEntry


class ExpenseFactory(factory.django.DjangoModelFactory):
    worker = factory.SubFactory(WorkerFactory)
    project = factory.SubFactory(ProjectFactory)
    task = None
    incurred_date = BASE_DATE
    amount = Decimal("42.10")
    currency = currency("EUR")
    category = m.Expense.Category.TRAVEL

    class Meta:
        model = m.Expense


class InvoiceCandidateFactory(factory.django.DjangoModelFactory):
    project = factory.SubFactory(ProjectFactory)
    contract = factory.SelfAttribute("project.contract")
    source_kind = m.InvoiceCandidate.SourceKind.TIME
    amount = Decimal("1125.00")
    currency = currency("EUR")

    class Meta:
        model = m.InvoiceCandidate


class InvoiceFactory(factory.django.DjangoModelFactory):
    customer = factory.SubFactory(CustomerFactory)
    legal_entity = factory.SelfAttribute("customer.legal_entity")
    number = None
    currency = currency("EUR")
    total = Decimal("1350.00")

    class Meta:
        model = m.Invoice


class InvoiceLineFactory(factory.django.DjangoModelFactory):
    invoice = factory.SubFactory(InvoiceFactory)
    candidate = None
    description = "Consulting, January"
    quantity = Decimal("7.5000")
    unit_amount = Decimal("150.0000")
    amount = Decimal("1125.00")
    currency = factory.SelfAttribute("invoice.currency")
    tax_code = factory.SubFactory(TaxCodeFactory)

    class Meta:
        model = m.InvoiceLine


class PaymentFactory(factory.django.DjangoModelFactory):
    invoice = factory.SubFactory(InvoiceFactory, status=m.Invoice.Status.OPEN)
    amount = Decimal("1350.00")
    currency = factory.SelfAttribute("invoice.currency")
    received_date = BASE_DATE + dt.timedelta(days=20)

    class Meta:
        model = m.Payment


class RevenueEntryFactory(factory.django.DjangoModelFactory):
    project = factory.SubFactory(ProjectFactory)
    period_date = BASE_DATE
    amount = Decimal("1125.00")
    currency = currency("EUR")

    class Meta:
        model = m.RevenueEntry


class ExternalRefFactory(factory.django.DjangoModelFactory):
    """A CRM ref of a fresh customer (pass `record=` to ref something else)."""

    class Params:
        record = factory.LazyFunction(lambda: CustomerFactory())

    system = m.ExternalRef.System.CRM
    content_type = factory.LazyAttribute(lambda o: ContentType.objects.get_for_model(o.record))
    object_id = factory.LazyAttribute(lambda o: str(o.record.pk))
    external_id = factory.Sequence(lambda n: f"0015g00000{n:08d}")

    class Meta:
        model = m.ExternalRef


FACTORIES: dict[type, type[factory.django.DjangoModelFactory]] = {
    m.Currency: CurrencyFactory,
    m.LegalEntity: LegalEntityFactory,
    m.FxRate: FxRateFactory,
    m.TaxCode: TaxCodeFactory,
    m.CostCentre: CostCentreFactory,
    m.AccountingPeriod: AccountingPeriodFactory,
    m.Customer: CustomerFactory,
    m.Opportunity: OpportunityFactory,
    m.Contract: ContractFactory,
    m.RateCard: RateCardFactory,
    m.RateCardLine: RateCardLineFactory,
    m.Project: ProjectFactory,
    m.Task: TaskFactory,
    m.Worker: WorkerFactory,
    m.RolePlaceholder: RolePlaceholderFactory,
    m.Assignment: AssignmentFactory,
    m.Milestone: MilestoneFactory,
    m.UsageRecord: UsageRecordFactory,
    m.TimeEntry: TimeEntryFactory,
    m.Expense: ExpenseFactory,
    m.InvoiceCandidate: InvoiceCandidateFactory,
    m.Invoice: InvoiceFactory,
    m.InvoiceLine: InvoiceLineFactory,
    m.Payment: PaymentFactory,
    m.RevenueEntry: RevenueEntryFactory,
    m.ExternalRef: ExternalRefFactory,
}


def unsaved_batch(model, count: int) -> list:
    """`count` unsaved records of `model` sharing the saved parents of one factory-made record.

    For bulk-write tests: the parents exist, the records themselves are not in the database.
    """
    template = FACTORIES[model]()
    parents = {
        field.name: getattr(template, field.name)
        for field in model._meta.concrete_fields
        if field.many_to_one
    }
    return [FACTORIES[model].build(**parents) for _ in range(count)]
