"""The firm in the CRM (Salesforce): Accounts, Opportunities and Contracts (the SOWs).

Storage follows `sandbox/salesforce/schema.py`: object_type is the sObject name, `data`
holds API field names, references are 18-character ids, `parent_id` is the AccountId's number,
`status` is StageName / Status. Empty fields are left out of `data` (the dialect renders a
missing field as null, and SOQL `= null` matches a missing key). Ledgerbridge_Id__c
(`external_id`) is left empty: Ledgerbridge has not written to this CRM yet. AccountNumber is
the CRM's customer key ("C-00042").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from sandbox.generator.firm import ENTITY_BY_CODE, Customer, Firm, Project, at, stream_rng
from sandbox.generator.writer import IdBook, Row, money
from sandbox.salesforce.schema import ACCOUNT, CONTRACT, OPPORTUNITY, SYSTEM, sf_id

OPEN_STAGES = ("Prospecting", "Qualification", "Proposal", "Negotiation")


def duplicate_key(customer: Customer) -> str:
    return f"{customer.key}#duplicate"


def ids_assign(firm: Firm, book: IdBook) -> None:
    for customer in firm.customers:
        book.assign(SYSTEM, ACCOUNT.name, customer.key)
    for customer in firm.customers:
        if customer.crm_duplicate:
            book.assign(SYSTEM, ACCOUNT.name, duplicate_key(customer))
    for project in firm.projects:
        book.assign(SYSTEM, OPPORTUNITY.name, project.key)
        book.assign(SYSTEM, CONTRACT.name, project.key)


def account_name_normalized(name: str) -> str:
    """What a duplicate check compares: the name without case, punctuation or spaces."""
    return "".join(ch for ch in name.lower() if ch.isalnum())


def rows(firm: Firm, book: IdBook, erp_customer_id) -> Iterator[Row]:
    """Every CRM record. `erp_customer_id(customer)` is the NetSuite id or None."""
    rng = stream_rng(firm.seed, "salesforce")
    for customer in firm.customers:
        yield _account(firm, book, customer, erp_customer_id(customer))
    for customer in firm.customers:
        if customer.crm_duplicate:
            yield _duplicate_account(firm, book, customer)
    for project in firm.projects:
        yield from _won(firm, book, project)
    for customer in firm.customers:
        account = book[SYSTEM, ACCOUNT.name, customer.key]
        for number in range(customer.lost_opportunities + customer.open_opportunities):
            lost = number < customer.lost_opportunities
            offset = rng.randint(-200, -10) if lost else rng.randint(10, 150)
            close = firm.as_of + dt.timedelta(days=offset)
            stage = "Closed Lost" if lost else rng.choice(OPEN_STAGES)
            amount = rng.randint(40, 600) * 1_000_00
            created = at(min(close, firm.as_of) - dt.timedelta(days=rng.randint(30, 120)))
            data = {
                "Name": f"{customer.name.rsplit(' ', 1)[0]} opportunity {number + 1}",
                "AccountId": sf_id(ACCOUNT, account),
                "StageName": stage,
                "CloseDate": close.isoformat(),
                "Amount": money(amount),
                "CurrencyIsoCode": customer.currency,
                "Probability": 0 if lost else 10 + 20 * OPEN_STAGES.index(stage),
                "Type": "New Business",
                "IsClosed": lost,
                "IsWon": False,
                "Billing_Model__c": rng.choice(("Time and Materials", "Fixed Fee", "Usage")),
                "Legal_Entity__c": customer.entity,
            }
            yield (
                book.new(),
                SYSTEM,
                OPPORTUNITY.name,
                None,
                account,
                stage,
                data,
                created,
                min(created + dt.timedelta(days=20), firm.now),
            )


def _account(firm: Firm, book: IdBook, customer: Customer, erp_id: int | None) -> Row:
    created = at(firm.horizon_start - dt.timedelta(days=400 - customer.index % 300))
    data = {
        "Name": customer.name,
        "AccountNumber": customer.key,
        "Type": "Customer" if customer.projects else "Prospect",
        "Industry": customer.name.split(" ")[1],
        "BillingCity": customer.city,
        "BillingCountry": customer.country,
        "CurrencyIsoCode": customer.currency,
        "Website": f"https://www.{customer.name.split(' ')[0].lower()}{customer.index}.example",
        "ERP_Customer_Id__c": None if erp_id is None else str(erp_id),
        "Tax_Registration__c": customer.tax_id,
        "Credit_Status__c": customer.credit_status,
    }
    record_id = book[SYSTEM, ACCOUNT.name, customer.key]
    return (
        record_id,
        SYSTEM,
        ACCOUNT.name,
        None,
        None,
        "",
        _present(data),
        created,
        created + dt.timedelta(days=30),
    )


def _present(data: dict) -> dict:
    return {key: value for key, value in data.items() if value is not None}


def _duplicate_account(firm: Firm, book: IdBook, customer: Customer) -> Row:
    # Planted: a salesperson re-created the account (same company, tax id and city; the name
    # differs only in case and punctuation), without the ERP link.
    created = at(firm.as_of - dt.timedelta(days=30 + customer.index % 60))
    data = {
        "Name": customer.name.upper().replace(".", ""),
        "AccountNumber": None,
        "Type": "Customer",
        "BillingCity": customer.city,
        "BillingCountry": customer.country,
        "CurrencyIsoCode": customer.currency,
        "ERP_Customer_Id__c": None,
        "Tax_Registration__c": customer.tax_id,
        "Credit_Status__c": "Pending",
    }
    record_id = book[SYSTEM, ACCOUNT.name, duplicate_key(customer)]
    return (record_id, SYSTEM, ACCOUNT.name, None, None, "", _present(data), created, created)


def _won(firm: Firm, book: IdBook, project: Project) -> Iterator[Row]:
    account = book[SYSTEM, ACCOUNT.name, project.customer.key]
    opportunity = book[SYSTEM, OPPORTUNITY.name, project.key]
    close = min(project.start - dt.timedelta(days=14), firm.as_of - dt.timedelta(days=2))
    created = at(close - dt.timedelta(days=60))
    closed_at = at(close, 16)
    yield (
        opportunity,
        SYSTEM,
        OPPORTUNITY.name,
        None,
        account,
        "Closed Won",
        {
            "Name": project.name,
            "AccountId": sf_id(ACCOUNT, account),
            "StageName": "Closed Won",
            "CloseDate": close.isoformat(),
            "Amount": money(project.value_cents),
            "CurrencyIsoCode": project.currency,
            "Probability": 100,
            "Type": "New Business",
            "IsClosed": True,
            "IsWon": True,
            "Billing_Model__c": project.model,
            "Legal_Entity__c": project.entity,
            "Description": f"{project.sow}: {project.name}",
        },
        created,
        closed_at,
    )
    months = max(1, round((project.end - project.start).days / 30.4))
    yield (
        book[SYSTEM, CONTRACT.name, project.key],
        SYSTEM,
        CONTRACT.name,
        None,
        account,
        "Activated",
        {
            "AccountId": sf_id(ACCOUNT, account),
            "ContractNumber": f"{project.index + 1:08d}",
            "Status": "Activated",
            "StartDate": project.start.isoformat(),
            "EndDate": project.end.isoformat(),
            "ContractTerm": months,
            "Opportunity__c": sf_id(OPPORTUNITY, opportunity),
            "Billing_Model__c": project.model,
            "Contract_Value__c": money(project.value_cents),
            "CurrencyIsoCode": project.currency,
            "SOW_Number__c": project.sow,
            "Description": (
                f"{project.model} statement of work with {ENTITY_BY_CODE[project.entity].name}"
            ),
        },
        closed_at,
        closed_at + dt.timedelta(days=1),
    )
