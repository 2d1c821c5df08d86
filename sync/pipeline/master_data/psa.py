"""PSA (Kantata REST v1) → links of workspaces, stories and users to the ERP/HR master data.

Payloads are the records `KantataConnector.pull(entity=…)` yields. The project master belongs
to the ERP (the default `PROJECT_MASTER_OWNER`) and the worker master to HR, so the PSA never
creates a project, task or worker: it links its record to the canonical one (ExternalRef psa)
and offers its values to the owner rules, which refuse a PSA change to a field it does not own
(FIELD_OWNED_ELSEWHERE; the link still applies).

- workspace → Project by code = `external_reference` (the ERP job's externalId). No project:
  LEGAL_ENTITY_UNMAPPED (mapping queue) when the workspace's `legal_entity` has no legal
  entity or no published legal-entity mapping (it cannot be provisioned before that), else
  PROJECT_NOT_PROVISIONED (project set-up). Both are parked and re-enter on replay.
- story → Task by (the workspace's project, `external_reference` = the WBS key). No task:
  TASK_NOT_PROVISIONED (project set-up). Milestone stories are not WBS tasks: skipped here.
- user → the Worker with the same e-mail (Kantata users carry no employee number), or, for
  `is_placeholder` users, a RolePlaceholder (PSA-owned) on the first project the user is
  assigned to, read from the PSA assignments in the inbox (a Kantata user names no project).
  A named user HR does not know: WORKER_NOT_IN_HR.
- assignments: stored for the placeholder look-up; canonical Assignment sync is a later step.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sync.mappings.resolve import MappingTable
from sync.mappings.selectors import mapping_tables_load
from sync.models import LegalEntity, Project, RolePlaceholder, Task, Worker
from sync.pipeline.master_data.engine import (
    Plan,
    Reader,
    missing_reference,
    plans_apply,
    records_by_ref,
    refs_load,
)
from sync.pipeline.master_data.workers import worker_not_in_hr, workers_by_email
from sync.pipeline.models import InboxItem
from sync.pipeline.models.exception_items import Queue
from sync.pipeline.processing import Batch

SYSTEM = "psa"
LEGAL_ENTITY_SET = "legal-entity"  # the set time posting maps entities to subsidiaries with


@dataclass(frozen=True)
class Record:
    external_id: str
    fields: dict[str, Any]


def _record(payload: Any, what: str, read) -> Record:
    reader = Reader(payload, what=f"Kantata {what}")
    external_id = reader.text("id")
    fields = read(reader)
    reader.done()
    return Record(external_id=external_id, fields=fields)


# --- workspaces -----------------------------------------------------------------------------


def workspace_parse(payload: Any) -> Record:
    def read(r: Reader) -> dict[str, Any]:
        return {
            "title": r.text("title", max_length=200),
            "code": r.text("external_reference", required=False, max_length=40),
            "legal_entity": r.text("legal_entity", required=False, max_length=20),
        }

    return _record(payload, "workspace", read)


@dataclass(frozen=True)
class WorkspaceReferences:
    """What a batch of workspaces refers to: their projects (by PSA ref, by code) and which of
    their legal entities exist. Three queries (`workspace_references_load`)."""

    by_ref: dict[str, Project]
    by_code: dict[str, Project]
    entities: set[str]

    def project(self, p: Record) -> Project | None:
        return self.by_ref.get(p.external_id) or self.by_code.get(p.fields["code"])


def workspace_references_load(records: list[Record]) -> WorkspaceReferences:
    return WorkspaceReferences(
        by_ref=records_by_ref(SYSTEM, Project, [p.external_id for p in records]),
        # `__any`, not in_bulk / `__in`: one query whatever the batch (in_bulk splits a long
        # list at SQLite's parameter limit).
        by_code={
            project.code: project
            for project in Project.objects.filter(
                code__any={p.fields["code"] for p in records if p.fields["code"]}
            )
        },
        entities=set(
            LegalEntity.objects.filter(
                code__any={p.fields["legal_entity"] for p in records if p.fields["legal_entity"]}
            ).values_list("code", flat=True)
        ),
    )


def workspace_entity_unmapped(
    p: Record, refs: WorkspaceReferences, mappings: MappingTable, on: dt.date
) -> bool:
    """Whether a workspace with no project parks as LEGAL_ENTITY_UNMAPPED (its legal entity is
    unknown or has no subsidiary in the legal-entity version effective `on`) rather than as
    PROJECT_NOT_PROVISIONED. Pure; the mapping dry run asks it too (sync/pipeline/dry_run.py)."""
    entity = p.fields["legal_entity"]
    return bool(entity) and (
        entity not in refs.entities
        or (
            LEGAL_ENTITY_SET in mappings.set_slugs
            and mappings.lookup(LEGAL_ENTITY_SET, entity, on) is None
        )
    )


def workspace_plan(records: list, batch: Batch) -> None:
    refs = workspace_references_load([p for _, p in records])
    mappings = mapping_tables_load(sets=[LEGAL_ENTITY_SET])
    plans = []
    for item, p in records:
        project = refs.project(p)
        if project is not None:
            plans.append(
                Plan(
                    item=item,
                    external_id=p.external_id,
                    existing=project,
                    values={"name": p.fields["title"]},
                )
            )
            continue
        entity = p.fields["legal_entity"]
        if workspace_entity_unmapped(p, refs, mappings, batch.today):
            batch.fail(
                item,
                p.external_id,
                code="LEGAL_ENTITY_UNMAPPED",
                queue=Queue.MAPPING,
                cause=entity,
                message=f"Workspace {p.fields['code'] or p.external_id} belongs to legal entity "
                f"{entity}, which has no ERP subsidiary in the published mapping: the project "
                "cannot be provisioned and its time cannot be posted.",
                suggested_fix="Add the legal entity to the legal-entity mapping (or create its "
                "ERP subsidiary), publish it, and replay.",
                detail={"legal_entity": entity, "project_code": p.fields["code"]},
                legal_entity=entity or "",
            )
            continue
        batch.fail(
            item,
            p.external_id,
            code="PROJECT_NOT_PROVISIONED",
            queue=Queue.PROJECT_SETUP,
            cause=p.fields["code"] or p.external_id,
            message=f"Workspace {p.fields['code'] or p.external_id} ({p.fields['title']}) has "
            "no ERP project yet.",
            suggested_fix="Provision the project in the ERP (externalId = the workspace's "
            "external reference), then replay.",
            detail={"project_code": p.fields["code"]},
            legal_entity=entity or "",
        )
    plans_apply(
        batch, model=Project, owner_entity="project", plans=plans, queue=Queue.PROJECT_SETUP
    )


# --- stories ------------------------------------------------------------------------------------


def story_parse(payload: Any) -> Record:
    def read(r: Reader) -> dict[str, Any]:
        return {
            "title": r.text("title", max_length=200),
            "workspace": r.text("workspace_id"),
            "code": r.text("external_reference", required=False, max_length=40),
            "type": r.text("story_type", required=False) or "task",
        }

    return _record(payload, "story", read)


def story_plan(records: list, batch: Batch) -> None:
    milestones = [(i, p) for i, p in records if p.fields["type"] == "milestone"]
    batch.counts.unchanged += len(milestones)  # milestones are billing events, not WBS tasks
    records = [(i, p) for i, p in records if p.fields["type"] != "milestone"]
    projects = refs_load(SYSTEM, Project, [p.fields["workspace"] for _, p in records])
    by_ref = records_by_ref(SYSTEM, Task, [p.external_id for _, p in records])
    by_key = {
        (t.project_id, t.code): t
        for t in Task.objects.filter(
            project_id__in=set(projects.values()), code__in={p.fields["code"] for _, p in records}
        )
    }
    plans = []
    for item, p in records:
        project = projects.get(p.fields["workspace"])
        if project is None:
            missing_reference(
                batch,
                item,
                p.external_id,
                what="workspace",
                ref=p.fields["workspace"],
                queue=Queue.PROJECT_SETUP,
                code="PROJECT_UNKNOWN",
                fix="Provision the workspace's project (see its own exception item), then replay.",
            )
            continue
        task = by_ref.get(p.external_id) or by_key.get((project, p.fields["code"]))
        if task is None:
            batch.fail(
                item,
                p.external_id,
                code="TASK_NOT_PROVISIONED",
                queue=Queue.PROJECT_SETUP,
                cause=p.fields["code"] or p.external_id,
                message=f"Story {p.fields['code'] or p.external_id} ({p.fields['title']}) has "
                "no ERP project task: time booked to it cannot be posted.",
                suggested_fix="Add the task to the project's WBS in the ERP (externalId = the "
                "story's external reference), or remove the story in the PSA; then replay.",
                detail={"task_code": p.fields["code"]},
            )
            continue
        plans.append(
            Plan(
                item=item,
                external_id=p.external_id,
                existing=task,
                values={"name": p.fields["title"]},
            )
        )
    plans_apply(batch, model=Task, owner_entity="task", plans=plans, queue=Queue.PROJECT_SETUP)


# --- users ----------------------------------------------------------------------------------------


def user_parse(payload: Any) -> Record:
    def read(r: Reader) -> dict[str, Any]:
        fields = {
            "name": r.text("full_name", max_length=200),
            "email": (r.text("email_address", required=False) or "").lower(),
            "role": r.text("headline", required=False, max_length=100),
            "placeholder": r.flag("is_placeholder"),
        }
        if not fields["placeholder"] and not fields["email"]:
            r.errors.append("`email_address` is missing: a named user is matched by e-mail.")
        return fields

    return _record(payload, "user", read)


def user_plan(records: list, batch: Batch) -> None:
    placeholders = [(i, p) for i, p in records if p.fields["placeholder"]]
    named = [(i, p) for i, p in records if not p.fields["placeholder"]]
    if named:
        _named_plan(named, batch)
    if placeholders:
        _placeholder_plan(placeholders, batch)


def _named_plan(records: list, batch: Batch) -> None:
    by_ref = records_by_ref(SYSTEM, Worker, [p.external_id for _, p in records])
    by_email = workers_by_email({p.fields["email"] for _, p in records})
    plans = []
    for item, p in records:
        worker = by_ref.get(p.external_id) or by_email.get(p.fields["email"])
        if worker is None:
            worker_not_in_hr(batch, item, p.external_id, p.fields["email"])
            continue
        plans.append(
            Plan(
                item=item,
                external_id=p.external_id,
                existing=worker,
                values={"name": p.fields["name"]},
            )
        )
    plans_apply(
        batch, model=Worker, owner_entity="worker", plans=plans, queue=Queue.TIME_AND_EXPENSE
    )


def _placeholder_plan(records: list, batch: Batch) -> None:
    users = {p.external_id for _, p in records}
    by_ref = records_by_ref(SYSTEM, RolePlaceholder, users)
    staffed: dict[str, list[str]] = {}
    for payload in (
        InboxItem.objects.filter(
            system=SYSTEM, entity="assignments", payload__assignee_id__in=sorted(users)
        )
        .order_by("id")
        .values_list("payload", flat=True)
    ):
        if isinstance(payload, dict) and payload.get("workspace_id"):
            staffed.setdefault(str(payload["assignee_id"]), []).append(str(payload["workspace_id"]))
    projects = refs_load(SYSTEM, Project, {w for ws in staffed.values() for w in ws})
    plans = []
    for item, p in records:
        role = p.fields["role"] or p.fields["name"]
        existing = by_ref.get(p.external_id)
        if existing is not None:
            plans.append(
                Plan(
                    item=item,
                    external_id=p.external_id,
                    existing=existing,
                    values={"role_name": role},
                )
            )
            continue
        project = next((projects[w] for w in staffed.get(p.external_id, []) if w in projects), None)
        if project is None:
            batch.fail(
                item,
                p.external_id,
                code="PLACEHOLDER_UNASSIGNED",
                queue=Queue.PROJECT_SETUP,
                cause=f"placeholder:{p.external_id}",
                message=f"Role placeholder {p.fields['name']} ({p.external_id}) is assigned to "
                "no provisioned project yet.",
                suggested_fix="Sync the PSA assignments and the placeholder's projects, then "
                "replay.",
            )
            continue
        plans.append(
            Plan(
                item=item,
                external_id=p.external_id,
                values={"role_name": role},
                fixed={"project": project},
            )
        )
    plans_apply(
        batch,
        model=RolePlaceholder,
        owner_entity="role_placeholder",
        plans=plans,
        queue=Queue.PROJECT_SETUP,
    )


# --- assignments ----------------------------------------------------------------------


def assignment_parse(payload: Any) -> Record:
    def read(r: Reader) -> dict[str, Any]:
        return {"user": r.text("assignee_id"), "workspace": r.text("workspace_id")}

    return _record(payload, "assignment", read)


def assignment_plan(records: list, batch: Batch) -> None:
    # Read later by the placeholder look-up (from the inbox); no canonical write yet.
    batch.counts.unchanged += len(records)
