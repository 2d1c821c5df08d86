from django.apps import AppConfig


class SyncConfig(AppConfig):
    name = "sync"
    verbose_name = "Sync"

    def ready(self) -> None:
        # Connects the receiver that stamps every history row with its actor.
        # `lookups` registers `field__any`; `tasks_cycle` registers sync.cycle_run.
        from sync import audit, lookups, tasks_cycle  # noqa: F401
