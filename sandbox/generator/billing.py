"""Billing after the stream: invoices in billing (Stripe) and the ERP (NetSuite), and payments.

- Time and materials: one invoice per project and completed month for its approved billable
  time (whatever the ERP made of the labour: billing reads the PSA) and billable expenses,
  except the planted leaked months.
- Fixed fee: one invoice per completed milestone, on its due date, except the planted ones.
- Usage: one usage record and one invoice per project and completed month.
Invoices due before the as-of date are paid (a NetSuite customer payment applies them).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sandbox.generator import netsuite, stripe
from sandbox.generator.activity import Activity
from sandbox.generator.firm import (
    FIXED,
    USAGE,
    Firm,
    Project,
    month_add,
    month_start,
    stream_rng,
)
from sandbox.generator.writer import IdBook, RecordSink

PAYMENT_TERMS = dt.timedelta(days=30)


@dataclass
class Billing:
    invoices: int = 0
    payments: int = 0
    usage_records: int = 0
    invoiced_by_customer: dict[str, int] = field(default_factory=dict)  # key -> cents


def _month(key: str) -> dt.date:
    year, month = key.split("-")
    return dt.date(int(year), int(month), 1)


def billing_write(*, firm: Firm, book: IdBook, sink: RecordSink, activity: Activity) -> Billing:
    out = Billing()
    numbers: dict[str, int] = {}
    projects = firm.projects

    def issue(project: Project, day: dt.date, memo: str, lines, metadata, period) -> None:
        entity = project.entity
        numbers[entity] = numbers.get(entity, 0) + 1
        number = f"{entity}-INV-{numbers[entity]:06d}"
        due = day + PAYMENT_TERMS
        paid = due < firm.as_of
        customer_ns = book[netsuite.SYSTEM, "customer", project.customer.key]
        subsidiary, currency = netsuite.entity_refs(book, entity)
        total = sum(line[3] for line in lines)
        sink.add(
            stripe.invoice(
                record_id=book.new(),
                number=number,
                customer=book[stripe.SYSTEM, stripe.CUSTOMER, project.customer.key],
                customer_name=project.customer.name,
                customer_email=stripe.billing_email(project.customer),
                currency=project.currency,
                day=day,
                due=due,
                paid=paid,
                lines=[(text, 1, amount, meta) for _item, text, meta, amount in lines],
                metadata={
                    "project_key": project.key,
                    "legal_entity": entity,
                    "description": memo,
                    **metadata,
                },
                period=period,
                now=firm.now,
            )
        )
        invoice_id = book.new()
        sink.add(
            netsuite.invoice(
                record_id=invoice_id,
                number=number,
                customer=customer_ns,
                job=book[netsuite.SYSTEM, "job", project.key],
                subsidiary=subsidiary,
                currency=currency,
                day=day,
                due=due,
                paid=paid,
                memo=memo,
                lines=[(item, text, "1", amount, amount) for item, text, _meta, amount in lines],
                now=firm.now,
            )
        )
        out.invoices += 1
        key = project.customer.key
        out.invoiced_by_customer[key] = out.invoiced_by_customer.get(key, 0) + total
        if paid:
            sink.add(
                netsuite.customer_payment(
                    record_id=book.new(),
                    invoice_id=invoice_id,
                    number=number,
                    customer=customer_ns,
                    subsidiary=subsidiary,
                    currency=currency,
                    day=due - dt.timedelta(days=5),
                    amount_cents=total,
                    now=firm.now,
                )
            )
            out.payments += 1

    for key in sorted(set(activity.billable) | set(activity.billable_expenses)):
        project = projects[key[0]]
        month = _month(key[1])
        minutes, time_cents = activity.billable.get(key, [0, 0])
        lines = []
        if time_cents:
            hours = f"{minutes // 60}.{(minutes % 60) * 100 // 60:02d}"
            lines.append(
                (
                    "Professional services",
                    f"{project.key} time {key[1]} ({hours} h)",
                    {"period": key[1], "hours": hours},
                    time_cents,
                )
            )
        if key in activity.billable_expenses:
            lines.append(
                (
                    "Reimbursable expenses",
                    f"{project.key} expenses {key[1]}",
                    {"period": key[1]},
                    activity.billable_expenses[key],
                )
            )
        issue(
            project,
            month_add(month, 1) + dt.timedelta(days=2),
            f"{project.sow} time and materials {key[1]}",
            lines,
            {"billing_model": project.model, "period": key[1]},
            (month, month_add(month, 1) - dt.timedelta(days=1)),
        )

    for project in projects:
        if project.model == FIXED and project.provisioned:
            for milestone in project.milestones:
                if milestone.completed and milestone.invoiced:
                    issue(
                        project,
                        milestone.due,
                        f"{project.sow} {milestone.title}",
                        [
                            (
                                "Fixed fee milestone",
                                f"{project.key} {milestone.title}",
                                {"milestone_key": milestone.key},
                                milestone.amount_cents,
                            )
                        ],
                        {"billing_model": project.model, "milestone_key": milestone.key},
                        None,
                    )
    rng = stream_rng(firm.seed, "usage")
    for project in projects:
        if project.model != USAGE or not project.provisioned:
            continue
        month = max(month_start(project.start), firm.horizon_start)
        customer = book[stripe.SYSTEM, stripe.CUSTOMER, project.customer.key]
        while month < month_start(firm.as_of) and month <= project.end:
            quantity = rng.randint(80, 400)
            sink.add(
                stripe.usage_record(
                    record_id=book.new(),
                    customer=customer,
                    project_key=project.key,
                    month=month,
                    quantity=quantity,
                    unit=project.usage_unit,
                    unit_amount=project.usage_unit_cents,
                    currency=project.currency,
                )
            )
            out.usage_records += 1
            period = month.strftime("%Y-%m")
            issue(
                project,
                month_add(month, 1) + dt.timedelta(days=2),
                f"{project.sow} usage {period}",
                [
                    (
                        "Usage",
                        f"{quantity} x {project.usage_unit} {period}",
                        {"period": period, "quantity": str(quantity)},
                        quantity * project.usage_unit_cents,
                    )
                ],
                {"billing_model": project.model, "period": period},
                (month, month_add(month, 1) - dt.timedelta(days=1)),
            )
            month = month_add(month, 1)
    return out
