"""The shape of every history table: its actor column and the indexes history is read by."""

from __future__ import annotations

from typing import Any

from django.db import models
from simple_history.models import HistoricalRecords

UNKNOWN_ACTOR = "system:unknown"
ACTOR_MAX_LENGTH = 100


class HistoryActorFields(models.Model):
    """Extra columns of every history model (used as a simple-history base).

    `history_actor` is indexed by `LeanHistoricalRecords` (a plain B-tree: `db_index=True` on a
    text column would add a `varchar_pattern_ops` twin on PostgreSQL that no query uses).
    """

    history_actor = models.CharField(max_length=ACTOR_MAX_LENGTH, default=UNKNOWN_ACTOR)

    class Meta:
        abstract = True


class LeanHistoricalRecords(HistoricalRecords):
    """History tables indexed for how history is read: by record (`id`), date and actor.

    simple-history copies every index of the tracked model into its history table (foreign
    keys, status, and PostgreSQL's `varchar_pattern_ops` twin of each indexed text column) and
    indexes `history_user`. On the tables that get a history row per posted time entry each of
    those is paid on every write and none is read (TimeEntry's history table had 15 indexes;
    it now has 4). Who did what is asked by `history_actor` (users read `user:<name>`), and
    users are deactivated, not deleted, so `history_user` needs no index of its own.
    """

    def copy_fields(self, model: type[models.Model]) -> dict[str, models.Field]:
        fields = super().copy_fields(model)
        for field in fields.values():
            if field.name != model._meta.pk.name:
                field.db_index = False
        return fields

    def _get_history_user_fields(self) -> dict[str, Any]:
        fields = super()._get_history_user_fields()
        user = fields.get("history_user")
        if isinstance(user, models.ForeignKey):
            user.db_index = False
        return fields

    def get_meta_options(self, model: type[models.Model]) -> dict[str, Any]:
        meta = super().get_meta_options(model)
        meta["indexes"] = (*meta.get("indexes", ()), models.Index(fields=["history_actor"]))
        return meta
