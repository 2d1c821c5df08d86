"""The time and expense stream: exactly N time entries, day by day, written as they are made.

Nothing is held but small aggregates: per (project, month) approved billable value for billing,
and the planted faults. Each working day gets its share of N; the named workers employed and
assigned that day book 1 to 3 entries each (rotating who books more), on the tasks they are
assigned to. Approved time is posted to the ERP as a time bill unless it is in the last week
(the sync's backlog) or a planted fault stops it.

Planted time faults (each entry carries at most one):
- closed_period: approved in a closed accounting period and never posted;
- invalid_task: booked to a task that is complete in the ERP (after its end) or that exists
  only in the PSA;
- role_placeholder: booked by a role placeholder, who is not a worker in HR or the ERP.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise

from sandbox.generator import kantata, netsuite
from sandbox.generator.firm import (
    DAY,
    ENTITY_BY_CODE,
    Firm,
    Placeholder,
    Project,
    Task,
    Worker,
    month_add,
    month_key,
    month_start,
    stream_rng,
)
from sandbox.generator.writer import IdBook, RecordSink

KT, NS = kantata.SYSTEM, netsuite.SYSTEM
DAY_MINUTES = (420, 450, 480, 480, 480, 480, 510, 540)
EXPENSE_CATEGORIES = ("Travel", "Hotel", "Meals", "Mileage", "Software", "Train")
FAR = dt.date(9999, 12, 31)


@dataclass
class TimeFault:
    kind: str  # closed_period / invalid_task / role_placeholder
    time_entry_id: int
    project: Project
    day: dt.date
    value_cents: int
    reason: str
    user_id: int


@dataclass
class Activity:
    """What the stream leaves for billing and the manifest."""

    time_entries: int = 0
    time_bills: int = 0
    expenses: int = 0
    billable: dict[tuple[int, str], list[int]] = field(default_factory=dict)  # minutes, cents
    billable_expenses: dict[tuple[int, str], int] = field(default_factory=dict)
    leaked: dict[tuple[int, str], tuple[list[int], list[int]]] = field(default_factory=dict)
    no_cost_centre: dict[int, list[int]] = field(default_factory=dict)  # worker: entries, cents
    unmapped: dict[int, list[int]] = field(default_factory=dict)  # project: entries, cents
    faults: list[TimeFault] = field(default_factory=list)


@dataclass
class _Slot:
    """One assignment of a worker, with everything an entry on it needs, precomputed."""

    start: dt.date
    end: dt.date
    project: Project
    task: Task
    workspace: int
    story: str
    job: str | None
    ns_task: str | None
    rate: int


def _slots(firm: Firm, book: IdBook, worker: Worker) -> list[_Slot]:
    slots = []
    for project, task in worker.assignments:
        start = max(project.start, task.start, worker.hired)
        end = min(project.end, task.end, worker.terminated or FAR)
        if start > end:
            continue
        job = book.get(NS, "job", project.key)
        ns_task = book.get(NS, "projectTask", task.key)
        slots.append(
            _Slot(
                start,
                end,
                project,
                task,
                book[KT, kantata.WORKSPACES, project.key],
                str(book[KT, kantata.STORIES, task.key]),
                None if job is None else str(job),
                None if ns_task is None else str(ns_task),
                project.rate_card.rates[worker.role],
            )
        )
    return slots


def _segments(slots: list[_Slot]) -> list[tuple[dt.date, dt.date, list[_Slot]]]:
    """(first day, last day, slots active) over the spans where a person's active slots do not
    change, in date order, leaving out spans with none: the day loop walks them with a cursor
    instead of testing every slot every day."""
    bounds = sorted({s.start for s in slots} | {s.end + DAY for s in slots})
    segments = []
    for first, after in pairwise(bounds):
        active = [s for s in slots if s.start <= first and after - DAY <= s.end]
        if active:
            segments.append((first, after - DAY, active))
    return segments


def _approval_weights(firm: Firm, day: dt.date) -> tuple[int, int, int]:
    """(approved, submitted, rejected) weights by how old the day is."""
    if firm.closed(day):
        return (97, 1, 2)
    if day < month_start(firm.as_of):
        return (88, 9, 3)
    if day < firm.backlog_start:
        return (70, 25, 5)
    return (40, 55, 5)


def activity_write(
    *, firm: Firm, book: IdBook, sink: RecordSink, progress: Callable[[int], None]
) -> Activity:
    """Write every time entry, expense, time bill and expense report. Deterministic."""
    rng = stream_rng(firm.seed, "time")
    fault_rng = stream_rng(firm.seed, "time-faults")
    out = Activity()
    days = firm.working_days()
    n_total, n_days = firm.time_entries, len(days)
    now = firm.now
    leaks = firm.faults.leak_months
    plan = firm.faults
    remaining = {
        "closed_period": plan.closed_period,
        "invalid_task": plan.task,
        "role_placeholder": plan.placeholder,
    }

    people = []
    for worker in firm.workers:
        slots = _slots(firm, book, worker)
        if not slots:
            continue
        people.append(
            (
                worker,
                _segments(slots),
                str(book[KT, kantata.USERS, worker.key]),
                str(book[NS, "employee", worker.key]),
                None
                if worker.cost_centre is None
                else str(book[NS, "department", worker.cost_centre]),
                str(book[NS, "subsidiary", worker.entity]),
                book[NS, "currency", ENTITY_BY_CODE[worker.entity].currency],
            )
        )
    holders: dict[str, tuple[Placeholder, str]] = {}
    for placeholder in firm.placeholders:
        if placeholder.role == "Consultant":
            holders[placeholder.entity] = (
                placeholder,
                str(book[KT, kantata.USERS, kantata.placeholder_key(placeholder)]),
            )
    # Hosts of the task and placeholder faults: a closed ERP task and a PSA-only story each.
    hosts = {}
    for project in firm.projects:
        if project.fault_host:
            closed = next(t for t in project.tasks if t.erp == "closed")
            missing = next(t for t in project.tasks if t.erp == "missing")
            holder, holder_user = holders[ENTITY_BY_CODE[project.entity].staffed_by]
            holder_task = next(t for p, t in holder.assignments if p is project)
            hosts[project.index] = (closed, missing, holder, holder_user, holder_task)
    host_share = sum(1 for w in firm.workers for p, _t in w.assignments if p.fault_host) / max(
        1, sum(len(w.assignments) for w in firm.workers)
    )
    open_from = month_add(month_start(firm.as_of), -1)
    closed_share = sum(1 for d in days if d < open_from) / n_days
    p_closed = min(1.0, 3 * plan.closed_period / max(1.0, n_total * closed_share * 0.8))
    p_task = min(1.0, 3 * plan.task / max(1.0, n_total * host_share * 0.6))
    p_placeholder = min(1.0, 3 * plan.placeholder / max(1.0, n_total * host_share * 0.6))

    cursor = [0] * len(people)  # each person's current segment
    random = rng.random
    add, new_id = sink.add, book.new  # bound once: the loop below runs a million times
    billable_tally = out.billable
    time_entry, time_bill = kantata.time_entry, netsuite.time_bill
    written = 0
    step = max(1, n_total // 20)
    next_report = step
    deficit = 0
    for day_index, day in enumerate(days):
        quota = n_total * (day_index + 1) // n_days - n_total * day_index // n_days + deficit
        active = []
        for number, person in enumerate(people):
            segments, at_segment = person[1], cursor[number]
            while at_segment < len(segments) and segments[at_segment][1] < day:
                at_segment += 1
            cursor[number] = at_segment
            if at_segment < len(segments) and segments[at_segment][0] <= day:
                active.append((person, segments[at_segment][2]))
        if not active:
            deficit = quota
            continue
        last_day = day_index == n_days - 1
        per, extra = divmod(quota, len(active))
        cap = quota if last_day else 3
        offset = (day_index * 7919) % len(active)
        booked = 0
        weights = _approval_weights(firm, day)
        approved_below = weights[0] / sum(weights)
        submitted_below = (weights[0] + weights[1]) / sum(weights)
        day_text = day.isoformat()
        stamps = kantata.time_entry_stamps(day, now)
        posted = netsuite.time_bill_posted(day, now)
        month = month_key(day)
        invoiced_month = firm.invoiced_month(day)
        closed_day = day < open_from
        backlog = day >= firm.backlog_start
        for position in range(len(active)):
            (worker, _all, user, employee, department, subsidiary, currency_id), slots = active[
                (position + offset) % len(active)
            ]
            count = min(cap, per + (1 if position < extra else 0))
            if count == 0:
                continue
            # Distinct tasks from a random start (random.sample is slow on the hot path).
            first = int(random() * len(slots))
            picks = [slots[(first + i) % len(slots)] for i in range(count)]
            total = DAY_MINUTES[int(random() * len(DAY_MINUTES))]
            share = total // count // 15 * 15
            for number, slot in enumerate(picks):
                minutes = share if number < count - 1 else total - share * (count - 1)
                draw = random()
                if draw < approved_below:
                    approval = "approved"
                elif draw < submitted_below:
                    approval = "submitted"
                else:
                    approval = "rejected"
                project = slot.project
                story, user_id, rate, task = slot.story, user, slot.rate, slot.task
                fault = None
                if (
                    approval == "approved"
                    and not backlog
                    and project.provisioned
                    and department is not None
                ):
                    host = hosts.get(project.index)
                    if host is not None and day > host[0].end:
                        draw = fault_rng.random()
                        if draw < p_task and remaining["invalid_task"] > 0:
                            task = host[0] if remaining["invalid_task"] % 2 else host[1]
                            story = str(book[KT, kantata.STORIES, task.key])
                            fault = "invalid_task"
                        elif draw < p_task + p_placeholder and remaining["role_placeholder"] > 0:
                            user_id, task = host[3], host[4]
                            story = str(book[KT, kantata.STORIES, task.key])
                            rate = project.rate_card.rates[host[2].role]
                            fault = "role_placeholder"
                    elif (
                        closed_day
                        and host is None
                        and (project.index, month) not in leaks
                        and fault_rng.random() < p_closed
                        and remaining["closed_period"] > 0
                    ):
                        fault = "closed_period"
                billable = task.billable
                value = rate * minutes // 60
                entry_id = new_id()
                add(
                    time_entry(
                        entry_id,
                        slot.workspace,
                        day_text,
                        minutes,
                        billable,
                        rate,
                        project.currency,
                        story,
                        user_id,
                        approval,
                        stamps[approval],
                    )
                )
                written += 1
                booked += 1
                if approval == "approved":
                    if fault is not None:
                        remaining[fault] -= 1
                        out.faults.append(
                            TimeFault(
                                fault,
                                entry_id,
                                project,
                                day,
                                value,
                                _reason(fault, task, day),
                                int(user_id),
                            )
                        )
                    elif not project.provisioned:
                        if not ENTITY_BY_CODE[project.entity].erp_mapped:
                            tally = out.unmapped.setdefault(project.index, [0, 0])
                            tally[0] += 1
                            tally[1] += value
                    elif department is None:
                        if not backlog:
                            tally = out.no_cost_centre.setdefault(worker.index, [0, 0])
                            tally[0] += 1
                            tally[1] += value
                    elif not backlog:
                        add(
                            time_bill(
                                new_id(),
                                entry_id,
                                employee,
                                slot.job,
                                slot.ns_task,
                                department,
                                subsidiary,
                                day_text,
                                minutes,
                                rate,
                                billable,
                                posted,
                            )
                        )
                        out.time_bills += 1
                    if billable and invoiced_month and project.provisioned:
                        key = (project.index, month)
                        if key in leaks:
                            ids, money = out.leaked.setdefault(key, ([], [0]))
                            ids.append(entry_id)
                            money[0] += value
                        else:
                            tally = billable_tally.get(key)
                            if tally is None:
                                tally = billable_tally[key] = [0, 0]
                            tally[0] += minutes
                            tally[1] += value
                if random() < 0.04:
                    _expense(
                        out,
                        firm,
                        book,
                        sink,
                        rng,
                        slot,
                        day,
                        user,
                        employee,
                        department,
                        subsidiary,
                        currency_id,
                        weights,
                        backlog,
                        invoiced_month,
                        month,
                    )
                if written >= next_report:
                    progress(written)
                    next_report += step
        deficit = quota - booked
    out.time_entries = written
    return out


def _reason(kind: str, task: Task, day: dt.date) -> str:
    if kind == "invalid_task":
        if task.erp == "missing":
            return f"task {task.key} exists in the PSA only (no ERP project task)"
        return f"task {task.key} was completed in the ERP on {task.end}, booked {day}"
    if kind == "role_placeholder":
        return "booked by a role placeholder, not a named worker"
    return f"approved after the {day.strftime('%b %Y')} period closed; not posted"


def _expense(
    out,
    firm,
    book,
    sink,
    rng,
    slot,
    day,
    user,
    employee,
    department,
    subsidiary,
    currency_id,
    weights,
    backlog,
    invoiced_month,
    month,
) -> None:
    project = slot.project
    key = (project.index, month)
    category = rng.choice(EXPENSE_CATEGORIES)
    amount = rng.randint(1_500, 45_000)
    # Expenses of a leaked month are non-billable so that the leak is time only.
    billable = (
        project.model == "Time and Materials"
        and rng.random() < 0.7
        and (key not in firm.faults.leak_months)
    )
    approval = rng.choices(("approved", "submitted", "rejected"), weights)[0]
    expense_id = book.new()
    sink.add(
        kantata.expense(
            expense_id,
            slot.workspace,
            day,
            category,
            amount,
            billable,
            project.currency,
            user,
            approval,
            firm.now,
        )
    )
    out.expenses += 1
    if approval != "approved":
        return
    if not backlog and project.provisioned and department is not None:
        sink.add(
            netsuite.expense_report(
                book.new(),
                expense_id,
                employee,
                slot.job,
                department,
                subsidiary,
                str(currency_id),
                day,
                category,
                amount,
                billable,
                firm.now,
            )
        )
    if billable and invoiced_month and project.provisioned:
        out.billable_expenses[key] = out.billable_expenses.get(key, 0) + amount
