from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from portal import views
from portal.roles import AREAS

urlpatterns = [
    path("", views.home, name="home"),
    *[path(f"{a.slug}/", views.area, {"slug": a.slug}, name=a.url_name) for a in AREAS],
    path("runs/ping/", views.worker_ping, name="worker-ping"),
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
