"""Every page needs a login, and each role sees only its own areas."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver, reverse

from portal.roles import AREAS, ROLES, role_permissions

EXPECTED_AREAS = {
    "finance": {"exceptions", "mappings", "ownership", "reconciliation", "dashboards"},
    "pmo": {"exceptions", "dashboards"},
    "mapping_admin": {"mappings", "ownership"},
    "integration_ops": {"exceptions", "runs", "dashboards"},
    "executive": {"reconciliation", "dashboards"},
    "auditor": {"exceptions", "mappings", "ownership", "runs", "reconciliation", "dashboards"},
}
PUBLIC_NAMES = {
    "login",
    "admin:login",
    "password_reset",
    "password_reset_done",
    "password_reset_complete",
    "logout",
    "admin:logout",
    "metrics",
}  # token or ops login: see test_metrics.py


def _url_names(resolver: URLResolver, namespace: str = "") -> list[str]:
    names = []
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            names += _url_names(entry, inner)
        elif isinstance(entry, URLPattern) and entry.name:
            names.append(f"{namespace}{entry.name}")
    return names


def _paths_without_arguments() -> list[str]:
    paths = []
    for name in sorted(set(_url_names(get_resolver())) - PUBLIC_NAMES):
        try:
            paths.append(reverse(name))
        except NoReverseMatch:  # needs arguments: admin object pages are checked below
            continue
    return paths


PAGES = _paths_without_arguments()


def test_the_page_list_covers_the_portal_and_the_admin():
    assert "/" in PAGES
    assert "/runs/" in PAGES
    assert "/admin/" in PAGES
    assert len(PAGES) >= 15


@pytest.mark.django_db
@pytest.mark.parametrize("path", PAGES)
def test_an_anonymous_visitor_is_sent_to_the_login_page(client, path):
    response = client.get(path)
    assert response.status_code == 302, path
    assert response.url.startswith(("/accounts/login/", "/admin/login/")), response.url


@pytest.mark.django_db
def test_an_admin_object_page_also_needs_a_login(client):
    response = client.get("/admin/auth/user/1/change/")
    assert response.status_code == 302
    assert "login" in response.url


@pytest.mark.django_db
def test_the_login_page_itself_is_open(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b"Sign in to Ledgerbridge" in response.content


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_each_role_sees_and_opens_only_its_own_areas(client, role_user, role):
    client.force_login(role_user(role))
    home = client.get(reverse("home"))
    assert home.status_code == 200
    shown = {a.slug for a in home.context["areas"]}
    assert shown == EXPECTED_AREAS[role]
    assert {a.slug for a in home.context["nav_areas"]} == EXPECTED_AREAS[role]
    for area in AREAS:
        response = client.get(reverse(area.url_name))
        expected = 200 if area.slug in EXPECTED_AREAS[role] else 403
        assert response.status_code == expected, (role, area.slug)


@pytest.mark.django_db
def test_a_user_without_a_role_sees_no_area_and_is_told_so(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("nobody", password="x-unused"))
    page = client.get(reverse("home"))
    assert page.context["areas"] == []
    assert b"You have no role yet" in page.content


@pytest.mark.django_db
def test_only_staff_see_the_admin_link_and_only_staff_get_into_the_admin(client, role_user):
    client.force_login(role_user("finance"))
    assert b'data-area="admin"' not in client.get(reverse("home")).content
    assert client.get("/admin/").status_code == 302  # admin sends non-staff to its login
    client.force_login(role_user("integration_ops", is_staff=True))
    assert b'data-area="admin"' in client.get(reverse("home")).content
    assert client.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_only_integration_ops_can_send_a_heartbeat_from_the_runs_page(client, role_user):
    client.force_login(role_user("executive"))
    assert client.post(reverse("worker-ping")).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_every_permission_a_role_names_exists_and_is_granted(role):
    group = Group.objects.get(name=role)
    granted = {
        f"{app}.{codename}"
        for app, codename in group.permissions.values_list("content_type__app_label", "codename")
    }
    assert granted == set(role_permissions(role))


@pytest.mark.django_db
def test_only_finance_may_see_cost_rates(role_user):
    for role in ROLES:
        user = role_user(role, username=f"cost-{role}")
        assert user.has_perm("sync.view_cost_rate") is (role == "finance"), role


@pytest.mark.django_db
def test_five_failed_sign_ins_lock_the_account_out(client, django_user_model):
    django_user_model.objects.create_user("alice", password="the-right-password-123")
    for _ in range(5):
        response = client.post(reverse("login"), {"username": "alice", "password": "wrong"})
    assert response.status_code == 429
    locked = client.post(
        reverse("login"), {"username": "alice", "password": "the-right-password-123"}
    )
    assert locked.status_code == 429
    assert b"Too many failed sign-ins" in locked.content
    assert "_auth_user_id" not in client.session
