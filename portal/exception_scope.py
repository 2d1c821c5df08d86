"""Who works which exception items: a user's queues and legal entities, as one scope."""

from __future__ import annotations

from portal.models import UserLegalEntity
from portal.roles import queues_for
from sync.pipeline.exception_queries import ExceptionScope


def exception_scope_for(user) -> ExceptionScope:
    """The items `user` may read and act on: the queues of their roles (`queues_for`), and,
    where the user is assigned to legal entities (`UserLegalEntity`), only those entities'
    items and the items of no known entity. One query for the assignments."""
    entities = tuple(
        sorted(UserLegalEntity.objects.filter(user=user).values_list("legal_entity", flat=True))
    )
    return ExceptionScope(queues=queues_for(user), legal_entities=entities or None)
