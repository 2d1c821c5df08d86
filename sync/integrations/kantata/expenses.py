"""Kantata expenses (`/expenses` records) read strictly into `ParsedExpense`.

`expense_read` is the one interface. Shape (the sandbox's and Kantata's `expenses.json`):
{"id", "workspace_id", "user_id", "date": "YYYY-MM-DD", "category", "amount_in_cents",
"currency", "billable", "approved", "approval_status"?, "notes"?, "created_at", "updated_at"}.
Every field the posting needs is checked and each refusal is named; unknown fields are ignored.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, NamedTuple

from sync.connectors.base import iso_date
from sync.errors import PayloadError

MAX_TEXT = 255
# The expense's own id is stored prefixed, as the exception items' record key
# `psa:expense:<id>` and the ERP key `KT-EX-<id>`, both at most 255 characters.
MAX_EXPENSE_ID = MAX_TEXT - len("psa:expense:")
MAX_CATEGORY = 100  # Expense.psa_category
# The largest amount Expense.amount holds (MoneyField: 18 digits, 2 after the point), in cents:
# a larger one is refused here, not by the database, which would roll back the whole batch.
MAX_AMOUNT_CENTS = 10**18 - 1
REJECTED = "rejected"


class ParsedExpense(NamedTuple):
    external_id: str
    workspace_id: str
    user_id: str
    incurred_date: dt.date
    category: str
    amount: Decimal  # amount_in_cents / 100, exact
    currency: str
    billable: bool
    approved: bool
    # The PSA withdrew its approval by rejecting the expense (`approval_status` "rejected").
    rejected: bool


def expense_read(payload: Any) -> ParsedExpense:
    """Read a Kantata expense strictly. Raises PayloadError naming every field it refuses."""
    if not isinstance(payload, dict):
        raise PayloadError("The payload is not a JSON object.")
    errors: list[str] = []

    def take(fn, *args):
        try:
            return fn(*args)
        except PayloadError as exc:
            errors.append(str(exc))
            return None

    external_id = take(_text, payload, "id", MAX_EXPENSE_ID)
    workspace_id = take(_text, payload, "workspace_id")
    user_id = take(_text, payload, "user_id")
    incurred = take(_date, payload.get("date"))
    category = take(_text, payload, "category", MAX_CATEGORY)
    amount = take(_amount, payload.get("amount_in_cents"))
    currency = take(_currency, payload.get("currency"))
    billable = take(_bool, payload, "billable")
    approved = take(_bool, payload, "approved")
    status = payload.get("approval_status")
    if status is not None and not isinstance(status, str):
        errors.append("`approval_status` must be text.")
    if errors:
        raise PayloadError(" ".join(errors))
    return ParsedExpense(
        external_id,
        workspace_id,
        user_id,
        incurred,
        category,
        amount,
        currency,
        billable,
        approved,
        rejected=not approved and status == REJECTED,
    )


def _text(payload: dict[str, Any], name: str, limit: int = MAX_TEXT) -> str:
    value = payload.get(name)
    if value is None or value == "":
        raise PayloadError(f"`{name}` is missing.")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PayloadError(f"`{name}` must be text or an integer id, got {type(value).__name__}.")
    text = str(value)
    if len(text) > limit:
        raise PayloadError(f"`{name}` is {len(text)} characters long; at most {limit}.")
    return text


def _date(value: Any) -> dt.date:
    if not isinstance(value, str):
        raise PayloadError("`date` must be a YYYY-MM-DD date.")
    try:
        return iso_date(value)
    except ValueError as exc:
        raise PayloadError(f"`date` {value[:40]!r} is not a YYYY-MM-DD date.") from exc


def _amount(value: Any) -> Decimal:
    # A whole number of cents, never a float: an expense is money (and JSON has no decimal).
    if isinstance(value, bool) or not isinstance(value, int):
        raise PayloadError("`amount_in_cents` must be a whole number of cents.")
    if not 0 < value <= MAX_AMOUNT_CENTS:
        raise PayloadError(
            f"`amount_in_cents` {str(value)[:40]} is outside 1..{MAX_AMOUNT_CENTS}: "
            "Ledgerbridge posts expenses, not refunds (docs/decisions.md #90)."
        )
    return Decimal(value).scaleb(-2)


def _bool(payload: dict[str, Any], name: str) -> bool:
    value = payload.get(name)
    if not isinstance(value, bool):
        raise PayloadError(f"`{name}` must be true or false.")
    return value


def _currency(value: Any) -> str:
    # ASCII only: "ß".upper() is "SS", which would no longer be a three-letter code.
    if not isinstance(value, str) or len(value) != 3 or not value.isascii() or not value.isalpha():
        raise PayloadError("`currency` must be a three-letter ISO 4217 code.")
    return value.upper()
