"""Template context shared by every page: the navigation the signed-in user may see."""

from __future__ import annotations

from django.http import HttpRequest

from portal.roles import AREAS


def navigation(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_areas": []}
    return {"nav_areas": [area for area in AREAS if user.has_perm(area.permission)]}
