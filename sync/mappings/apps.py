from django.apps import AppConfig


class MappingsConfig(AppConfig):
    name = "sync.mappings"
    label = "mappings"
    verbose_name = "Mappings and ownership"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        post_migrate.connect(
            ownership_defaults_restore, sender=self, dispatch_uid="mappings.ownership_defaults"
        )


def ownership_defaults_restore(sender, using: str = "default", **kwargs) -> None:
    """Put the default owners back when the rule table is empty after a `migrate`.

    The data migration seeds them once; a database flush (TransactionTestCase, `flush`) empties
    the table and then emits post_migrate, so without this the rules would be gone for good.
    Runs the migration's own seeding (idempotent), so the rows and history are identical.
    """
    import importlib
    from types import SimpleNamespace

    from django.apps import apps
    from django.db import connections

    if (
        using != "default"
        or apps.get_model("mappings", "OwnershipRule").objects.using(using).exists()
    ):
        return
    from django.conf import settings

    migration = importlib.import_module("sync.mappings.migrations.0002_ownership_defaults")
    # The migration writes its own history rows (as `system:migration`); with the real models
    # simple-history's signals would add a second, anonymous one. Switched off for this call.
    enabled = getattr(settings, "SIMPLE_HISTORY_ENABLED", True)
    settings.SIMPLE_HISTORY_ENABLED = False
    try:
        migration.seed(apps, SimpleNamespace(connection=connections[using]))
    finally:
        settings.SIMPLE_HISTORY_ENABLED = enabled
