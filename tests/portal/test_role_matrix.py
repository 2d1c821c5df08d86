"""Every URL the project serves, for every role and anonymous, with GET and POST: the status
each gets, from the table in tests/portal/surface.py (itself generated from portal/roles.py),
and no response carrying a cost rate to a role without `sync.view_cost_rate` nor a credential to
anyone.

One test per user walks the whole surface and reports every cell that differs, so a broken
boundary shows as a list of URLs, not as the first failure.
"""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from portal.roles import ROLES, STAFF_ROLES, role_permissions
from tests.portal.surface import (
    ANONYMOUS,
    COST_RATE_VALUES,
    LOGIN,
    RAN,
    REFUSED,
    SECRET_VALUES,
    USERS,
    Cell,
    expected,
    surface_seed,
    surface_walk,
)

LOGIN_PAGES = ("/accounts/login/", "/admin/login/")


def _client_for(user: str, django_user_model) -> Client:
    client = Client(raise_request_exception=False)
    if user != ANONYMOUS:
        from django.contrib.auth.models import Group

        account = django_user_model.objects.create_user(
            username=f"matrix-{user}", password="unused-in-tests", is_staff=user in STAFF_ROLES
        )
        account.groups.add(Group.objects.get(name=user))
        client.force_login(account)
        client.account = account
    return client


def _outcome(cell: Cell, response) -> object:
    """What the user got: LOGIN, RAN/REFUSED for an action, else the status code."""
    if (
        response.status_code == 302
        and response.url.startswith(LOGIN_PAGES)
        and (not cell.kind.endswith("logout") and cell.kind not in ("admin-login",))
    ):
        return LOGIN
    if cell.kind != "admin-action" or response.status_code not in (200, 302):
        return response.status_code
    said = [str(m) for m in get_messages(response.wsgi_request)]
    on_changelist = response.status_code == 200 and "cl" in (response.context or {})
    if on_changelist or any("No action selected" in text for text in said):
        return REFUSED
    return RAN


def _request(client: Client, cell: Cell):
    if cell.method == "GET":
        return client.get(cell.url)
    data = {}
    if cell.action:
        # Messages left by an earlier request would be read as this action's: show them first.
        client.get("/admin/")
        data = {"action": cell.action, "_selected_action": [str(cell.object_pk)], "index": "0"}
    return client.post(cell.url, data)


def _walk(user: str, django_user_model):
    """Yield (cell, response) for the whole surface as `user`."""
    seeded = surface_seed()
    cells, unknown = surface_walk(seeded)
    assert not unknown, f"URLs with no rule in tests/portal/surface.py: {unknown}"
    # Sign-outs last: they end the session the rest of the walk needs.
    cells.sort(key=lambda c: c.kind.endswith("logout"))
    client = _client_for(user, django_user_model)
    for cell in cells:
        response = _request(client, cell)
        yield cell, response
        if cell.kind.endswith("logout") and user != ANONYMOUS:
            client.force_login(client.account)


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_celery")
@pytest.mark.parametrize("user", USERS)
def test_each_user_gets_exactly_what_the_role_table_allows_on_every_url(user, django_user_model):
    wrong = []
    walked = 0
    for cell, response in _walk(user, django_user_model):
        walked += 1
        got = _outcome(cell, response)
        want = expected(user, cell)
        if got not in want:
            wrong.append(f"{cell} ({cell.label}): got {got}, want {sorted(map(str, want))}")
    assert walked > 400, walked  # the surface really was walked
    assert not wrong, f"{len(wrong)} of {walked} cells differ for {user}:\n" + "\n".join(wrong)


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_celery")
@pytest.mark.parametrize("user", USERS)
def test_no_response_carries_a_credential_or_a_cost_rate_the_user_may_not_see(
    user, django_user_model
):
    may_see_cost = user != ANONYMOUS and "sync.view_cost_rate" in role_permissions(user)
    forbidden = SECRET_VALUES + (() if may_see_cost else COST_RATE_VALUES)
    leaks = []
    for cell, response in _walk(user, django_user_model):
        body = b"".join(response) if response.streaming else response.content
        text = body.decode(errors="replace")
        leaks += [f"{cell}: {value}" for value in forbidden if value in text]
    assert not leaks, "\n".join(leaks)


@pytest.mark.django_db
def test_the_leak_walk_would_see_a_cost_rate_a_page_shows(client, django_user_model):
    """The control for the test above: a user who may see cost rates finds the seeded ones on
    the pages that show them, so their absence elsewhere means masking, not a wrong value."""
    surface = surface_seed()
    finance = django_user_model.objects.create_superuser(
        "finance-superuser", "x@example.invalid", "unused-in-tests"
    )
    client.force_login(finance)
    worker = client.get(f"/admin/sync/worker/{surface['sync.worker'].pk}/change/")
    inbox = client.get(f"/admin/pipeline/inboxitem/{surface['pipeline.inboxitem'].pk}/change/")
    assert COST_RATE_VALUES[0] in worker.content.decode()
    assert COST_RATE_VALUES[1] in inbox.content.decode()
    for secret in SECRET_VALUES:  # credentials stay hidden even from a superuser
        connection = client.get(
            f"/admin/pipeline/connection/{surface['pipeline.connection'].pk}/history/"
        )
        assert secret not in connection.content.decode()


def test_the_matrix_covers_every_role():
    assert set(USERS) == {ANONYMOUS, *ROLES}
