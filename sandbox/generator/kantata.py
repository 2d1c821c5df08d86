"""The firm in the PSA (Kantata REST v1): workspaces, WBS stories, users, assignments, time
entries, expenses, and the rate cards the time is priced with.

Storage follows `sandbox/kantata/schema.py`: object_type is the resource key; ids of other
records are strings in `data`; money is integer cents with `currency`; `parent_id` is the
workspace id of stories, assignments, time entries and expenses; `status` is "approved" /
"unapproved" for time entries and expenses (the finer state is `approval_status`: "approved",
"submitted" or "rejected"), and the story `state` for stories; `external_id` is the workspace's
`external_reference` (the project key "P-000042").

Additions beyond Kantata's documented attributes, so that the sync has what it needs:
workspace `legal_entity`, `billing_model`, `rate_card_id`, `contract_reference` (the SOW);
story `external_reference` (the WBS key the ERP project task carries as externalId); user
`is_placeholder` (role placeholders: unnamed resources that are not workers in HR); the
`rate_cards` resource ({title, currency, rates: [{role, rate_in_cents}]}).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from sandbox.generator.firm import Firm, Placeholder, Project, at
from sandbox.generator.writer import IdBook, Row, stamp
from sandbox.kantata.schema import SYSTEM

WORKSPACES, STORIES, USERS, ASSIGNMENTS = "workspaces", "stories", "users", "assignments"
TIME_ENTRIES, EXPENSES, RATE_CARDS = "time_entries", "expenses", "rate_cards"
APPROVED, UNAPPROVED = "approved", "unapproved"  # the `status` column of time and expenses


def placeholder_key(placeholder: Placeholder) -> str:
    return f"PH-{placeholder.index + 1:03d}"


def ids_assign(firm: Firm, book: IdBook) -> None:
    for card in firm.rate_cards:
        book.assign(SYSTEM, RATE_CARDS, card.key)
    for project in firm.projects:
        book.assign(SYSTEM, WORKSPACES, project.key)
        for task in project.tasks:
            book.assign(SYSTEM, STORIES, task.key)
        for milestone in project.milestones:
            book.assign(SYSTEM, STORIES, milestone.key)
    for worker in firm.workers:
        book.assign(SYSTEM, USERS, worker.key)
    for placeholder in firm.placeholders:
        book.assign(SYSTEM, USERS, placeholder_key(placeholder))


def rows(firm: Firm, book: IdBook) -> Iterator[Row]:
    """Master data: rate cards, workspaces, stories, users, assignments."""
    setup = at(firm.horizon_start - dt.timedelta(days=365))
    for card in firm.rate_cards:
        data = {
            "title": card.title,
            "currency": card.currency,
            "rates": [{"role": role, "rate_in_cents": cents} for role, cents in card.rates.items()],
        }
        yield (
            book[SYSTEM, RATE_CARDS, card.key],
            SYSTEM,
            RATE_CARDS,
            None,
            None,
            "",
            data,
            setup,
            setup,
        )
    for project in firm.projects:
        yield from _workspace(firm, book, project)
    for worker in firm.workers:
        created = at(worker.hired - dt.timedelta(days=7))
        data = {
            "full_name": worker.name,
            "email_address": worker.email,
            "headline": worker.role,
            "is_placeholder": False,
        }
        yield (
            book[SYSTEM, USERS, worker.key],
            SYSTEM,
            USERS,
            None,
            None,
            "",
            data,
            created,
            created,
        )
    for placeholder in firm.placeholders:
        data = {
            "full_name": placeholder.name,
            "email_address": None,
            "headline": placeholder.role,
            "is_placeholder": True,
        }
        yield (
            book[SYSTEM, USERS, placeholder_key(placeholder)],
            SYSTEM,
            USERS,
            None,
            None,
            "",
            data,
            setup,
            setup,
        )
    for worker in firm.workers:
        user = str(book[SYSTEM, USERS, worker.key])
        for project, task in worker.assignments:
            yield _assignment(firm, book, project, task.key, user)
    for placeholder in firm.placeholders:
        user = str(book[SYSTEM, USERS, placeholder_key(placeholder)])
        for project, task in placeholder.assignments:
            yield _assignment(firm, book, project, task.key, user)


def _assignment(firm: Firm, book: IdBook, project: Project, task_key: str, user: str) -> Row:
    created = at(min(project.start, firm.as_of) - dt.timedelta(days=3))
    data = {"story_id": str(book[SYSTEM, STORIES, task_key]), "assignee_id": user}
    return (
        book.new(),
        SYSTEM,
        ASSIGNMENTS,
        None,
        book[SYSTEM, WORKSPACES, project.key],
        "",
        data,
        created,
        created,
    )


def _workspace(firm: Firm, book: IdBook, project: Project) -> Iterator[Row]:
    workspace = book[SYSTEM, WORKSPACES, project.key]
    created = at(min(project.start, firm.as_of) - dt.timedelta(days=10))
    data = {
        "title": project.name,
        "description": f"{project.sow} for {project.customer.name}",
        "start_date": project.start.isoformat(),
        "due_date": project.end.isoformat(),
        "currency": project.currency,
        "budgeted": True,
        "price_in_cents": project.value_cents,
        "archived": project.end < firm.as_of,
        "client_name": project.customer.name,
        "legal_entity": project.entity,
        "billing_model": project.model,
        "rate_card_id": str(book[SYSTEM, RATE_CARDS, project.rate_card.key]),
        "contract_reference": project.sow,
    }
    yield (workspace, SYSTEM, WORKSPACES, project.key, None, "", data, created, created)
    phase_ids: dict[str, int] = {}
    for task in project.tasks:
        story = book[SYSTEM, STORIES, task.key]
        if not task.leaf:
            phase_ids[task.title] = story
        if task.erp == "closed":
            state = "completed"
        elif task.start > firm.as_of:
            state = "not started"
        else:
            state = "started"
        parent = phase_ids.get(task.phase)
        data = {
            "title": task.title,
            "story_type": "task",
            "state": state,
            "parent_id": None if parent is None else str(parent),
            "start_date": task.start.isoformat(),
            "due_date": task.end.isoformat(),
            "billable": task.billable,
            "external_reference": task.key,
        }
        stamp = created + dt.timedelta(days=1)
        if task.erp == "missing":  # added in the PSA later, never provisioned in the ERP
            stamp = at(min(firm.horizon_start + dt.timedelta(days=45), firm.as_of))
        yield (story, SYSTEM, STORIES, None, workspace, state, data, stamp, stamp)
    for milestone in project.milestones:
        state = "completed" if milestone.completed else "not started"
        data = {
            "title": milestone.title,
            "story_type": "milestone",
            "state": state,
            "parent_id": None,
            "start_date": project.start.isoformat(),
            "due_date": milestone.due.isoformat(),
            "billable": True,
            "price_in_cents": milestone.amount_cents,
            "currency": project.currency,
            "external_reference": milestone.key,
        }
        updated = at(milestone.due, 15) if milestone.completed else created
        yield (
            book[SYSTEM, STORIES, milestone.key],
            SYSTEM,
            STORIES,
            None,
            workspace,
            state,
            data,
            created,
            updated,
        )


def time_entry_stamps(day: dt.date, now: dt.datetime) -> dict[str, tuple[str, str]]:
    """(created_at, updated_at) of a time entry of `day`, by approval status: entered at the end
    of the day, approved two days later, rejected the next day."""
    created = at(day, 17, 30)
    return {
        "approved": (stamp(created), stamp(min(created + dt.timedelta(days=2), now))),
        "rejected": (stamp(created), stamp(min(created + dt.timedelta(days=1), now))),
        "submitted": (stamp(created), stamp(created)),
    }


def time_entry(
    record_id: int,
    workspace: int,
    day: str,
    minutes: int,
    billable: bool,
    rate_cents: int,
    currency: str,
    story: str,
    user: str,
    approval: str,
    stamps: tuple[str, str],
) -> Row:
    """One time entry (hot path: `day` is ISO text, `stamps` from `time_entry_stamps`)."""
    data = {
        "date_performed": day,
        "time_in_minutes": minutes,
        "billable": billable,
        "rate_in_cents": rate_cents,
        "currency": currency,
        "story_id": story,
        "user_id": user,
        "notes": "",
        "approval_status": approval,
    }
    status = APPROVED if approval == "approved" else UNAPPROVED
    return (record_id, SYSTEM, TIME_ENTRIES, None, workspace, status, data, stamps[0], stamps[1])


def expense(
    record_id: int,
    workspace: int,
    day: dt.date,
    category: str,
    amount_cents: int,
    billable: bool,
    currency: str,
    user: str,
    approval: str,
    now: dt.datetime,
) -> Row:
    created = at(day, 19)
    updated = min(created + dt.timedelta(days=3), now) if approval != "submitted" else created
    data = {
        "date": day.isoformat(),
        "category": category,
        "amount_in_cents": amount_cents,
        "currency": currency,
        "billable": billable,
        "notes": f"{category} on {day.isoformat()}",
        "user_id": user,
        "approval_status": approval,
    }
    status = APPROVED if approval == "approved" else UNAPPROVED
    return (record_id, SYSTEM, EXPENSES, None, workspace, status, data, created, updated)
