"""Keep the sandbox's emulated vendor records in the `sandbox` database alias, nothing else."""

from __future__ import annotations

SANDBOX_APP_LABEL = "sandbox"
SANDBOX_DB = "sandbox"


class SandboxRouter:
    def db_for_read(self, model, **hints):
        return SANDBOX_DB if model._meta.app_label == SANDBOX_APP_LABEL else "default"

    def db_for_write(self, model, **hints):
        return SANDBOX_DB if model._meta.app_label == SANDBOX_APP_LABEL else "default"

    def allow_relation(self, obj1, obj2, **hints):
        return (obj1._meta.app_label == SANDBOX_APP_LABEL) == (
            obj2._meta.app_label == SANDBOX_APP_LABEL
        )

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if app_label == SANDBOX_APP_LABEL:
            return db == SANDBOX_DB
        return db == "default"
