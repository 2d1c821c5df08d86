"""Salesforce Accounts, Opportunities and Contracts as the quote-to-cash flows read them, and
the Account write-back body.

Payloads are SOQL records as `SalesforceConnector.pull` yields them (`attributes`, `Id`, the
fields of `DEFAULT_FIELDS`). Readers are strict: each raises PayloadError naming every problem.
Amounts arrive as JSON numbers; they are read from their decimal text (never through float
arithmetic) and kept with the record's `CurrencyIsoCode`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sync.connectors.base import iso_date
from sync.errors import PayloadError

WON_STAGE = "Closed Won"
ACTIVATED = "Activated"
ERP_LINK_FIELD = "ERP_Customer_Id__c"  # the CRM account's link to its ERP customer
# The account is written back by its own Id (upsert on Id: the account already exists).
ACCOUNT_KEY_FIELD = "Id"
MAX_TEXT = 255


class _Fields:
    """Reads one record's fields, collecting every problem; `done()` raises them together."""

    def __init__(self, payload: Any, what: str) -> None:
        if not isinstance(payload, dict):
            raise PayloadError(f"The Salesforce {what} is not a JSON object.")
        self.payload, self.errors = payload, []

    def text(self, name: str, *, required: bool = False, max_length: int = MAX_TEXT) -> str:
        value = self.payload.get(name)
        if value is None or value == "":
            if required:
                self.errors.append(f"`{name}` is missing.")
            return ""
        if not isinstance(value, str):
            self.errors.append(f"`{name}` must be text, got {type(value).__name__}.")
            return ""
        if len(value.strip()) > max_length:
            self.errors.append(f"`{name}` is longer than {max_length} characters.")
            return ""
        return value.strip()

    def day(self, name: str, *, required: bool = False) -> dt.date | None:
        text = self.text(name, required=required)
        if not text:
            return None
        try:
            return iso_date(text)
        except ValueError:
            self.errors.append(f"`{name}` {text[:40]!r} is not a date.")
            return None

    def amount(self, name: str) -> Decimal:
        value = self.payload.get(name)
        if value is None:
            return Decimal("0")
        try:
            # JSON numbers: their decimal text (str of a float is its shortest exact repr).
            amount = Decimal(str(value)) if not isinstance(value, bool) else None
        except InvalidOperation:
            amount = None
        if amount is None or not amount.is_finite() or amount < 0 or amount >= 10**14:
            self.errors.append(f"`{name}` {str(value)[:40]!r} is not a non-negative amount.")
            return Decimal("0")
        return amount

    def done(self) -> None:
        if self.errors:
            raise PayloadError(" ".join(self.errors))


@dataclass(frozen=True)
class Account:
    external_id: str  # the Salesforce Id
    name: str
    number: str  # AccountNumber, the CRM's customer key ("" when none)
    country: str
    currency: str
    tax_registration: str
    credit_status: str  # Approved / Pending / On Hold / Rejected, "" when not set
    erp_customer_id: str  # ERP_Customer_Id__c, "" when not linked


def account_read(payload: Any) -> Account:
    r = _Fields(payload, "Account")
    account = Account(
        external_id=r.text("Id", required=True, max_length=18),
        name=r.text("Name", required=True, max_length=200),
        number=r.text("AccountNumber", max_length=40),
        country=r.text("BillingCountry", max_length=80),
        currency=r.text("CurrencyIsoCode", max_length=3),
        tax_registration=r.text("Tax_Registration__c", max_length=50),
        credit_status=r.text("Credit_Status__c", max_length=40),
        erp_customer_id=r.text(ERP_LINK_FIELD, max_length=40),
    )
    r.done()
    return account


@dataclass(frozen=True)
class Opportunity:
    external_id: str
    account_id: str
    name: str
    stage: str
    won: bool
    close_date: dt.date | None
    amount: Decimal
    currency: str
    billing_model: str
    legal_entity: str


def opportunity_read(payload: Any) -> Opportunity:
    r = _Fields(payload, "Opportunity")
    stage = r.text("StageName", required=True, max_length=40)
    is_won = payload.get("IsWon") if isinstance(payload, dict) else None
    deal = Opportunity(
        external_id=r.text("Id", required=True, max_length=18),
        account_id=r.text("AccountId", max_length=18),
        name=r.text("Name", required=True, max_length=200),
        stage=stage,
        won=stage == WON_STAGE or is_won is True,
        close_date=r.day("CloseDate"),
        amount=r.amount("Amount"),
        currency=r.text("CurrencyIsoCode", max_length=3),
        billing_model=r.text("Billing_Model__c", max_length=40),
        legal_entity=r.text("Legal_Entity__c", max_length=20),
    )
    r.done()
    return deal


@dataclass(frozen=True)
class Contract:
    external_id: str
    account_id: str
    opportunity_id: str
    number: str  # ContractNumber
    sow_number: str
    status: str
    start_date: dt.date | None
    end_date: dt.date | None
    billing_model: str
    value: Decimal
    currency: str

    @property
    def activated(self) -> bool:
        return self.status == ACTIVATED


def contract_read(payload: Any) -> Contract:
    r = _Fields(payload, "Contract")
    contract = Contract(
        external_id=r.text("Id", required=True, max_length=18),
        account_id=r.text("AccountId", required=True, max_length=18),
        opportunity_id=r.text("Opportunity__c", max_length=18),
        number=r.text("ContractNumber", max_length=30),
        sow_number=r.text("SOW_Number__c", max_length=40),
        status=r.text("Status", max_length=40),
        start_date=r.day("StartDate"),
        end_date=r.day("EndDate"),
        billing_model=r.text("Billing_Model__c", max_length=40),
        value=r.amount("Contract_Value__c"),
        currency=r.text("CurrencyIsoCode", max_length=3),
    )
    r.done()
    return contract


def account_erp_link_body(*, erp_customer_id: str) -> dict[str, Any]:
    """The Account fields that link it to its ERP customer (written back once it exists)."""
    return {ERP_LINK_FIELD: erp_customer_id}
