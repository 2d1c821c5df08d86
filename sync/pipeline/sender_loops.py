"""One connection's sending state during a send, and the sender loops that send for it.

`sender.Sender` (the calling thread) claims deliveries into a `SendingTarget`'s queue and starts
a `sender_loop` for each slot of the connection's budget it holds; each loop sends back to back
and hands every outcome to the calling thread, which records it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from queue import SimpleQueue

from sync.connectors.base import TargetConnector
from sync.pipeline.delivery_budget import SlotBudget
from sync.pipeline.models import Connection, Delivery
from sync.pipeline.outbox.outcomes import PERMANENT, Outcome

# A sender that holds claimed deliveries but gets no slot of the budget (other senders hold it
# all) asks again after this long, backing off to the maximum while it keeps failing.
SLOT_RETRY_SECONDS = 0.01
SLOT_RETRY_MAX_SECONDS = 0.02
# How often a sender working through a backlog asks whether a priority sender (deliveries a
# person is waiting for: an approval posted now) waits for one of the connection's slots; while
# one does, it hands one slot back per check (the first sender loop to finish its request in
# hand ends) and takes no new one.
PRIORITY_CHECK_SECONDS = 0.05
# A sender that recorded a success on a connection resets its consecutive-failure count (one
# UPDATE) at most this often, or at once after a failure of its own.
CIRCUIT_RESET_EVERY_SECONDS = 1.0


class InlineExecutor(Executor):
    """Runs a sender loop on the calling thread: a connection with max_concurrency 1 needs no
    thread, and in-process test transports then share the caller's database transaction."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # not handled here: the caller's result() raises it, as
            future.set_exception(exc)  # with a thread pool
        return future


@dataclass
class SendingTarget:
    """One connection's sending state during one call."""

    connection: Connection
    connector: TargetConnector
    executor: Executor
    send: Callable[..., Outcome]
    numeric_body_fields: Mapping[str, frozenset[str]]
    budget: SlotBudget
    # Claimed deliveries waiting to be sent. Sender threads pop from the left while the
    # calling thread appends (deque operations are atomic): no delivery is taken twice.
    queue: deque[Delivery] = field(default_factory=deque)
    free: list[int] = field(default_factory=list)  # slots held with no sender using them
    senders: int = 0  # sender loops running, each holding one slot
    stopped: bool = False  # circuit opened or configuration refused: send nothing more now
    priority: bool = False  # this call's deliveries go ahead of backlogs (deliveries_send)
    yielding: bool = False  # a priority sender waits for a slot (as of the last check)
    priority_check_at: float = 0.0
    hand_back: int = 0  # slots sender loops are to hand back to the budget as they end
    hand_back_lock: threading.Lock = field(default_factory=threading.Lock)
    retry_at: float = 0.0
    retry_wait: float = SLOT_RETRY_SECONDS
    reset_at: float = 0.0  # monotonic time of the last consecutive-failure reset
    failed_since_reset: bool = True
    owner_thread: int = field(default_factory=threading.get_ident)  # the calling thread

    def slot(self, now: float) -> int | None:
        """A slot for one more sender: a free one held, else one more from the budget."""
        if self.yielding:
            self.retry_at = max(self.retry_at, self.priority_check_at)
            return None
        if self.free:
            return self.free.pop()
        if now < self.retry_at or self.senders >= self.connection.max_concurrency:
            return None
        slot = self.budget.try_acquire()
        if slot is None:
            self.retry_at = now + self.retry_wait
            self.retry_wait = min(self.retry_wait * 2, SLOT_RETRY_MAX_SECONDS)
        else:
            self.retry_wait = SLOT_RETRY_SECONDS
        return slot

    def release_free(self) -> None:
        while self.free:
            self.budget.release(self.free.pop())

    def priority_check(self, now: float) -> None:
        """A backlog sender, every PRIORITY_CHECK_SECONDS: whether a priority sender waits for
        this connection's slots, and if so one slot goes back to the budget — a free one, else
        the next sender loop to finish its request hands its own back. Runs on the thread that
        owns the budget's database session."""
        if self.priority or now < self.priority_check_at:
            return
        self.priority_check_at = now + PRIORITY_CHECK_SECONDS
        self.yielding = self.budget.priority_waiting()
        if not self.yielding:
            self.hand_back = 0
        elif self.free:
            self.budget.release(self.free.pop())
        else:
            with self.hand_back_lock:
                self.hand_back = min(self.hand_back + 1, self.senders)

    def hand_back_taken(self) -> bool:
        """Whether the calling sender loop is to end and hand its slot back."""
        if self.hand_back <= 0:
            return False
        with self.hand_back_lock:
            if self.hand_back <= 0:
                return False
            self.hand_back -= 1
            return True

    def circuit_reset_due(self, now: float) -> bool:
        due = self.failed_since_reset or now - self.reset_at >= CIRCUIT_RESET_EVERY_SECONDS
        if due:
            self.reset_at, self.failed_since_reset = now, False
        return due


@dataclass(frozen=True)
class SenderDone:
    """A sender loop ended: its slot is the calling thread's again."""

    slot: int
    error: BaseException | None = None  # an unexpected error (a bug), raised by the caller
    handed_back: bool = False  # for a priority sender: back to the budget, not kept free


def sender_loop(target: SendingTarget, slot: int, results: SimpleQueue) -> None:
    """One sender thread holding one slot: sends the target's queued deliveries back to back,
    handing each outcome to the calling thread, until the queue is empty, the target is
    stopped, its slot is to go to a priority sender, or a failure that may concern the whole
    connection (the calling thread decides whether to go on)."""
    error = None
    handed_back = False
    # Run inline (max_concurrency 1), this loop is on the calling thread: it makes the
    # priority checks itself, between requests, or a chunk would run to its end first.
    inline = threading.get_ident() == target.owner_thread
    try:
        while not target.stopped:
            if inline:
                target.priority_check(time.monotonic())
            if target.hand_back_taken():
                handed_back = True
                break
            try:
                delivery = target.queue.popleft()
            except IndexError:
                break
            outcome = target.send(
                delivery=delivery,
                connector=target.connector,
                numeric_body_fields=target.numeric_body_fields,
            )
            results.put((target, delivery, outcome))
            if not outcome.ok and outcome.kind != PERMANENT:
                break
    except Exception as exc:  # a bug: the calling thread raises it once the run is wound up
        error = exc
    finally:
        results.put((target, None, SenderDone(slot=slot, error=error, handed_back=handed_back)))
