from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from portal import dashboards, exceptions, mappings, ownership, reconciliation, runs, trace, views
from portal.roles import AREA_BY_SLUG, AREAS

# Areas with pages of their own; the others show the generic area page until theirs land.
BUILT = {
    "exceptions": exceptions.exceptions_overview,
    "mappings": mappings.mappings_overview,
    "ownership": ownership.ownership_overview,
    "runs": runs.runs_overview,
    "dashboards": dashboards.dashboards_overview,
    "reconciliation": reconciliation.reconciliation_overview,
}

urlpatterns = [
    path("", views.home, name="home"),
    *[
        path(f"{a.slug}/", views.area, {"slug": a.slug}, name=a.url_name)
        for a in AREAS
        if a.slug not in BUILT
    ],
    path("exceptions/", BUILT["exceptions"], name=AREA_BY_SLUG["exceptions"].url_name),
    path("exceptions/groups/", exceptions.exceptions_groups, name="exceptions-groups"),
    path(
        "exceptions/groups/<slug:root_cause>/act/",
        exceptions.exception_group_act,
        name="exceptions-group-act",
    ),
    path("exceptions/<int:pk>/", exceptions.exception_item_detail, name="exceptions-item"),
    path("exceptions/jobs/<int:pk>/", exceptions.exception_job_detail, name="exceptions-job"),
    path("exceptions/<int:pk>/act/", exceptions.exception_item_act, name="exceptions-item-act"),
    path("mappings/", BUILT["mappings"], name=AREA_BY_SLUG["mappings"].url_name),
    path("mappings/sets/<slug:slug>/act/", mappings.mapping_set_act, name="mappings-set-act"),
    path("mappings/sets/<slug:slug>/diff/", mappings.mapping_set_diff, name="mappings-diff"),
    path("mappings/versions/<int:pk>/", mappings.mapping_version_detail, name="mappings-version"),
    path(
        "mappings/versions/<int:pk>/dry-run/",
        mappings.mapping_version_dry_run_page,
        name="mappings-version-dry-run",
    ),
    path(
        "mappings/versions/<int:pk>/act/", mappings.mapping_version_act, name="mappings-version-act"
    ),
    path(
        "mappings/versions/<int:pk>/export.csv",
        mappings.mapping_version_export,
        name="mappings-version-export",
    ),
    path("ownership/", BUILT["ownership"], name=AREA_BY_SLUG["ownership"].url_name),
    path("ownership/rules/<slug:entity>/", ownership.ownership_key_detail, name="ownership-entity"),
    path(
        "ownership/rules/<slug:entity>/<slug:field>/",
        ownership.ownership_key_detail,
        name="ownership-field",
    ),
    path(
        "ownership/changes/propose/",
        ownership.ownership_change_propose,
        name="ownership-change-propose",
    ),
    path("ownership/changes/<int:pk>/", ownership.ownership_change_detail, name="ownership-change"),
    path(
        "ownership/changes/<int:pk>/act/",
        ownership.ownership_change_act,
        name="ownership-change-act",
    ),
    path("runs/", BUILT["runs"], name=AREA_BY_SLUG["runs"].url_name),
    path("runs/act/", runs.runs_act, name="runs-act"),
    path("runs/connections/<int:pk>/act/", runs.runs_connection_act, name="runs-connection-act"),
    path("runs/ping/", views.worker_ping, name="worker-ping"),
    # `path`, not `str`: a correlation id is a label a webhook's header may set, slashes and all.
    path("reconciliation/", BUILT["reconciliation"], name=AREA_BY_SLUG["reconciliation"].url_name),
    path("reconciliation/act/", reconciliation.reconciliation_act, name="reconciliation-act"),
    path(
        "reconciliation/runs/<int:pk>/",
        reconciliation.reconciliation_run_detail,
        name="reconciliation-run",
    ),
    path("dashboards/", BUILT["dashboards"], name=AREA_BY_SLUG["dashboards"].url_name),
    path("dashboards/records/", dashboards.dashboards_records, name="dashboards-records"),
    path("trace/<path:correlation_id>/", trace.trace_detail, name="trace"),
    path("metrics", views.metrics, name="metrics"),
    path("hooks/", include("sync.urls")),
    # Sign-in, sign-out and a password change; no self-service reset (no mail is configured:
    # an administrator resets a password), so there is no e-mail path to abuse or to fail.
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"
    ),
    path(
        "accounts/password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("admin/", admin.site.urls),
]
