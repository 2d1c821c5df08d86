"""ERP reference data: currency, subsidiary → legal entity, department → cost centre, periods.

Matching keys (what the sandbox generator writes on both sides), after the ERP ref: currency
by ISO `symbol`; subsidiary → LegalEntity by `externalid` (the legal entity code, "LB-GB");
department → CostCentre by (legal entity, `externalid` "GB-100"); accountingPeriod →
AccountingPeriod by (legal entity, start date).
"""

from __future__ import annotations

from typing import Any

from sync.errors import PayloadError
from sync.models import AccountingPeriod, CostCentre, Currency, LegalEntity
from sync.pipeline.master_data.engine import (
    Plan,
    Reader,
    missing_reference,
    plans_apply,
    records_by_ref,
    refs_load,
)
from sync.pipeline.master_data.erp_rows import (
    SYSTEM,
    Row,
    active_status,
    row_read,
    subsidiaries_load,
)
from sync.pipeline.models.exception_items import Queue
from sync.pipeline.processing import Batch

# --- currency -------------------------------------------------------------------------------


def currency_parse(payload: Any) -> Row:
    def read(r: Reader) -> dict[str, Any]:
        symbol = r.text("symbol", max_length=3)
        if symbol is not None and not (len(symbol) == 3 and symbol.isalpha()):
            r.errors.append("`symbol` must be a three-letter ISO 4217 code.")
        return {
            "code": symbol.upper() if symbol else None,
            "name": r.text("name", required=False, max_length=100),
            "inactive": r.flag("isinactive"),
        }

    return row_read(payload, "currency", read)


def currency_plan(records: list, batch: Batch) -> None:
    by_ref = records_by_ref(SYSTEM, Currency, [p.external_id for _, p in records])
    by_code = Currency.objects.in_bulk({p.fields["code"] for _, p in records})
    plans = []
    for item, p in records:
        code = p.fields["code"]
        plans.append(
            Plan(
                item=item,
                external_id=p.external_id,
                existing=by_ref.get(p.external_id) or by_code.get(code),
                values={
                    "name": p.fields["name"] or code,
                    "status": active_status(p.fields["inactive"]),
                },
                fixed={"code": code},
                natural_key=code,
            )
        )
    plans_apply(batch, model=Currency, owner_entity="currency", plans=plans, queue=Queue.MAPPING)


# --- subsidiary → legal entity --------------------------------------------------------------


def subsidiary_parse(payload: Any) -> Row:
    def read(r: Reader) -> dict[str, Any]:
        country = r.text("country", max_length=2)
        if country is not None and not (len(country) == 2 and country.isalpha()):
            r.errors.append("`country` must be a two-letter ISO 3166 code.")
        return {
            "code": r.text("externalid", required=False, max_length=20),
            "name": r.text("name", max_length=200),
            "country": country.upper() if country else None,
            "currency": r.text("currency"),
            "inactive": r.flag("isinactive"),
        }

    row = row_read(payload, "subsidiary", read)
    # Without an externalId the legal entity is known by its NetSuite id (documented).
    row.fields["code"] = row.fields["code"] or f"NS-SUB-{row.external_id}"[:20]
    return row


def subsidiary_plan(records: list, batch: Batch) -> None:
    currencies = refs_load(SYSTEM, Currency, [p.fields["currency"] for _, p in records])
    by_ref = records_by_ref(SYSTEM, LegalEntity, [p.external_id for _, p in records])
    by_code = LegalEntity.objects.in_bulk({p.fields["code"] for _, p in records}, field_name="code")
    plans = []
    for item, p in records:
        currency = currencies.get(p.fields["currency"])
        if currency is None:
            missing_reference(batch, item, p.external_id, what="currency", ref=p.fields["currency"])
            continue
        code = p.fields["code"]
        plans.append(
            Plan(
                item=item,
                external_id=p.external_id,
                existing=by_ref.get(p.external_id) or by_code.get(code),
                values={
                    "code": code,
                    "name": p.fields["name"],
                    "country": p.fields["country"],
                    "functional_currency": currency,
                    "status": active_status(p.fields["inactive"]),
                },
                natural_key=code,
            )
        )
    plans_apply(
        batch, model=LegalEntity, owner_entity="legal_entity", plans=plans, queue=Queue.MAPPING
    )


# --- department → cost centre -----------------------------------------------------------------


def department_parse(payload: Any) -> Row:
    def read(r: Reader) -> dict[str, Any]:
        return {
            "code": r.text("externalid", required=False, max_length=30),
            "name": r.text("name", max_length=200),
            "subsidiary": r.text("subsidiary"),
            "inactive": r.flag("isinactive"),
        }

    row = row_read(payload, "department", read)
    row.fields["code"] = row.fields["code"] or f"NS-DEPT-{row.external_id}"[:30]
    return row


def department_plan(records: list, batch: Batch) -> None:
    entities = subsidiaries_load(records)
    by_ref = records_by_ref(SYSTEM, CostCentre, [p.external_id for _, p in records])
    by_key = {
        (c.legal_entity_id, c.code): c
        for c in CostCentre.objects.filter(code__in={p.fields["code"] for _, p in records})
    }
    plans = []
    for item, p in records:
        entity = entities.get(p.fields["subsidiary"])
        if entity is None:
            missing_reference(
                batch, item, p.external_id, what="subsidiary", ref=p.fields["subsidiary"]
            )
            continue
        key = (entity, p.fields["code"])
        plans.append(
            Plan(
                item=item,
                external_id=p.external_id,
                existing=by_ref.get(p.external_id) or by_key.get(key),
                values={
                    "code": p.fields["code"],
                    "name": p.fields["name"],
                    "legal_entity": entity,
                    "status": active_status(p.fields["inactive"]),
                },
                natural_key=key,
            )
        )
    plans_apply(
        batch, model=CostCentre, owner_entity="cost_centre", plans=plans, queue=Queue.MAPPING
    )


# --- accounting period ----------------------------------------------------------------------------


def period_parse(payload: Any) -> Row:
    def read(r: Reader) -> dict[str, Any]:
        fields = {
            "name": r.text("periodname", required=False),
            "start": r.day("startdate"),
            "end": r.day("enddate"),
            "closed": r.flag("closed"),
            "summary": r.flag("isquarter") or r.flag("isyear"),
            "subsidiary": r.text("subsidiary", required=False),
        }
        if fields["start"] and fields["end"] and fields["end"] < fields["start"]:
            r.errors.append("`enddate` is before `startdate`.")
        return fields

    row = row_read(payload, "accountingPeriod", read)
    if row.fields["subsidiary"] is None and not row.fields["summary"]:
        # Shared periods (no subsidiary) would need one canonical period per legal entity
        # under one ERP id; the ref model allows one. Not supported yet: reported, not guessed.
        raise PayloadError(
            "`subsidiary` is missing: periods shared by every subsidiary are "
            "not supported; sync per-subsidiary periods."
        )
    return row


def period_plan(records: list, batch: Batch) -> None:
    summaries = [(i, p) for i, p in records if p.fields["summary"]]
    batch.counts.unchanged += len(summaries)  # quarters and years take no postings
    records = [(i, p) for i, p in records if not p.fields["summary"]]
    entities = subsidiaries_load(records)
    by_ref = records_by_ref(SYSTEM, AccountingPeriod, [p.external_id for _, p in records])
    by_key = {
        (a.legal_entity_id, a.start_date): a
        for a in AccountingPeriod.objects.filter(
            legal_entity_id__in=set(entities.values()),
            start_date__in={p.fields["start"] for _, p in records},
        )
    }
    plans = []
    for item, p in records:
        entity = entities.get(p.fields["subsidiary"])
        if entity is None:
            missing_reference(
                batch, item, p.external_id, what="subsidiary", ref=p.fields["subsidiary"]
            )
            continue
        key = (entity, p.fields["start"])
        existing = by_ref.get(p.external_id) or by_key.get(key)
        values = {
            "legal_entity": entity,
            "start_date": p.fields["start"],
            "end_date": p.fields["end"],
            "status": AccountingPeriod.Status.CLOSED
            if p.fields["closed"]
            else AccountingPeriod.Status.OPEN,
        }
        if existing is not None and existing.status == AccountingPeriod.Status.LOCKED:
            values.pop("status")  # locked is our hard close: the ERP's "closed" agrees
        plans.append(
            Plan(
                item=item,
                external_id=p.external_id,
                existing=existing,
                values=values,
                natural_key=key,
            )
        )
    plans_apply(
        batch,
        model=AccountingPeriod,
        owner_entity="accounting_period",
        plans=plans,
        queue=Queue.TIME_AND_EXPENSE,
    )
