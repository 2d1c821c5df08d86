"""Pair "time": PSA approved time entries (canonical TimeEntry rows, and approved entries parked
in a queue before they became one) against the ERP's time bills read through SuiteQL.

Matched on the ERP external id `KT-TE-<PSA id>`; a bill without it is attributed to an entry by
employee, date, task and hours (a second bill someone keyed in by hand is a duplicate). Compared:
hours (hundredths), amount = hours x rate in the currency's minor units (half-up), currency, and
status (live: approved, posted, invoiced; void: rejected or reversed here, rejected in the ERP).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.contenttypes.models import ContentType

from reconciliation.pairs.base import Explaining, Pair, Row, Scope, batched, hundredths, minor_units
from sync.errors import PayloadError
from sync.integrations.kantata.time_entries import time_entry_read
from sync.integrations.netsuite import reconcile_reads, time_bills
from sync.models import Currency, ExternalRef, Project, Task, TimeEntry, Worker
from sync.models.transactions import ApprovalStatus
from sync.pipeline.models import ExceptionItem, InboxItem
from sync.pipeline.models.exception_items import Queue, Stage

NAME = "time"
LIVE = "live"
VOID = "void"
LIVE_STATUSES = frozenset({ApprovalStatus.APPROVED, ApprovalStatus.POSTED, ApprovalStatus.INVOICED})
PARKED_PREFIX = "psa:time_entry:"
# Stages at which a failure keeps an approved entry from becoming a canonical row.
PARKING_STAGES = (Stage.PARSE, Stage.MAP, Stage.VALIDATE)
CHUNK = 5000


def currency_digits() -> dict[str, int]:
    return dict(Currency.objects.values_list("code", "minor_units"))


def _refs(system: str, model: Any) -> dict[str, str]:
    """{canonical pk (text): external id} of one model's refs in one system."""
    return dict(
        ExternalRef.objects.filter(
            system=system, content_type=ContentType.objects.get_for_model(model)
        ).values_list("object_id", "external_id")
    )


def _match(employee: str | None, day: str, task: str | None, quantity: int | None) -> str:
    return f"{employee or ''}|{day}|{task or ''}|{'' if quantity is None else quantity}"


def _projects() -> dict[int, int]:
    return dict(Project.objects.values_list("id", "legal_entity_id"))


def source_rows(scope: Scope) -> Iterator[list[Row]]:
    """The canonical time entries in scope, then the approved entries parked before they became
    one (open items `psa:time_entry:<id>`, read from their stored payloads)."""
    digits = currency_digits()
    employees, tasks = _refs("erp", Worker), _refs("erp", Task)
    projects = _projects()
    date_from, date_to = scope.dates
    entries = TimeEntry.objects.all()
    if date_from is not None:
        entries = entries.filter(work_date__range=(date_from, date_to))
    if scope.project_id is not None:
        entries = entries.filter(project_id=scope.project_id)
    if scope.legal_entity_id is not None:
        entries = entries.filter(project__legal_entity_id=scope.legal_entity_id)
    columns = (
        "pk",
        "psa_id",
        "worker_id",
        "task_id",
        "project_id",
        "work_date",
        "hours",
        "bill_rate",
        "currency_id",
        "status",
        "approved_at",
    )

    def canonical() -> Iterator[Row]:
        for pk, psa_id, worker, task, project, day, hours, rate, currency, status, approved in (
            entries.values_list(*columns).order_by().iterator(chunk_size=CHUNK)
        ):
            quantity = hundredths(hours)
            live = status in LIVE_STATUSES
            yield Row(
                key=time_bills.time_bill_key(psa_id),
                match=_match(
                    employees.get(str(worker)), day.isoformat(), tasks.get(str(task)), quantity
                ),
                external_id=psa_id,
                required=live,
                status=LIVE if live else VOID,
                quantity=quantity,
                amount=minor_units(hours * rate, digits=digits.get(currency, 2)),
                currency=currency,
                period=day.isoformat()[:7],
                legal_entity_id=projects.get(project),
                project_id=project,
                record_id=pk,
                approved_at=approved,
            )

    yield from batched(canonical(), CHUNK)
    yield from batched(_parked_rows(scope, digits=digits, projects=projects), CHUNK)


def _parked_rows(
    scope: Scope, *, digits: dict[str, int], projects: dict[int, int]
) -> Iterator[Row]:
    """Approved PSA entries waiting in a queue (never canonical): few, so read one by one from
    their inbox payloads with a fixed number of queries."""
    parked = dict(
        ExceptionItem.objects.filter(
            record_key__startswith=PARKED_PREFIX,
            stage__in=PARKING_STAGES,
            status__in=ExceptionItem.OPEN_STATUSES,
            inbox_item__isnull=False,
        ).values_list("record_key", "inbox_item_id")
    )
    psa_ids = {key.removeprefix(PARKED_PREFIX): inbox for key, inbox in parked.items()}
    known = set(TimeEntry.objects.filter(psa_id__in=list(psa_ids)).values_list("psa_id", flat=True))
    payloads = dict(
        InboxItem.objects.filter(
            pk__in=[i for p, i in psa_ids.items() if p not in known]
        ).values_list("pk", "payload")
    )
    if not payloads:
        return
    workspaces = {v: int(k) for k, v in _refs("psa", Project).items()}
    users = {v: k for k, v in _refs("psa", Worker).items()}
    stories = {v: k for k, v in _refs("psa", Task).items()}
    employees, tasks = _refs("erp", Worker), _refs("erp", Task)
    date_from, date_to = scope.dates
    for psa_id, inbox_id in sorted(psa_ids.items()):
        if inbox_id not in payloads:
            continue
        try:
            p = time_entry_read(payloads[inbox_id])
        except PayloadError:
            continue  # unreadable: its own open item says so; nothing here to compare
        if date_from is not None and not date_from <= p.work_date <= date_to:
            continue
        project = workspaces.get(p.workspace_id)
        legal_entity = projects.get(project) if project is not None else None
        if not scope.keeps(legal_entity_id=legal_entity, project_id=project):
            continue
        quantity = hundredths(p.hours)
        worker, task = users.get(p.user_id), stories.get(p.story_id)
        yield Row(
            key=time_bills.time_bill_key(psa_id),
            match=_match(
                employees.get(worker or ""),
                p.work_date.isoformat(),
                tasks.get(task or ""),
                quantity,
            ),
            external_id=psa_id,
            required=True,
            status=LIVE,
            quantity=quantity,
            amount=minor_units(p.hours * p.rate, digits=digits.get(p.currency, 2)),
            currency=p.currency,
            period=p.work_date.isoformat()[:7],
            legal_entity_id=legal_entity,
            project_id=project,
            record_id=None,
            approved_at=None,
        )


def _decimal(value: Any) -> Decimal | None:
    try:
        return None if value in (None, "") else Decimal(str(value))
    except InvalidOperation:
        return None


def target_rows(scope: Scope, connector: Any) -> Iterator[list[Row]]:
    """The ERP's time bills in scope, read through SuiteQL page by page."""
    digits = currency_digits()
    jobs = reconcile_reads.jobs_currency(connector)
    by_code = {
        code: (pk, entity)
        for code, pk, entity in Project.objects.values_list("code", "id", "legal_entity_id")
    }
    date_from, date_to = scope.dates
    for page in reconcile_reads.time_bills_pages(connector, date_from=date_from, date_to=date_to):
        rows = []
        for bill in page:
            code, currency = jobs.get(str(bill.get("customer") or ""), ("", ""))
            project, legal_entity = by_code.get(code, (None, None))
            if not scope.keeps(legal_entity_id=legal_entity, project_id=project):
                continue
            external = str(bill.get("externalid") or "")
            hours, rate = _decimal(bill.get("hours")), _decimal(bill.get("rate")) or Decimal(0)
            quantity = None if hours is None else hundredths(hours)
            day = str(bill.get("trandate") or "")
            live = str(bill.get("approvalstatus") or "") != reconcile_reads.REJECTED
            rows.append(
                Row(
                    key=external if external.startswith(time_bills.KEY_PREFIX) else None,
                    match=_match(
                        str(bill.get("employee") or ""),
                        day,
                        str(bill.get("casetaskevent") or ""),
                        quantity,
                    ),
                    external_id=str(bill["id"]),
                    required=live,
                    status=LIVE if live else VOID,
                    quantity=quantity,
                    amount=None
                    if hours is None
                    else minor_units(hours * rate, digits=digits.get(currency, 2)),
                    currency=currency,
                    period=day[:7],
                    legal_entity_id=legal_entity,
                    project_id=project,
                    record_id=None,
                    approved_at=None,
                )
            )
        yield rows


def explaining(breaks: list[tuple[str, list[str]]]) -> list[Explaining]:
    return [
        Explaining(
            record_keys=([f"{PARKED_PREFIX}{source}"] if source else [])
            + [f"erp:{time_bills.RECORD_TYPE}:{t}" for t in targets],
        )
        for source, targets in breaks
    ]


PAIR = Pair(
    name=NAME,
    label="PSA approved time ↔ ERP time bills",
    source_rows=source_rows,
    target_rows=target_rows,
    target_system="erp",
    queue=Queue.TIME_AND_EXPENSE,
    explaining=explaining,
    money=True,
    delivery_model=TimeEntry,
    attribute=True,
    fixes={
        "missing_in_target": "The ERP has no time bill for this approved entry (deleted, or "
        "never posted). Retry the entry's delivery from this item: it upserts the bill under "
        "its external id, so it cannot post twice.",
        "missing_in_source": "The ERP holds a time bill that no approved PSA entry accounts for "
        "(un-approved in the PSA, or keyed in by hand). Reverse the bill in the ERP, or approve "
        "the entry in the PSA.",
        "duplicate": "The ERP holds more than one time bill for this entry. Reverse the bills "
        "that do not carry the entry's external id in the ERP.",
        "amount_mismatch": "The ERP's hours or amount differ from the approved entry. Retry the "
        "delivery to restore the approved values, or correct the bill in the ERP.",
        "status_mismatch": "The entry is rejected or reversed here but its bill is live in the "
        "ERP, or the other way round. Reverse the bill in the ERP, or re-approve the entry.",
    },
)
