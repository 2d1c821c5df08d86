"""The firm in billing (Stripe API v1 objects): customers, invoices with lines, usage records.

Storage follows `sandbox/stripe/README.md`: system "stripe", object_type the Stripe object
name; `data` holds the object's fields minus `id`, `object` and `created` (the dialect renders
them from the row), money in integer minor units, currency in lower case, times Unix seconds;
an invoice's lines are stored in `data["lines"]["data"]` (issued invoices have no pending
invoice items); `parent_id` is the customer's record id; `status` the invoice status ("paid" /
"open"). `usage_record` (quantity per project and month) is not served by the dialect: it is
the usage the usage invoices bill, kept for reconciliation.
Ledgerbridge's keys go in `metadata` (Stripe's place for them): the CRM account number, the
project key, the billed period or milestone. An invoice's `number` is what the ERP invoice
carries as externalId/otherRefNum.
"""

from __future__ import annotations

import datetime as dt

from sandbox.generator.firm import Customer, Firm, at
from sandbox.generator.writer import IdBook, Row
from sandbox.stripe.objects import SYSTEM, stripe_id

CUSTOMER, INVOICE, USAGE_RECORD = "customer", "invoice", "usage_record"


def unix(moment: dt.datetime) -> int:
    return int(moment.timestamp())


def billing_email(customer: Customer) -> str:
    return f"ap@{customer.name.split(' ')[0].lower()}{customer.index}.example"


def ids_assign(firm: Firm, book: IdBook) -> None:
    for customer in firm.customers:
        if customer.in_erp:
            book.assign(SYSTEM, CUSTOMER, customer.key)


def customer_rows(firm: Firm, book: IdBook, erp_customer_id) -> list[Row]:
    rows = []
    for customer in firm.customers:
        if customer.in_erp:
            rows.append(_customer(firm, book, customer, erp_customer_id(customer)))
    return rows


def _customer(firm: Firm, book: IdBook, customer: Customer, erp_id: int | None) -> Row:
    created = at(firm.horizon_start - dt.timedelta(days=300 - customer.index % 200))
    data = {
        "name": customer.name,
        "description": f"{customer.key} {customer.name}",
        "email": billing_email(customer),
        "currency": customer.currency.lower(),
        "address": {"city": customer.city, "country": customer.country},
        "tax_ids": []
        if customer.tax_id is None
        else [
            {
                "type": "us_ein"
                if customer.country == "US"
                else "eu_vat"
                if customer.country != "GB"
                else "gb_vat",
                "value": customer.tax_id,
            }
        ],
        "tax_exempt": "none",
        "invoice_prefix": customer.entity.replace("-", ""),
        "metadata": {
            "crm_account_number": customer.key,
            "erp_customer_id": "" if erp_id is None else str(erp_id),
            "legal_entity": customer.entity,
        },
    }
    return (
        book[SYSTEM, CUSTOMER, customer.key],
        SYSTEM,
        CUSTOMER,
        None,
        None,
        "",
        data,
        created,
        created,
    )


def invoice(
    *,
    record_id: int,
    number: str,
    customer: int,
    customer_name: str,
    customer_email: str,
    currency: str,
    day: dt.date,
    due: dt.date,
    paid: bool,
    lines: list[tuple[str, int, int, dict]],
    metadata: dict,
    period: tuple[dt.date, dt.date] | None,
    now: dt.datetime,
) -> Row:
    """lines: (description, quantity, amount in minor units, line metadata)."""
    total = sum(line[2] for line in lines)
    created = min(at(day, 7), now)
    line_period = {
        "start": unix(at(period[0], 0)) if period else unix(created),
        "end": unix(at(period[1], 0)) if period else unix(created),
    }
    paid_at = min(at(due - dt.timedelta(days=5), 11), now)
    data = {
        "number": number,
        "customer": stripe_id(CUSTOMER, customer),
        "customer_name": customer_name,
        "customer_email": customer_email,
        "currency": currency.lower(),
        "status": "paid" if paid else "open",
        "collection_method": "send_invoice",
        "auto_advance": False,
        "days_until_due": (due - day).days,
        "description": metadata.get("description"),
        "attempt_count": 0,
        "attempted": False,
        "paid_out_of_band": paid,
        "due_date": unix(at(due, 0)),
        "period_start": unix(at(period[0], 0)) if period else unix(created),
        "period_end": unix(at(period[1], 0)) if period else unix(created),
        "subtotal": total,
        "total": total,
        "amount_due": total,
        "amount_paid": total if paid else 0,
        "amount_remaining": 0 if paid else total,
        "status_transitions": {
            "finalized_at": unix(created),
            "paid_at": unix(paid_at) if paid else None,
            "voided_at": None,
            "marked_uncollectible_at": None,
        },
        "lines": {
            "object": "list",
            "data": [
                {
                    "description": text,
                    "quantity": quantity,
                    "amount": amount,
                    "currency": currency.lower(),
                    "metadata": meta,
                    "period": line_period,
                }
                for text, quantity, amount, meta in lines
            ],
            "has_more": False,
        },
        "metadata": {k: v for k, v in metadata.items() if k != "description"},
    }
    return (
        record_id,
        SYSTEM,
        INVOICE,
        None,
        customer,
        data["status"],
        data,
        created,
        paid_at if paid else created,
    )


def usage_record(
    *,
    record_id: int,
    customer: int,
    project_key: str,
    month: dt.date,
    quantity: int,
    unit: str,
    unit_amount: int,
    currency: str,
) -> Row:
    stamp = at(month, 0)
    data = {
        "quantity": quantity,
        "timestamp": unix(stamp),
        "unit": unit,
        "unit_amount": unit_amount,
        "currency": currency.lower(),
        "metadata": {"project_key": project_key, "period": month.strftime("%Y-%m")},
    }
    return (record_id, SYSTEM, USAGE_RECORD, None, customer, "", data, stamp, stamp)
