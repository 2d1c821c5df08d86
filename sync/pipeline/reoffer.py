"""Re-offer parked records whose cause other records may have removed since.

A record parked because something it refers to was missing or not ready (a worker whose legal
entity the ERP had not sent yet, time on a project or in a period not there yet) is
fixed by data that arrives from another system, usually within a cycle or two: connections are
pulled on their own schedules, so a worker can be processed before its legal entity. Nothing
would pull that record again (the source has not changed it), so without a re-offer it would
wait for a person to press replay.

Each cycle, before processing, the inbox items of open exception items with such a cause go
back to pending and are processed with everything else, in dependency order. One that passes
resolves its item ("Processed on replay" / "Passed validation on replay"); one that fails again
adds an occurrence. An item is re-offered once its backoff has passed since its last failure
(1 minute, doubling with each occurrence, at most a day), so a cause nobody fixes costs one
attempt a day, and at most `REOFFER_LIMIT` items per cycle, oldest failure first.

Causes a person must fix in the source (a malformed payload, a role placeholder booking time,
an ownership refusal, a posted entry changed) are never re-offered: replaying them changes
nothing; nor are those whose fix may be new time in the PSA (a closed period or task), which a
re-offer could post twice. See docs/decisions.md (#25).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from sync.pipeline.models import ExceptionItem, InboxItem

logger = logging.getLogger(__name__)

REOFFER_LIMIT = 5000
REOFFER_FIRST_SECONDS = 60
REOFFER_MAX_SECONDS = 24 * 60 * 60

# Codes whose cause is missing or not-ready reference data that a sync may bring: master data
# (sync.pipeline.master_data) and the time-posting rules (sync.pipeline.rules).
WAITING_FOR_REFERENCE_DATA = frozenset(
    {
        # master data
        "REFERENCE_MISSING",
        "LEGAL_ENTITY_UNKNOWN",
        "LEGAL_ENTITY_UNMAPPED",
        "CUSTOMER_UNKNOWN",
        "PROJECT_UNKNOWN",
        "PROJECT_NOT_PROVISIONED",
        "TASK_NOT_PROVISIONED",
        "PLACEHOLDER_UNASSIGNED",
        "WORKER_NOT_IN_HR",
        # time posting: data that had not arrived yet. Not the causes whose fix may be a new entry
        # in the PSA (a closed period or task, a project not open, a worker who left: "repost the
        # time in the current period"): re-offering the old entry after the period reopens would
        # post that time twice, and Ledgerbridge cannot see the PSA withdraw it. A person replays
        # those (one click per root-cause group).
        "TASK_UNKNOWN",
        "WORKER_UNKNOWN",
        "COST_CENTRE_MISSING",
        "CURRENCY_UNKNOWN",
        "CURRENCY_UNMAPPED",
        "SERVICE_ITEM_UNMAPPED",
        "PERIOD_MISSING",
        "CUSTOMER_NOT_APPROVED",
    }
)


def reoffer_backoff(occurrences: int) -> dt.timedelta:
    """How long after its last failure an item is re-offered: 1 min, 2, 4, … at most a day."""
    seconds = REOFFER_FIRST_SECONDS * 2 ** min(max(occurrences, 1) - 1, 20)
    return dt.timedelta(seconds=min(seconds, REOFFER_MAX_SECONDS))


def _due(now: dt.datetime) -> Q:
    """Items whose backoff has passed, in SQL: one term per occurrence count up to the cap."""
    due = Q()
    occurrences = 1
    while reoffer_backoff(occurrences) < reoffer_backoff(occurrences + 1):
        due |= Q(occurrences=occurrences, last_failed_at__lte=now - reoffer_backoff(occurrences))
        occurrences += 1
    return due | Q(
        occurrences__gte=occurrences, last_failed_at__lte=now - reoffer_backoff(occurrences)
    )


def parked_items_reoffer(
    *,
    now: dt.datetime | None = None,
    limit: int = REOFFER_LIMIT,
    processable: Iterable[tuple[str, str]] | None = None,
) -> int:
    """Put the parked inbox items of due open items with a reference-data cause back to
    pending; returns how many. `processable` (system, entity) pairs, when given, limit it to
    what this cycle can process (no ERP connection: no time entries). Idempotent: an item
    already pending or processed is left alone (two cycles at once re-offer it once)."""
    now = now or timezone.now()
    kinds = Q()
    for system, entity in processable or ():
        kinds |= Q(inbox_item__system=system, inbox_item__entity=entity)
    if processable is not None and not kinds:
        return 0
    # A newer payload of the same record stored since (changed, or parked at another stage)
    # supersedes the parked one: only the latest payload of a record is re-offered.
    newer = InboxItem.objects.filter(
        system=OuterRef("inbox_item__system"),
        entity=OuterRef("inbox_item__entity"),
        external_id=OuterRef("inbox_item__external_id"),
        id__gt=OuterRef("inbox_item_id"),
    )
    due = list(
        ExceptionItem.objects.filter(
            _due(now),
            kinds,
            status__in=ExceptionItem.OPEN_STATUSES,
            code__in=WAITING_FOR_REFERENCE_DATA,
            inbox_item__isnull=False,
            inbox_item__status=InboxItem.Status.PARKED,
        )
        .exclude(Exists(newer))
        .order_by("last_failed_at", "pk")
        .values_list("inbox_item_id", flat=True)[:limit]
    )
    if not due:
        return 0
    reoffered = InboxItem.objects.filter(id__in=due, status=InboxItem.Status.PARKED).update(
        status=InboxItem.Status.PENDING
    )
    logger.info("re-offered %s parked inbox items whose cause may have been fixed", reoffered)
    return reoffered
