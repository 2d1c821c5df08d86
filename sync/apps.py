from django.apps import AppConfig


class SyncConfig(AppConfig):
    name = "sync"
    verbose_name = "Sync"

    def ready(self) -> None:
        # Connects the receiver that stamps every history row with its actor.
        from sync import audit, tasks_cycle  # noqa: F401 - also registers sync.cycle_run
