"""The pure rules of cash application: which ERP payments are new cash on an invoice, and when
billing may be told an invoice is paid. No database, no network."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from sync.integrations.netsuite.payments import ErpPayment


def erp_payment_ref(*, payment_id: str, erp_invoice_id: str) -> str:
    """The ERP ref of one application of an ERP payment to one invoice (decision 112): a
    payment applying two invoices is two canonical Payments, each with its own ref."""
    return f"{payment_id}/{erp_invoice_id}"


def erp_payments_new(
    *, payments: Iterable[ErpPayment], erp_invoice_id: str, recorded_refs: set[str]
) -> list[tuple[ErpPayment, Decimal]]:
    """The (payment, amount applied) of the ERP payments applying `erp_invoice_id` that no
    Payment records yet. Payments Ledgerbridge created itself (`ST-PAY-…`, cash billing
    collected) are never new cash: that is the first of the two "never twice" rules."""
    found = []
    for payment in payments:
        amount = payment.applied.get(erp_invoice_id)
        if payment.ours or amount is None or amount <= 0:
            continue
        if erp_payment_ref(payment_id=payment.payment_id, erp_invoice_id=erp_invoice_id) in (
            recorded_refs
        ):
            continue
        found.append((payment, amount))
    return found


def erp_cash_unrecorded(*, total: Decimal, remaining: Decimal, recorded: Decimal) -> bool:
    """Whether the ERP holds cash on an invoice that its Payments do not account for yet."""
    return total - remaining > recorded


def billing_mark_due(*, remaining: Decimal) -> bool:
    """Billing hears of ERP cash only once the ERP says nothing remains: billing records an
    invoice paid in full or not at all (decision 113)."""
    return remaining <= 0


def amounts_sum(amounts: Iterable[Decimal]) -> Decimal:
    return sum(amounts, Decimal(0))


def minor_units_by_code(rows: Iterable[tuple[str, int]]) -> Mapping[str, int]:
    return {code.upper(): units for code, units in rows}
