"""The connection-wide in-flight budget of deliveries: one slot per request being sent.

Shared by every sender process on PostgreSQL (session advisory locks: a dead sender's slots go
with its session), per process elsewhere (docs/decisions.md #16).
"""

from __future__ import annotations

import random
import threading
from typing import ClassVar, Protocol

from django.db import connection as db_connection

from sync.pipeline.models import Connection

# -- the connection-wide in-flight budget ---------------------------------------------------------
# Advisory-lock keys of delivery slots: (namespace << 48) | (connection id << 16) | slot, one
# bigint key space of its own ("LB" + 1), so no other advisory lock can collide with a slot.
SLOT_KEY_NAMESPACE = 0x4C43
MAX_SLOTS = 1 << 16


# The key a sender of event deliveries (an approval posted now) holds, shared, while it waits
# for a slot: ("LB" + 2) << 48 | connection id.
PRIORITY_KEY_NAMESPACE = 0x4C44


def delivery_slot_key(*, connection_id: int, slot: int) -> int:
    """The PostgreSQL advisory-lock key of one in-flight slot of a connection."""
    if not 0 <= slot < MAX_SLOTS or not 0 < connection_id < 1 << 32:
        raise ValueError(f"no slot key for connection {connection_id}, slot {slot}")
    return (SLOT_KEY_NAMESPACE << 48) | (connection_id << 16) | slot


def delivery_priority_key(*, connection_id: int) -> int:
    """The advisory-lock key by which priority senders say they are waiting for a slot."""
    if not 0 < connection_id < 1 << 32:
        raise ValueError(f"no priority key for connection {connection_id}")
    return (PRIORITY_KEY_NAMESPACE << 48) | connection_id


class SlotBudget(Protocol):
    """Slots of one connection's in-flight budget: one per request being sent."""

    def try_acquire(self) -> int | None: ...

    def release(self, slot: int) -> None: ...

    def close(self) -> None: ...

    # Priority: a sender of deliveries someone is waiting for (an approval posted now) says
    # it waits for a slot; senders working through a backlog give theirs up while one does.
    def priority_announce(self) -> None: ...

    def priority_withdraw(self) -> None: ...

    def priority_waiting(self) -> bool: ...


class AdvisoryLockBudget:
    """Connection-wide budget shared by every process (PostgreSQL): slot k of connection c is
    the session-level advisory lock `delivery_slot_key(c, k)`, k < max_concurrency, taken with
    `pg_try_advisory_lock` on the calling thread's database session.

    A sender that dies (killed worker, lost machine) loses its session and PostgreSQL releases
    its locks with it: no lease to expire, none to leak. Locks are re-entrant within a session,
    so the slots this session holds are tracked per thread (one Django connection per thread)
    and never asked for twice. Not usable through a transaction-pooling proxy (PgBouncer in
    transaction mode hands the session to others): use session pooling or direct connections.
    """

    _held = threading.local()

    def __init__(self, *, connection_id: int, limit: int, rng: random.Random | None = None):
        self.connection_id = connection_id
        self.limit = min(limit, MAX_SLOTS)
        self.mine: set[int] = set()
        start = (rng or random).randrange(self.limit)  # spread senders over the slots
        self._order = [(start + i) % self.limit for i in range(self.limit)]
        self._priority_key = delivery_priority_key(connection_id=connection_id)
        self.announced = False

    def _thread_held(self) -> set[int]:
        held = getattr(self._held, "keys", None)
        if held is None:
            held = self._held.keys = set()
        return held

    def try_acquire(self) -> int | None:
        held = self._thread_held()
        keys = [
            delivery_slot_key(connection_id=self.connection_id, slot=slot) for slot in self._order
        ]
        keys = [key for key in keys if key not in held]
        if not keys:
            return None
        # unnest yields the keys in order and LIMIT stops at the first lock taken: no other
        # key is locked (no ORDER BY, which would evaluate every row first).
        with db_connection.cursor() as cursor:
            cursor.execute(
                "SELECT k FROM unnest(%s::bigint[]) AS k WHERE pg_try_advisory_lock(k) LIMIT 1",
                [keys],
            )
            row = cursor.fetchone()
        if row is None:
            return None
        key = int(row[0])
        held.add(key)
        slot = key & (MAX_SLOTS - 1)
        self.mine.add(slot)
        return slot

    def release(self, slot: int) -> None:
        self._unlock([slot])

    def close(self) -> None:
        self.priority_withdraw()
        self._unlock(list(self.mine))

    # The priority key is held shared by every waiting priority sender; a backlog sender asks
    # whether anyone holds it by taking it exclusively for an instant (one round trip; a false
    # "waiting" when two backlog senders ask at once only delays one of them a moment).
    def priority_announce(self) -> None:
        if not self.announced:
            with db_connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_lock_shared(%s)", [self._priority_key])
            self.announced = True

    def priority_withdraw(self) -> None:
        if self.announced:
            with db_connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock_shared(%s)", [self._priority_key])
            self.announced = False  # only once unlocked (a lost session unlocked it anyway)

    def priority_waiting(self) -> bool:
        # CASE fixes the order (AND does not): the lock is only ever released once taken.
        with db_connection.cursor() as cursor:
            cursor.execute(
                "SELECT CASE WHEN pg_try_advisory_lock(%s) THEN pg_advisory_unlock(%s) "
                "ELSE false END",
                [self._priority_key, self._priority_key],
            )
            return not cursor.fetchone()[0]

    def _unlock(self, slots: list[int]) -> None:
        # Forgotten first: if the session is gone, so are its locks.
        keys = [delivery_slot_key(connection_id=self.connection_id, slot=s) for s in slots]
        self.mine.difference_update(slots)
        self._thread_held().difference_update(keys)
        if keys:
            with db_connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_unlock(k) FROM unnest(%s::bigint[]) AS k", [keys]
                )


class ProcessBudget:
    """The same budget within one process, for databases without advisory locks (SQLite, the
    embedded default: one machine, where several worker processes may still exceed the
    target's limit together and are then slowed by its 429s)."""

    _lock = threading.Lock()
    _free: ClassVar[dict[int, tuple[int, list[int]]]] = {}  # connection id -> (limit, free)
    _waiting: ClassVar[dict[int, int]] = {}  # connection id -> priority senders waiting

    def __init__(self, *, connection_id: int, limit: int) -> None:
        self.connection_id = connection_id
        self.mine: set[int] = set()
        self.announced = False
        with self._lock:
            known = self._free.get(connection_id)
            if known is None or known[0] != limit:  # first use, or the limit was changed
                self._free[connection_id] = (limit, list(range(limit)))
            self._slots = self._free[connection_id][1]

    def try_acquire(self) -> int | None:
        with self._lock:
            if not self._slots:
                return None
            slot = self._slots.pop()
        self.mine.add(slot)
        return slot

    def release(self, slot: int) -> None:
        if slot in self.mine:
            self.mine.discard(slot)
            with self._lock:
                self._slots.append(slot)

    def close(self) -> None:
        self.priority_withdraw()
        for slot in list(self.mine):
            self.release(slot)

    def priority_announce(self) -> None:
        if not self.announced:
            self.announced = True
            with self._lock:
                self._waiting[self.connection_id] = self._waiting.get(self.connection_id, 0) + 1

    def priority_withdraw(self) -> None:
        if self.announced:
            self.announced = False
            with self._lock:
                self._waiting[self.connection_id] -= 1

    def priority_waiting(self) -> bool:
        return self._waiting.get(self.connection_id, 0) > 0


def slot_budget_for(connection: Connection) -> SlotBudget:
    """The in-flight budget of `connection` shared with every other sender (docs/decisions.md
    #16): PostgreSQL advisory locks, or a per-process budget on other databases."""
    if db_connection.vendor == "postgresql":
        return AdvisoryLockBudget(connection_id=connection.id, limit=connection.max_concurrency)
    return ProcessBudget(connection_id=connection.id, limit=connection.max_concurrency)
