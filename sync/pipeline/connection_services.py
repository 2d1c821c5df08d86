"""Connection services: what integration ops change on a connection from the portal."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from sync.audit import acting_as, actor_for_user
from sync.pipeline.models import Connection
from sync.pipeline.models.connections import System


def connection_enabled_set(*, connection: Connection, enabled: bool, user: Any) -> Connection:
    """Pause (`enabled=False`) or resume a connection, with a history row naming `user`.

    A paused connection is neither pulled (beat's cycle skips it; `sync.cycle_run` returns
    early) nor delivered to (claims read enabled connections only); its backlog waits. Idempotent:
    a connection already in the wanted state is returned unchanged and no history is written.
    Returns the connection as stored.
    """
    with transaction.atomic(), acting_as(actor_for_user(user)):
        locked = Connection.objects.select_for_update().get(pk=connection.pk)
        if locked.enabled == enabled:
            return locked
        locked.enabled = enabled
        locked._history_user = user
        # No full_clean(): only this boolean changes, and a connection saved before a
        # validator tightened (a base URL on a bare host name) must still be pausable.
        locked.save(update_fields=["enabled", "updated_at"])
    return locked


def erp_connection_get() -> Connection | None:
    """The enabled ERP connection time entries are posted to (the first, if several)."""
    return Connection.objects.filter(enabled=True, system=System.ERP).order_by("id").first()
