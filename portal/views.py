"""Portal pages: thin views that call selectors and render."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required, permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe
from kombu.exceptions import OperationalError as BrokerUnavailable

from portal.health import worker_status_get
from portal.roles import AREA_BY_SLUG, AREAS, ROLES
from portal.tasks import heartbeat
from sync.pipeline.metrics import metrics_render


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    roles = [g for g in user.groups.values_list("name", flat=True) if g in ROLES]
    return render(
        request,
        "portal/home.html",
        {
            "roles": roles,
            "areas": [a for a in AREAS if user.has_perm(a.permission)],
            "worker": worker_status_get(),
        },
    )


@require_safe
def area(request: HttpRequest, slug: str) -> HttpResponse:
    found = AREA_BY_SLUG.get(slug)
    if found is None:
        raise Http404("No such area.")
    if not request.user.has_perm(found.permission):
        return render(request, "403.html", {"area": found}, status=403)
    return render(request, "portal/area.html", {"area": found})


@login_not_required
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition for a scraper holding METRICS_TOKEN, or an integration-ops user."""
    token = settings.METRICS_TOKEN
    offered = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    scraper = bool(token) and hmac.compare_digest(offered.encode(), token.encode())
    if not scraper and not request.user.has_perm("portal.area_runs"):
        return HttpResponse(
            "Metrics need the scrape token or the Runs area.", status=403, content_type="text/plain"
        )
    return HttpResponse(metrics_render(), content_type="text/plain; version=0.0.4")


@require_POST
@permission_required("portal.act_runs", raise_exception=True)
def worker_ping(request: HttpRequest) -> HttpResponse:
    """Send one heartbeat through the broker; the Runs page (portal/runs.py) shows it when a
    worker has run it."""
    try:
        result = heartbeat.delay()
    except BrokerUnavailable as exc:
        messages.error(request, f"The broker did not take the heartbeat ({exc}): is Redis up?")
    else:
        messages.info(
            request, f"Heartbeat {result.id} sent; it appears below once a worker runs it."
        )
    return redirect("area-runs")
