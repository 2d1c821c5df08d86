"""Billing triggers → invoice candidates, set-based, each linked to exactly what it bills.

- Time and materials: posted billable time entries and posted billable expenses of a COMPLETED
  month (before the first day of `today`'s month), per project, month and currency, on a
  project whose contract is time and materials → one candidate (source kind time).
- Fixed fee: a completed milestone → one candidate of its amount (source kind milestone).
- Usage: a usage contract's recorded or rated usage of a completed month, per currency → one
  candidate (source kind usage), on the contract's project.

Only records no candidate links yet are read (`billing_links__isnull`), and every record a
candidate bills gets an `InvoiceCandidateSource` row, unique per record: a second run creates
nothing, and a record approved late into a billed month becomes a new candidate for that month
(nothing approved is forgotten, nothing is billed twice). Entries are billed once posted
(decision 101); a billable entry without a bill rate is held and reported (decision 102).

Billed before Ledgerbridge: a project month that billing has billed already (a `billedPeriod`
TargetRecord, `billing.history`) and that no candidate has billed yet gets its candidate as
invoiced, linked to that invoice, and its records move to invoiced: nothing is sent (decision
106). Work posted into that month afterwards is new work: a pending candidate.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import transaction

from sync.audit import audited_bulk_create
from sync.integrations.stripe.invoices import BILLED_PERIOD, billed_period_key
from sync.models import (
    Contract,
    Currency,
    Expense,
    ExternalRef,
    InvoiceCandidate,
    Milestone,
    Project,
    TimeEntry,
    UsageRecord,
)
from sync.models.billing import InvoiceCandidateSource
from sync.models.transactions import ApprovalStatus
from sync.pipeline.billing.issued import records_invoiced
from sync.pipeline.billing.lines import (
    EXPENSE_LINE_PREFIX,
    SourceLine,
    lines_build,
    lines_total,
    month_start,
)
from sync.pipeline.exception_items import Failure, exception_items_raise
from sync.pipeline.models import TargetRecord
from sync.pipeline.models.exception_items import Queue, Stage

Kind = InvoiceCandidate.SourceKind
TIME_AND_MATERIALS = Contract.BillingModel.TIME_AND_MATERIALS
BILLABLE_WORK = (ApprovalStatus.POSTED,)
UNBILLED_USAGE = (UsageRecord.Status.RECORDED, UsageRecord.Status.RATED)
SOURCE_BATCH = 2000


@dataclass
class CandidateCounts:
    candidates: int = 0
    sources: int = 0
    amounts: dict[str, Decimal] = field(default_factory=dict)  # by currency
    held: int = 0  # billable entries without a bill rate
    billed_before: int = 0  # candidates linked to invoices made before Ledgerbridge


@dataclass
class _Draft:
    """A candidate being assembled: its key fields and its sources (the FK name and id)."""

    kind: str
    project_id: int
    contract_id: int
    currency: str
    period_start: dt.date | None
    correlation_id: str
    sources: list[tuple[str, int, SourceLine]] = field(default_factory=list)
    billed_by: str | None = None  # the billing invoice that billed it before Ledgerbridge


def invoice_candidates_build(
    *, today: dt.date, actor: str, run_id: int | None = None
) -> CandidateCounts:
    """Create the candidates every billing condition met by `today` calls for, with their
    source links, in one transaction (history rows attributed to `actor`). Idempotent: a
    second call with nothing new creates nothing. Reads each kind of source in one query;
    writes candidates with history and links in bulk. Raises IntegrityError (nothing written)
    if a concurrent run linked one of the same records first: the next run retries."""
    cutoff = month_start(today)
    drafts: dict[tuple, _Draft] = {}
    counts = CandidateCounts()
    held = _time_drafts(drafts, cutoff=cutoff)
    _expense_drafts(drafts, cutoff=cutoff)
    _milestone_drafts(drafts)
    held_usage = _usage_drafts(drafts, cutoff=cutoff)
    counts.held = sum(len(v) for v in held.values())
    for key, invoice_id in _billed_before(drafts).items():
        drafts[key].billed_by = invoice_id
    with transaction.atomic():
        _write(list(drafts.values()), actor=actor, counts=counts)
        exception_items_raise(failures=[*_held_failures(held), *held_usage], run_id=run_id)
    return counts


# -- reading the sources ------------------------------------------------------------------------
def _draft(drafts: dict, key: tuple, **values: Any) -> _Draft:
    if key not in drafts:
        drafts[key] = _Draft(**values)
    return drafts[key]


def _time_drafts(drafts: dict, *, cutoff: dt.date) -> dict[tuple, list[dict]]:
    """Posted billable time of completed months on T&M projects; returns the entries held
    for want of a bill rate, by (project, month, currency)."""
    held: dict[tuple, list[dict]] = defaultdict(list)
    rows = (
        TimeEntry.objects.filter(
            status__in=BILLABLE_WORK,
            billable=True,
            work_date__lt=cutoff,
            project__contract__billing_model=TIME_AND_MATERIALS,
            billing_links__isnull=True,
        )
        .order_by("project_id", "work_date", "id")
        .values(
            "id",
            "project_id",
            "project__contract_id",
            "project__correlation_id",
            "worker_id",
            "worker__name",
            "work_date",
            "hours",
            "bill_rate",
            "currency_id",
        )
    )
    for row in rows:
        month = month_start(row["work_date"])
        key = (Kind.TIME, row["project_id"], month, row["currency_id"])
        if not row["bill_rate"]:
            held[key].append(row)
            continue
        draft = _draft(
            drafts,
            key,
            kind=Kind.TIME,
            project_id=row["project_id"],
            contract_id=row["project__contract_id"],
            currency=row["currency_id"],
            period_start=month,
            correlation_id=row["project__correlation_id"],
        )
        rate = row["bill_rate"].normalize()
        line = SourceLine(
            line_key=f"time:{row['worker_id']}:{rate}",
            description=f"{row['worker__name']}, {month:%B %Y}: hours at {rate}",
            quantity=row["hours"],
            unit_amount=row["bill_rate"],
        )
        draft.sources.append(("time_entry", row["id"], line))
    return held


def _expense_drafts(drafts: dict, *, cutoff: dt.date) -> None:
    """Posted billable expenses of completed months on T&M projects, one line per category,
    on the same candidate as the project's time of that month and currency."""
    rows = (
        Expense.objects.filter(
            status__in=BILLABLE_WORK,
            billable=True,
            incurred_date__lt=cutoff,
            project__contract__billing_model=TIME_AND_MATERIALS,
            billing_links__isnull=True,
        )
        .order_by("project_id", "incurred_date", "id")
        .values(
            "id",
            "project_id",
            "project__contract_id",
            "project__correlation_id",
            "incurred_date",
            "amount",
            "currency_id",
            "category",
        )
    )
    for row in rows:
        month = month_start(row["incurred_date"])
        draft = _draft(
            drafts,
            (Kind.TIME, row["project_id"], month, row["currency_id"]),
            kind=Kind.TIME,
            project_id=row["project_id"],
            contract_id=row["project__contract_id"],
            currency=row["currency_id"],
            period_start=month,
            correlation_id=row["project__correlation_id"],
        )
        label = Expense.Category(row["category"]).label if row["category"] else "Other"
        line = SourceLine(
            line_key=f"expense:{row['category']}",
            description=f"{EXPENSE_LINE_PREFIX}, {label.lower()}, {month:%B %Y}",
            quantity=Decimal(1),
            unit_amount=row["amount"],
        )
        draft.sources.append(("expense", row["id"], line))


def _milestone_drafts(drafts: dict) -> None:
    rows = (
        Milestone.objects.filter(status=Milestone.Status.COMPLETED, billing_links__isnull=True)
        .order_by("id")
        .values(
            "id",
            "name",
            "project_id",
            "contract_id",
            "project__correlation_id",
            "amount",
            "currency_id",
        )
    )
    for row in rows:
        draft = _draft(
            drafts,
            (Kind.MILESTONE, row["id"]),
            kind=Kind.MILESTONE,
            project_id=row["project_id"],
            contract_id=row["contract_id"],
            currency=row["currency_id"],
            period_start=None,
            correlation_id=row["project__correlation_id"],
        )
        line = SourceLine(
            line_key=f"milestone:{row['id']}",
            description=f"Fixed fee milestone: {row['name']}",
            quantity=Decimal(1),
            unit_amount=row["amount"],
        )
        draft.sources.append(("milestone", row["id"], line))


def _usage_drafts(drafts: dict, *, cutoff: dt.date) -> list[Failure]:
    """Usage of completed months per contract and currency, on the contract's first project
    (a usage record names its contract only). A contract without a project is reported."""
    rows = list(
        UsageRecord.objects.filter(
            status__in=UNBILLED_USAGE, period_date__lt=cutoff, billing_links__isnull=True
        )
        .order_by("contract_id", "period_date", "id")
        .values("id", "contract_id", "quantity", "unit", "unit_price", "currency_id", "period_date")
    )
    contract_ids = {row["contract_id"] for row in rows}
    projects: dict[int, tuple[int, str]] = {}
    for project in (
        Project.objects.filter(contract_id__in=contract_ids)
        .order_by("-id")
        .values("id", "contract_id", "correlation_id")
    ):
        projects[project["contract_id"]] = (project["id"], project["correlation_id"])
    failures: dict[int, Failure] = {}
    for row in rows:
        month = month_start(row["period_date"])
        if row["contract_id"] not in projects:
            failures.setdefault(
                row["contract_id"],
                Failure(
                    record_key=f"billing:contract:{row['contract_id']}",
                    stage=Stage.VALIDATE,
                    queue=Queue.PROJECT_SETUP,
                    code="USAGE_CONTRACT_WITHOUT_PROJECT",
                    message=f"Usage of contract {row['contract_id']} waits to be billed: the "
                    "contract has no project to bill it on.",
                    suggested_fix="Provision the contract's project; the next cycle bills it.",
                    cause=f"contract:{row['contract_id']}",
                    currency=row["currency_id"],
                ),
            )
            continue
        project_id, correlation_id = projects[row["contract_id"]]
        draft = _draft(
            drafts,
            (Kind.USAGE, row["contract_id"], month, row["currency_id"]),
            kind=Kind.USAGE,
            project_id=project_id,
            contract_id=row["contract_id"],
            currency=row["currency_id"],
            period_start=month,
            correlation_id=correlation_id,
        )
        price = row["unit_price"].normalize()
        line = SourceLine(
            line_key=f"usage:{row['unit']}:{price}",
            description=f"Usage, {row['unit']} at {price}, {month:%B %Y}",
            quantity=row["quantity"],
            unit_amount=row["unit_price"],
        )
        draft.sources.append(("usage_record", row["id"], line))
    return list(failures.values())


# -- writing ------------------------------------------------------------------------------------
def _write(drafts: list[_Draft], *, actor: str, counts: CandidateCounts) -> None:
    if not drafts:
        return
    minor = dict(
        Currency.objects.filter(code__in={d.currency for d in drafts}).values_list(
            "code", "minor_units"
        )
    )
    candidates = []
    for draft in drafts:
        lines = lines_build(
            sources=(s for _, _, s in draft.sources), minor_units=minor[draft.currency]
        )
        amount = lines_total(lines)
        candidates.append(
            InvoiceCandidate(
                contract_id=draft.contract_id,
                project_id=draft.project_id,
                source_kind=draft.kind,
                amount=amount,
                currency_id=draft.currency,
                period_start=draft.period_start,
                correlation_id=draft.correlation_id or "",
                status=InvoiceCandidate.Status.INVOICED
                if draft.billed_by
                else InvoiceCandidate.Status.PENDING,
            )
        )
        counts.amounts[draft.currency] = counts.amounts.get(draft.currency, Decimal(0)) + amount
    created = audited_bulk_create(model=InvoiceCandidate, objs=candidates, actor=actor)
    links = [
        InvoiceCandidateSource(
            candidate_id=candidate.pk,
            line_key=line.line_key,
            description=line.description[:500],
            quantity=line.quantity,
            unit_amount=line.unit_amount,
            **{f"{kind}_id": record_id},
        )
        for candidate, draft in zip(created, drafts, strict=True)
        for kind, record_id, line in draft.sources
    ]
    InvoiceCandidateSource.objects.bulk_create(links, batch_size=SOURCE_BATCH)
    counts.candidates += len(created)
    counts.sources += len(links)
    billed = [(c, d.billed_by) for c, d in zip(created, drafts, strict=True) if d.billed_by]
    if billed:
        counts.billed_before += len(billed)
        _billed_before_link(billed, actor=actor)


def _billed_before(drafts: dict[tuple, _Draft]) -> dict[tuple, str]:
    """{draft key: billing invoice id} of the monthly drafts whose project month billing billed
    before Ledgerbridge and no candidate has billed yet. Three queries."""
    monthly = {k: d for k, d in drafts.items() if d.kind in (Kind.TIME, Kind.USAGE)}
    if not monthly:
        return {}
    project_ids = {d.project_id for d in monthly.values()}
    codes = dict(Project.objects.filter(pk__in=project_ids).values_list("pk", "code"))
    wanted = {
        key: billed_period_key(codes[d.project_id], f"{d.period_start:%Y-%m}")
        for key, d in monthly.items()
    }
    known = dict(
        TargetRecord.objects.filter(
            record_type=BILLED_PERIOD, external_id__in=set(wanted.values())
        ).values_list("external_id", "target_id")
    )
    if not known:
        return {}
    # A month is recognised once: what is posted into it after its first candidate is new work.
    seen = set(
        InvoiceCandidate.objects.filter(
            project_id__in=project_ids,
            period_start__in={d.period_start for d in monthly.values()},
            source_kind__in=[Kind.TIME, Kind.USAGE],
        ).values_list("project_id", "period_start", "source_kind")
    )
    return {
        key: known[ref]
        for key, ref in wanted.items()
        if ref in known
        and (monthly[key].project_id, monthly[key].period_start, monthly[key].kind) not in seen
    }


def _billed_before_link(billed: list[tuple[InvoiceCandidate, str]], *, actor: str) -> None:
    """What the invoices billed moves to invoiced; each invoice gets a billing ref to the first
    candidate it billed (a ref names one record per external id)."""
    candidate_type = ContentType.objects.get_for_model(InvoiceCandidate)
    taken = set(
        ExternalRef.objects.filter(
            system=ExternalRef.System.BILLING,
            content_type=candidate_type,
            external_id__in={invoice_id for _, invoice_id in billed},
        ).values_list("external_id", flat=True)
    )
    refs = []
    for candidate, invoice_id in billed:
        if invoice_id not in taken:
            taken.add(invoice_id)
            refs.append(
                ExternalRef(
                    system=ExternalRef.System.BILLING,
                    content_type=candidate_type,
                    object_id=str(candidate.pk),
                    external_id=invoice_id,
                    correlation_id=candidate.correlation_id,
                )
            )
    audited_bulk_create(model=ExternalRef, objs=refs, actor=actor)
    records_invoiced(candidate_ids=[c.pk for c, _ in billed], actor=actor)


def _held_failures(held: dict[tuple, list[dict]]) -> list[Failure]:
    failures = []
    for (_, project_id, month, currency), rows in held.items():
        hours = sum((row["hours"] for row in rows), Decimal(0))
        failures.append(
            Failure(
                record_key=f"billing:time:{project_id}:{month:%Y-%m}:{currency}",
                stage=Stage.VALIDATE,
                queue=Queue.BILLING,
                code="TIME_BILL_RATE_MISSING",
                message=f"{len(rows)} billable time entries ({hours} h) of project {project_id} "
                f"in {month:%B %Y} have no bill rate: they are not billed.",
                suggested_fix="Set the rate in the PSA (a change after posting is a reversal "
                "and a new entry), or mark the entries non-billable.",
                cause=f"project:{project_id}",
                detail={"entries": [row["id"] for row in rows[:50]], "hours": str(hours)},
                currency=currency,
            )
        )
    return failures
