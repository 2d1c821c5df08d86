from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from portal.roles import roles_sync_after_migrate

        post_migrate.connect(roles_sync_after_migrate, dispatch_uid="portal.roles_sync")


class LedgerbridgeAdminConfig(AdminConfig):
    """Django's admin with `portal.admin_site.LedgerbridgeAdminSite` as `admin.site`."""

    default_site = "portal.admin_site.LedgerbridgeAdminSite"
