"""The Runs area: connection health, recent sync runs and workers, and what integration ops do
about them (pause or resume a connection, run a cycle now, send a heartbeat).

Who: the area's roles read (`portal.area_runs`); every action (POST) needs
`portal.act_runs`, pausing and resuming `pipeline.change_connection` too: the auditor reads and
acts on nothing. A connection's credentials are never read here (deferred, never decrypted).

The two selectors below serve this page only; they move to `sync/pipeline` when a second
reader needs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, OuterRef, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe
from kombu.exceptions import OperationalError as BrokerUnreachable

from portal.health import worker_status_get
from portal.models import WorkerHeartbeat
from portal.roles import AREA_BY_SLUG
from sync.pipeline.connection_services import connection_enabled_set
from sync.pipeline.models import Connection, Delivery, SyncRun
from sync.tasks_cycle import cycle_run

AREA = AREA_BY_SLUG["runs"]
TOGGLE_PERMISSIONS = (AREA.act_permission, "pipeline.change_connection")
HEALTH_WINDOW = timedelta(hours=24)
RECENT_RUNS = 20
RECENT_HEARTBEATS = 20
DELIVERY_STATES = tuple(Delivery.State.values)


# -- selectors -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConnectionHealth:
    """One connection as the Runs page shows it (no credentials: the field is never loaded)."""

    pk: int
    name: str
    system: str
    dialect: str
    enabled: bool
    last_success_at: datetime | None
    circuit_open_until: datetime | None  # None: the circuit is closed
    consecutive_failures: int
    state_counts: tuple[int, ...]  # deliveries created in the window, in DELIVERY_STATES order
    error_rate_percent: Decimal | None  # failed of delivered + failed; None: none settled

    @property
    def circuit_open(self) -> bool:
        return self.circuit_open_until is not None

    @property
    def deliveries(self) -> int:
        return sum(self.state_counts)


def _error_rate(delivered: int, failed: int) -> Decimal | None:
    settled = delivered + failed
    if not settled:
        return None
    return (Decimal(100 * failed) / settled).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def connections_health(*, now: datetime) -> list[ConnectionHealth]:
    """Every connection with its health over the last `HEALTH_WINDOW`: two queries.

    Last successful run: the latest succeeded SyncRun of that connection alone (a cycle over
    several connections at once names none; it shows among the recent runs). Deliveries by
    state: one GROUP BY over the deliveries created in the window. Delivery has no index on
    `created_at`, so on a large outbox that GROUP BY reads the table: fine for a page opened
    by hand; a page polled by a dashboard would want the window indexed or cached.
    """
    last_success = (
        SyncRun.objects.filter(connection=OuterRef("pk"), status=SyncRun.Status.SUCCEEDED)
        .order_by("-finished_at")
        .values("finished_at")[:1]
    )
    connections = list(
        Connection.objects.order_by("name")
        .annotate(last_success_at=Subquery(last_success))
        .values_list(
            "pk",
            "name",
            "system",
            "dialect",
            "enabled",
            "last_success_at",
            "circuit_open_until",
            "consecutive_failures",
        )
    )
    counts: dict[tuple[int, str], int] = {
        (connection_id, state): n
        for connection_id, state, n in Delivery.objects.filter(created_at__gte=now - HEALTH_WINDOW)
        .values_list("connection_id", "state")
        .annotate(n=Count("id"))
        .order_by()
    }
    systems = dict(Connection._meta.get_field("system").choices)
    dialects = dict(Connection._meta.get_field("dialect").choices)
    health = []
    for pk, name, system, dialect, enabled, last, circuit, failures in connections:
        by_state = tuple(counts.get((pk, state), 0) for state in DELIVERY_STATES)
        health.append(
            ConnectionHealth(
                pk=pk,
                name=name,
                system=str(systems.get(system, system)),
                dialect=str(dialects.get(dialect, dialect)),
                enabled=enabled,
                last_success_at=last,
                circuit_open_until=circuit if circuit is not None and circuit > now else None,
                consecutive_failures=failures,
                state_counts=by_state,
                error_rate_percent=_error_rate(
                    counts.get((pk, Delivery.State.DELIVERED), 0),
                    counts.get((pk, Delivery.State.FAILED), 0),
                ),
            )
        )
    return health


@dataclass(frozen=True)
class RecentRun:
    run: SyncRun
    seconds: float | None  # None while running


def sync_runs_recent(*, limit: int = RECENT_RUNS) -> list[RecentRun]:
    """The latest `limit` sync runs, newest first, with their connection's name and duration."""
    runs = (
        SyncRun.objects.select_related("connection")
        .only(*(f.name for f in SyncRun._meta.concrete_fields), "connection__name")
        .order_by("-started_at", "-pk")[:limit]
    )
    return [
        RecentRun(
            run=run,
            seconds=None
            if run.finished_at is None
            else round((run.finished_at - run.started_at).total_seconds(), 1),
        )
        for run in runs
    ]


# -- views -----------------------------------------------------------------------------------
def _opens(request: HttpRequest) -> None:
    if not request.user.has_perm(AREA.permission):
        raise PermissionDenied("The Runs area is not one of your role's areas.")


def _acts(request: HttpRequest, permissions: tuple[str, ...] = (AREA.act_permission,)) -> None:
    _opens(request)
    if not request.user.has_perms(permissions):
        raise PermissionDenied("Your role reads the Runs area; it does not act in it.")


@require_safe
def runs_overview(request: HttpRequest) -> HttpResponse:
    """`/runs/`: connections with their health, recent runs, workers and heartbeats."""
    _opens(request)
    user = request.user
    return render(
        request,
        "portal/runs/overview.html",
        {
            "area": AREA,
            "connections": connections_health(now=timezone.now()),
            "delivery_states": Delivery.State.labels,
            "window_hours": int(HEALTH_WINDOW.total_seconds() // 3600),
            "runs": sync_runs_recent(),
            "worker": worker_status_get(),
            "heartbeats": WorkerHeartbeat.objects.order_by("-completed_at")[:RECENT_HEARTBEATS],
            "may_act": user.has_perm(AREA.act_permission),
            "may_toggle": user.has_perms(TOGGLE_PERMISSIONS),
        },
    )


def _cycle_enqueue(request: HttpRequest, *, connection: Connection | None) -> None:
    """Queue `sync.cycle_run` and say so; a broker that cannot be reached is said too."""
    scope = f"connection {connection.name}" if connection else "every enabled connection"
    try:
        result = cycle_run.delay(connection_ids=[connection.pk] if connection else None)
    except BrokerUnreachable:
        messages.error(
            request,
            f"No cycle was queued for {scope}: the broker (Redis) cannot be reached. "
            "Beat's next tick runs one once it is back.",
        )
        return
    messages.info(
        request,
        f"Cycle {result.id} queued for {scope}; its run appears below once a worker has run it.",
    )


@require_POST
def runs_act(request: HttpRequest) -> HttpResponse:
    """An action on the whole pipeline: `cycle` runs a cycle over every enabled connection."""
    _acts(request)
    action = request.POST.get("action", "")
    if action == "cycle":
        _cycle_enqueue(request, connection=None)
    else:
        messages.error(request, f"Unknown action {action!r}.")
    return redirect("area-runs")


@require_POST
def runs_connection_act(request: HttpRequest, pk: int) -> HttpResponse:
    """One action on one connection: `pause`, `resume`, or `cycle` (a cycle of it alone)."""
    _acts(request)
    connection = get_object_or_404(Connection.objects.only("pk", "name", "enabled"), pk=pk)
    action = request.POST.get("action", "")
    if action in ("pause", "resume"):
        _acts(request, TOGGLE_PERMISSIONS)
        connection = connection_enabled_set(
            connection=connection, enabled=action == "resume", user=request.user
        )
        state = "enabled: it is pulled and delivered to" if connection.enabled else "paused"
        messages.success(request, f"Connection {connection.name} is {state}.")
    elif action == "cycle":
        if connection.enabled:
            _cycle_enqueue(request, connection=connection)
        else:
            messages.error(request, f"Connection {connection.name} is paused: resume it first.")
    else:
        messages.error(request, f"Unknown action {action!r}.")
    return redirect("area-runs")
