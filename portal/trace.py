"""`/trace/<correlation id>/`: every record that carries one correlation id, in time order.

Who: anyone who opens the Exceptions or the Runs area; exception items are listed from the
reader's own scope only (queues and legal entities, `portal.exception_scope`), as on the
Exceptions pages. Read-only,
and no payload is shown. The read is `sync.pipeline.trace.trace_for`.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from portal.exception_scope import exception_scope_for
from portal.roles import AREA_BY_SLUG
from sync.pipeline.trace import CORRELATION_ID_MAX, KIND_LABELS, trace_for

TRACE_AREAS = (AREA_BY_SLUG["exceptions"], AREA_BY_SLUG["runs"])


@require_safe
def trace_detail(request: HttpRequest, correlation_id: str) -> HttpResponse:
    opened = [area for area in TRACE_AREAS if request.user.has_perm(area.permission)]
    if not opened:
        raise PermissionDenied("Traces are read from the Exceptions or the Runs area.")
    if len(correlation_id) > CORRELATION_ID_MAX:
        raise Http404("No correlation id is that long.")
    exceptions = AREA_BY_SLUG["exceptions"]
    scope = exception_scope_for(request.user)
    found = trace_for(
        correlation_id=correlation_id,
        queues=scope.queues,
        legal_entities=scope.legal_entities,
    )
    return render(
        request,
        "portal/trace.html",
        {
            "area": opened[0],
            "trace": found,
            "capped": [KIND_LABELS[kind] for kind in found.capped],
            "links_items": request.user.has_perm(exceptions.permission),
        },
    )
