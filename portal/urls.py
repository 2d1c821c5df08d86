from django.contrib import admin
from django.urls import include, path

from portal import views
from portal.roles import AREAS

urlpatterns = [
    path("", views.home, name="home"),
    *[path(f"{a.slug}/", views.area, {"slug": a.slug}, name=a.url_name) for a in AREAS],
    path("runs/ping/", views.worker_ping, name="worker-ping"),
    path("metrics", views.metrics, name="metrics"),
    path("hooks/", include("sync.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
]

admin.site.site_header = "Ledgerbridge administration"
admin.site.site_title = "Ledgerbridge"
