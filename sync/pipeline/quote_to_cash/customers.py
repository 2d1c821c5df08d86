"""Customer onboarding (flow 1): a CRM opportunity reaching Closed Won → its account checked →
canonical customer and opportunity → the ERP customer, through the outbox.

Two flows on the processing protocol (`sync.pipeline.processing`):

- CRM accounts (`account_flow`): nothing is written for an account by itself (an account
  becomes a customer only when a deal is won); a changed account re-offers the won deals
  parked on it (missing tax registration, credit, suspected duplicate), so fixing the account
  in the CRM is enough.
- CRM opportunities (`opportunity_flow`): an open or lost deal is read and left alone. A won
  deal's account (its newest payload in the inbox) is matched with the canonical customers by
  CRM ref, then by the account's ERP link (`ERP_Customer_Id__c`). A new customer must pass
  `rules.account_refusal` (tax, credit) and `rules.duplicates_find` against every customer
  Ledgerbridge knows; a failure parks the deal as one exception item in the customer-master
  queue (money at risk: the deal's amount). Otherwise the customer (pending approval: the ERP
  decides) and the opportunity are written with `plans_apply` (history, refs, ownership), and
  a new customer gets ONE ERP customer upsert in the outbox, keyed by its version.

The correlation id of the deal (its first won inbox item) is stored on the opportunity and
the customer and carried by every delivery and exception item that follows from it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.contrib.contenttypes.models import ContentType

from sync.errors import PayloadError
from sync.integrations.netsuite import customers as ns
from sync.integrations.salesforce import deals as sf
from sync.mappings.selectors import mapping_tables_load
from sync.models import Currency, Customer, ExternalRef, LegalEntity, Opportunity
from sync.pipeline.master_data.engine import Plan, plans_apply, records_by_ref
from sync.pipeline.models import ExceptionItem, InboxItem
from sync.pipeline.models.exception_items import Queue, Stage
from sync.pipeline.outbox.claims import deliveries_enqueue
from sync.pipeline.processing import Batch, Flow, Item
from sync.pipeline.quote_to_cash import rules
from sync.pipeline.quote_to_cash.deliveries import (
    CUSTOMER_UPSERT,
    connections_load,
    delivery_build,
)
from sync.pipeline.time_posting.references import LEGAL_ENTITY_SET

CRM = "crm"
ACCOUNT = "Account"
OPPORTUNITY = "Opportunity"
# Codes a change of the account may fix: a changed account re-offers the deals parked so.
ACCOUNT_CODES = ("TAX_REGISTRATION_MISSING", "CREDIT_BLOCKED", "DUPLICATE_SUSPECTED")


# --- accounts ---------------------------------------------------------------------------------


def accounts_write(records: list[tuple[Item, sf.Account]], batch: Batch) -> None:
    """Re-offer the won deals parked on these accounts (the fix may be in this change)."""
    causes = [f"account:{account.external_id}" for _, account in records]
    parked = list(
        ExceptionItem.objects.filter(
            status=ExceptionItem.Status.OPEN, code__in=ACCOUNT_CODES, cause__in=causes
        ).values_list("inbox_item_id", flat=True)
    )
    if parked:
        InboxItem.objects.filter(
            id__in=[i for i in parked if i], status=InboxItem.Status.PARKED
        ).update(status=InboxItem.Status.PENDING)
    batch.counts.unchanged += len(records)


account_flow = Flow(
    system=CRM,
    entity=ACCOUNT,
    record=ACCOUNT,
    read=sf.account_read,
    write=accounts_write,
    what="an account",
)


# --- opportunities --------------------------------------------------------------------------


def accounts_latest(account_ids: Iterable[str]) -> dict[str, sf.Account]:
    """The newest readable inbox payload of each CRM account (one query)."""
    found: dict[str, sf.Account] = {}
    rows = (
        InboxItem.objects.filter(system=CRM, entity=ACCOUNT, external_id__in=set(account_ids))
        .order_by("external_id", "-id")
        .values_list("external_id", "payload")
    )
    for external_id, payload in rows:
        if external_id in found:
            continue
        try:
            found[external_id] = sf.account_read(payload)
        except PayloadError:  # parked as malformed by the account flow itself
            continue
    return found


def candidates_load() -> list[rules.Candidate]:
    """Every active customer Ledgerbridge knows, as the duplicate check compares it."""
    return [
        rules.Candidate(customer_id=pk, name=name, tax_registration=tax, country=country)
        for pk, name, tax, country in Customer.objects.exclude(
            status=Customer.Status.INACTIVE
        ).values_list("id", "name", "tax_id", "legal_entity__country")
    ]


def opportunities_write(records: list[tuple[Item, sf.Opportunity]], batch: Batch) -> None:
    """Onboard the customers of the batch's won deals (see the module docstring)."""
    won = [(item, deal) for item, deal in records if deal.won]
    batch.counts.unchanged += len(records) - len(won)
    for _, deal in records:
        if not deal.won:
            batch.passed.append(batch.record_key(deal.external_id))
    if not won:
        return
    accounts = accounts_latest(deal.account_id for _, deal in won)
    known_deals = records_by_ref(CRM, Opportunity, [d.external_id for _, d in won])
    by_crm = records_by_ref(CRM, Customer, [d.account_id for _, d in won])
    by_erp = records_by_ref(
        "erp", Customer, [a.erp_customer_id for a in accounts.values() if a.erp_customer_id]
    )
    entities = {e.code: e for e in LegalEntity.objects.all()}
    currencies = set(Currency.objects.values_list("code", flat=True))
    mappings = mapping_tables_load(sets=[LEGAL_ENTITY_SET])
    candidates: list[rules.Candidate] | None = None
    customer_plans: dict[str, Plan] = {}
    deal_plans: list[tuple[Item, sf.Opportunity, str, str]] = []  # item, deal, account, corr.
    for item, deal in won:
        existing_deal = known_deals.get(deal.external_id)
        correlation = (existing_deal.correlation_id if existing_deal else "") or (
            item.correlation_id
        )
        item = item._replace(correlation_id=correlation)
        account = accounts.get(deal.account_id)
        amount = deal.amount

        def fail(code: str, message: str, fix: str, cause: str, **detail: Any) -> None:
            batch.fail(
                item,  # noqa: B023 - called at once, inside this iteration
                deal.external_id,  # noqa: B023
                code=code,
                queue=Queue.CUSTOMER_MASTER,
                message=message,
                suggested_fix=fix,
                cause=cause,
                detail=detail,
                money_at_risk=amount,  # noqa: B023
                currency=deal.currency,  # noqa: B023
            )

        if account is None:
            fail(
                "CUSTOMER_UNKNOWN",
                f"The won deal {deal.name} names account {deal.account_id or '(none)'}, which "
                "the CRM has not sent yet.",
                "Check the deal's account in the CRM; it is picked up at the next cycle.",
                f"account:{deal.account_id}",
            )
            continue
        customer = by_crm.get(account.external_id) or by_erp.get(account.erp_customer_id)
        entity = entities.get(deal.legal_entity)
        if customer is None:
            on = deal.close_date or batch.today
            subsidiary = (
                mappings.lookup(LEGAL_ENTITY_SET, deal.legal_entity, on)
                if deal.legal_entity
                else None
            )
            if entity is None or subsidiary is None:
                batch.fail(
                    item,
                    deal.external_id,
                    code="LEGAL_ENTITY_UNMAPPED",
                    queue=Queue.MAPPING,
                    stage=Stage.MAP,
                    message=f"The won deal {deal.name} is sold by legal entity "
                    f"{deal.legal_entity or '(none)'}, which has no ERP subsidiary in the "
                    "legal-entity mapping.",
                    suggested_fix="Map the legal entity to its ERP subsidiary and publish; "
                    "the deal is onboarded at the next cycle.",
                    cause=deal.legal_entity or "(none)",
                    money_at_risk=amount,
                    currency=deal.currency,
                )
                continue
            refusal = rules.account_refusal(
                tax_registration=account.tax_registration, credit_status=account.credit_status
            )
            if refusal is not None:
                fail(
                    refusal.code,
                    f"{account.name}: {refusal.message}",
                    refusal.fix,
                    f"account:{account.external_id}",
                )
                continue
            if candidates is None:
                candidates = candidates_load()
            twins = rules.duplicates_find(
                name=account.name,
                tax_registration=account.tax_registration,
                country=account.country or entity.country,
                candidates=candidates,
            )
            planned = customer_plans.get(account.external_id)
            if twins and planned is None:
                fail(
                    "DUPLICATE_SUSPECTED",
                    f"{account.name} looks like a customer Ledgerbridge already knows: "
                    + ", ".join(f"{t.name} (customer {t.customer_id})" for t in twins[:5])
                    + ". No second customer is created.",
                    "Merge the duplicate CRM account into the existing one (or link it with "
                    "ERP_Customer_Id__c), or resolve this item if they are different companies.",
                    f"account:{account.external_id}",
                    duplicates=[t.customer_id for t in twins[:20]],
                )
                continue
            if planned is None:
                customer_plans[account.external_id] = Plan(
                    item=item,
                    external_id=account.external_id,
                    values={
                        "name": account.name,
                        "legal_entity": entity.pk,
                        "tax_id": account.tax_registration,
                        "credit_status": rules.credit_status_canonical(account.credit_status),
                        "status": Customer.Status.PENDING_APPROVAL,
                    },
                    fixed={
                        "correlation_id": correlation,
                        "mapping_versions": subsidiary.stamp,
                    },
                )
                # A second account of the same company in this batch is its duplicate.
                candidates.append(
                    rules.Candidate(
                        customer_id=0,
                        name=account.name,
                        tax_registration=account.tax_registration,
                        country=account.country or entity.country,
                    )
                )
        elif account.external_id not in customer_plans:
            if not customer.tax_id and not account.tax_registration:
                # The ERP holds the customer without one either: the deal goes on (the customer
                # exists), and the tax team is told before the first invoice fails.
                batch.fail(
                    item,
                    deal.external_id,
                    code="TAX_REGISTRATION_MISSING",
                    queue=Queue.TAX,
                    message=f"{account.name} has no tax registration in the CRM or the ERP: "
                    "its invoices cannot be posted.",
                    suggested_fix="Enter the tax registration in the ERP (and on the CRM account).",
                    cause=f"account:{account.external_id}",
                    money_at_risk=amount,
                    currency=deal.currency,
                    park=False,
                )
            # Known customer: the CRM's own fields only (tax, credit, status are the ERP's).
            customer_plans[account.external_id] = Plan(
                item=item,
                external_id=account.external_id,
                existing=customer,
                values={"name": account.name},
            )
        if deal.currency not in currencies:
            batch.fail(
                item,
                deal.external_id,
                code="CURRENCY_UNKNOWN",
                queue=Queue.MAPPING,
                message=f"The won deal {deal.name} is in {deal.currency or '(no currency)'}, "
                "which Ledgerbridge does not know yet.",
                suggested_fix="Sync the ERP's currencies (or correct the deal's currency).",
                cause=deal.currency or "(none)",
                money_at_risk=amount,
                currency=deal.currency,
            )
            continue
        deal_plans.append((item, deal, account.external_id, correlation))
    done = plans_apply(
        batch,
        model=Customer,
        owner_entity="customer",
        plans=list(customer_plans.values()),
        queue=Queue.CUSTOMER_MASTER,
    )
    plans = [
        Plan(
            item=item,
            external_id=deal.external_id,
            existing=known_deals.get(deal.external_id),
            values={
                "customer": done[account_id],
                "name": deal.name,
                "amount": deal.amount,
                "currency": deal.currency,
                "close_date": deal.close_date,
                "stage": Opportunity.Stage.CLOSED_WON,
            },
            fixed={"correlation_id": correlation},
        )
        for item, deal, account_id, correlation in deal_plans
        if account_id in done
    ]
    plans_apply(
        batch,
        model=Opportunity,
        owner_entity="opportunity",
        plans=plans,
        queue=Queue.CUSTOMER_MASTER,
    )
    created = {pk for ext, pk in done.items() if customer_plans[ext].existing is None}
    batch.counts.deliveries += customers_to_erp_enqueue(
        customer_ids=created, accounts=accounts, now=batch.now
    )


def customers_to_erp_enqueue(
    *, customer_ids: Iterable[int], accounts: dict[str, sf.Account], now: dt.datetime
) -> int:
    """One ERP customer upsert per new customer (external id: the CRM account number, else
    `SF-<account Id>`), subsidiary from the legal-entity mapping version noted on it. Returns
    how many deliveries are new."""
    customers = list(
        Customer.objects.filter(id__in=list(customer_ids)).select_related("legal_entity")
    )
    if not customers:
        return 0
    erp = connections_load().get("erp")
    if erp is None:
        return 0
    ct = ContentType.objects.get_for_model(Customer)
    crm_ids = dict(
        ExternalRef.objects.filter(
            system=CRM, content_type=ct, object_id__in=[str(c.pk) for c in customers]
        ).values_list("object_id", "external_id")
    )
    # Currency refs are keyed by ERP id: read them the other way round.
    currency_ids = dict(
        ExternalRef.objects.filter(
            system="erp",
            content_type=ContentType.objects.get_for_model(Currency),
            object_id__in=[c.legal_entity.functional_currency_id for c in customers],
        ).values_list("object_id", "external_id")
    )
    mappings = mapping_tables_load(sets=[LEGAL_ENTITY_SET])
    deliveries = []
    for customer in customers:
        account = accounts.get(crm_ids.get(str(customer.pk), ""))
        if account is None:
            continue
        subsidiary = mappings.lookup(LEGAL_ENTITY_SET, customer.legal_entity.code, now.date())
        if subsidiary is None:
            continue
        key = customer_erp_key(account)
        deliveries.append(
            delivery_build(
                connection=erp,
                operation=CUSTOMER_UPSERT,
                record=customer,
                key=f"{customer.pk}:v{customer.version}",
                external_id=key,
                record_type=ns.CUSTOMER,
                body=ns.customer_body(
                    external_id=key,
                    name=customer.name,
                    subsidiary=subsidiary.target_value,
                    currency=currency_ids.get(customer.legal_entity.functional_currency_id),
                    tax_registration=customer.tax_id,
                    account_number=account.number,
                ),
                correlation_id=customer.correlation_id,
                now=now,
            )
        )
    return deliveries_enqueue(deliveries=deliveries)


def customer_erp_key(account: sf.Account) -> str:
    """The external id of the ERP customer onboarded from `account`: its CRM account number
    (the key the ERP's customers carry already), else `SF-<Id>`."""
    return account.number or f"SF-{account.external_id}"


opportunity_flow = Flow(
    system=CRM,
    entity=OPPORTUNITY,
    record=OPPORTUNITY,
    read=sf.opportunity_read,
    write=opportunities_write,
    what="an opportunity",
    close_stages=(Stage.PARSE, Stage.MAP, Stage.VALIDATE),
)
