"""The threaded sender: keeps each target connection's requests in flight while there is work.

Each connection keeps up to its `max_concurrency` requests in flight for as long as there is
work. The calling thread claims the next deliveries while others are in flight, hands each to a
sender thread when it holds a slot of the connection's in-flight budget, and records each
outcome as its request completes (database writes stay on the calling thread: Django
connections are per thread). The budget is connection-wide, shared by every worker process
(PostgreSQL advisory locks; per process on SQLite), so several workers together never send a
target more requests at once than it allows (docs/decisions.md #16).
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from queue import Empty, SimpleQueue
from typing import Any

from django.db import DatabaseError
from django.utils import timezone

from sync.integrations.registry import integration_for, target_connector_for
from sync.pipeline.delivery_budget import slot_budget_for
from sync.pipeline.models import Connection, Delivery
from sync.pipeline.outbox.claims import deliveries_unclaim
from sync.pipeline.outbox.outcomes import (
    CONFIGURATION,
    PERMANENT,
    Outcome,
    deliveries_delivered_record,
    delivery_outcome_record,
)
from sync.pipeline.sender_loops import (
    SLOT_RETRY_SECONDS,
    InlineExecutor,
    SenderDone,
    SendingTarget,
    sender_loop,
)

logger = logging.getLogger(__name__)

MAX_RETRY_WAIT_SECONDS = 2.0  # see Sender.__init__


@dataclass
class SendCounts:
    claimed: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    released: int = 0  # claimed, not sent (no slot, or the connection stopped): pending again


# -- sending ------------------------------------------------------------------------------------
# Deliveries claimed per outbox query: enough to keep a connection's requests in flight while
# the next claim is made, few enough that other senders find work too.
CLAIM_CHUNK = 50
# A sender that gets no slot of the budget (other senders hold it all; it asks again every
# sender_loops.SLOT_RETRY_SECONDS) gives its claimed deliveries back after waiting this long
# with none in flight; after SLOT_WAIT_IDLE_SECONDS if it has sent nothing yet: another sender
# (a send task with a backlog) holds the whole budget and claims these rows itself, so this
# worker is freed for other tasks at once.
SLOT_WAIT_SECONDS = 30.0
SLOT_WAIT_IDLE_SECONDS = 1.0
# How long the calling thread lets outcomes gather before it records them together.
RECORD_GATHER_SECONDS = 0.02


class Sender:
    """The calling thread's loop: claim, start senders within each connection's budget,
    record outcomes as they come. `send(delivery=, connector=, numeric_body_fields=)` sends one
    delivery and returns its Outcome without raising for a target failure; `claim(n)` claims
    up to n deliveries. `run()` returns the counts; it raises only what is a bug (an error
    `send` raised), after winding everything up."""

    def __init__(
        self,
        *,
        send: Callable[..., Outcome],
        claim: Callable[[int], list[Delivery]],
        limit: int,
        connector_options: dict[str, Any] | None,
        seconds: float | None = None,
        priority: bool = False,
    ) -> None:
        self.send = send
        self.claim = claim
        self.limit = limit
        # A priority sender's deliveries are awaited by someone (an approval posted now): when
        # it gets no slot it says so, and backlog senders hand theirs back.
        self.priority = priority
        # Claim no more once this monotonic time has passed (what is claimed is still sent).
        self.claim_until = math.inf if seconds is None else time.monotonic() + seconds
        # A worker never sleeps out a target's long Retry-After: the outbox's next_attempt_at
        # does.
        self.options = {
            "http_options": {"max_retry_wait": MAX_RETRY_WAIT_SECONDS},
            **(connector_options or {}),
        }
        self.counts = SendCounts()
        self.targets: dict[int, SendingTarget] = {}
        self.results: SimpleQueue = SimpleQueue()
        self.senders = 0
        self.threaded = False  # some sender runs in a thread of its own
        self.more = True
        self.error: BaseException | None = None

    def run(self) -> SendCounts:
        waiting_since: float | None = None
        try:
            while self.error is None:
                self._refill()
                now = time.monotonic()
                self._senders_start(now)
                if not self.senders:
                    if not any(t.queue for t in self.targets.values() if not t.stopped):
                        if self._may_claim():
                            continue
                        break
                    # Deliveries claimed, no slot: other senders hold this target's budget.
                    waiting_since = waiting_since or now
                    # A priority sender waits for the backlog senders to hand a slot back
                    # (after the requests they have in hand).
                    started = self.threaded or self._sent_any() or self.priority
                    wait = SLOT_WAIT_SECONDS if started else SLOT_WAIT_IDLE_SECONDS
                    if now - waiting_since > wait:
                        logger.log(
                            logging.WARNING if started else logging.INFO,
                            "no in-flight slot for %.0f s: giving %d deliveries back",
                            wait,
                            self._queued(),
                        )
                        break
                    time.sleep(max(self._retry_at() - now, SLOT_RETRY_SECONDS / 10))
                    continue
                waiting_since = None
                retry_at = self._retry_at()
                self._results_take(
                    timeout=None if retry_at == math.inf else max(retry_at - now, 0.0)
                )
        finally:
            self._finish()
        if self.error is not None:
            raise self.error
        return self.counts

    def _sent_any(self) -> bool:
        c = self.counts
        return bool(c.delivered or c.retrying or c.failed)

    def _queued(self) -> int:
        return sum(len(t.queue) for t in self.targets.values() if not t.stopped)

    def _retry_at(self) -> float:
        """When a target with deliveries waiting may ask its budget for another slot."""
        return min(
            (
                t.retry_at
                for t in self.targets.values()
                if t.queue and not t.stopped and t.senders < t.connection.max_concurrency
            ),
            default=math.inf,
        )

    def _may_claim(self) -> bool:
        return (
            self.more and self.counts.claimed < self.limit and time.monotonic() < self.claim_until
        )

    def _refill(self) -> None:
        """Claim the next deliveries while the ones claimed before are being sent."""
        if not self._may_claim():
            return
        low_water = (
            2 * sum(t.connection.max_concurrency for t in self.targets.values() if not t.stopped)
            or CLAIM_CHUNK
        )
        if self._queued() >= low_water:
            return
        want = min(self.limit - self.counts.claimed, max(CLAIM_CHUNK, low_water))
        batch = self.claim(want)
        self.counts.claimed += len(batch)
        # A short batch may only mean that other claimers hold some due rows (skip locked):
        # the outbox is drained when a claim finds nothing.
        self.more = bool(batch)
        unknown = {d.connection_id for d in batch} - self.targets.keys()
        if unknown:
            for connection in Connection.objects.filter(id__in=unknown):
                self.targets[connection.id] = self._target(connection)
        for delivery in batch:
            target = self.targets[delivery.connection_id]
            if target.stopped:
                self.counts.released += deliveries_unclaim(deliveries=[delivery])
            else:
                target.queue.append(delivery)

    def _target(self, connection: Connection) -> SendingTarget:
        connector = target_connector_for(connection, **self.options)
        integration = integration_for(connection.dialect)
        executor: Executor = (
            InlineExecutor()
            if connection.max_concurrency == 1
            else ThreadPoolExecutor(
                max_workers=connection.max_concurrency,
                thread_name_prefix=f"deliver-{connection.id}",
            )
        )
        return SendingTarget(
            connection=connection,
            connector=connector,
            executor=executor,
            send=self.send,
            numeric_body_fields=integration.numeric_body_fields,
            budget=slot_budget_for(connection),
            priority=self.priority,
            failed_since_reset=connection.consecutive_failures > 0,
        )

    def _senders_start(self, now: float) -> None:
        for target in self.targets.values():
            if not target.queue or target.stopped:
                target.release_free()  # nothing to send here: others may use the slots
                target.budget.priority_withdraw()
                continue
            target.priority_check(now)
            while len(target.queue) > target.senders and not target.stopped:
                slot = target.slot(now)
                if slot is None:
                    if self.priority:
                        target.budget.priority_announce()
                    break
                target.senders += 1
                self.senders += 1
                target.executor.submit(sender_loop, target, slot, self.results)
                self.threaded = self.threaded or not isinstance(target.executor, InlineExecutor)
            if len(target.queue) <= target.senders:
                target.budget.priority_withdraw()  # every delivery has its slot: stop waiting

    def _results_take(self, *, timeout: float | None) -> None:
        """Wait for the next outcomes (or a retry time), then record all that have come."""
        try:
            taken = [self.results.get(timeout=timeout)]
        except Empty:
            return
        if self.threaded and not isinstance(taken[0][2], SenderDone):
            # Let a few more requests finish, to record them in one statement: the senders
            # keep sending meanwhile, so this costs no throughput.
            time.sleep(RECORD_GATHER_SECONDS)
        while True:
            try:
                taken.append(self.results.get_nowait())
            except Empty:
                break
        outcomes = []
        for target, delivery, item in taken:
            if isinstance(item, SenderDone):
                target.senders -= 1
                self.senders -= 1
                if item.handed_back:
                    target.budget.release(item.slot)  # a priority sender waits for it
                else:
                    target.free.append(item.slot)
                self.error = self.error or item.error
            else:
                outcomes.append((target, delivery, item))
        self._record_all(outcomes)

    def _record_all(self, outcomes: list[tuple[SendingTarget, Delivery, Outcome]]) -> None:
        """Record finished requests: the successes of each connection together."""
        now = time.monotonic()
        by_target: dict[int, list[tuple[Delivery, Outcome]]] = {}
        for target, delivery, outcome in outcomes:
            if outcome.ok:
                by_target.setdefault(target.connection.id, []).append((delivery, outcome))
        for connection_id, results in by_target.items():
            target = self.targets[connection_id]
            states = deliveries_delivered_record(
                results=results, circuit_reset=target.circuit_reset_due(now)
            )
            for state in states:
                self._count(state)
        for target, delivery, outcome in outcomes:
            if not outcome.ok:
                self._count(delivery_outcome_record(delivery=delivery, outcome=outcome))
                target.failed_since_reset = True
                self._stop_if_refused(target, outcome)

    def _count(self, state: str) -> None:
        if state == Delivery.State.DELIVERED:
            self.counts.delivered += 1
        elif state == Delivery.State.FAILED:
            self.counts.failed += 1
        else:
            self.counts.retrying += 1

    def _stop_if_refused(self, target: SendingTarget, outcome: Outcome) -> None:
        """A configuration failure or an open circuit stops this connection for now: what is
        still queued for it goes back to the outbox, to be sent once the circuit closes."""
        if outcome.kind == PERMANENT or target.stopped:
            return  # a refused record says nothing about the connection
        if (
            outcome.kind != CONFIGURATION
            and not Connection.objects.filter(
                id=target.connection.id, circuit_open_until__gt=timezone.now()
            ).exists()
        ):
            return
        target.stopped = True
        self.counts.released += deliveries_unclaim(deliveries=_drain(target.queue))

    def _finish(self) -> None:
        """However the loop ended: let the senders finish the request in hand and record it
        (each request is bounded by its timeout), give back what was claimed and not sent,
        free every slot."""
        for target in self.targets.values():
            target.stopped = True
        try:
            while self.senders:
                try:
                    self._results_take(timeout=None)
                except DatabaseError:
                    logger.exception(
                        "recording a delivery outcome failed: the sweeper will reclaim the delivery"
                    )
            queued = [d for t in self.targets.values() for d in _drain(t.queue)]
            if queued:
                self.counts.released += deliveries_unclaim(deliveries=queued)
        finally:
            for target in self.targets.values():
                try:  # first and on its own: an announcement left held would stall backlogs
                    target.budget.priority_withdraw()
                except DatabaseError:  # the session is gone, and its lock with it
                    logger.warning("could not withdraw the priority wait on %s", target.connection)
                try:
                    target.release_free()
                    target.budget.close()
                except DatabaseError:  # the session is gone, and its locks with it
                    logger.warning("could not release the in-flight slots of %s", target.connection)
                target.executor.shutdown(wait=True)
                close = getattr(target.connector, "close", None)
                if close:
                    close()


def _drain(queue: deque[Delivery]) -> list[Delivery]:
    """Everything left in a queue that sender threads may still be popping from."""
    taken = []
    while True:
        try:
            taken.append(queue.popleft())
        except IndexError:
            return taken
