from django.apps import AppConfig


class SyncConfig(AppConfig):
    name = "sync"
    verbose_name = "Sync"

    def ready(self) -> None:
        # Connects the receiver that stamps every history row with its actor.
        # `lookups` registers `field__any`; `tasks_cycle` and `tasks_events` register the
        # sync.cycle_run and sync.approval_event_process tasks.
        from sync import audit, lookups, tasks_cycle, tasks_events  # noqa: F401
