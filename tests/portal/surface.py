"""The project's whole HTTP surface, and what each role must get from each part of it.

`surface_walk()` lists every URL the project serves (every named pattern of the URL conf, every
admin page of every registered model with a real object, every admin action), and
`expected()` says what each user gets there, derived from `portal/roles.py` (areas, operators,
model permissions, staff roles) and the admin's stated policy (`ADMIN_POLICY`). A URL with no
rule here fails the tests that use it: a new page must say who may use it.

Seeded values (`COST_RATE_VALUES`, `SECRET_VALUES`) let the leak tests look for cost rates and
credentials in every response body.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from portal.roles import AREAS, QUEUES_BY_ROLE, ROLES, STAFF_ROLES, role_permissions
from tests import factories as f

ANONYMOUS = "anonymous"
USERS = (ANONYMOUS, *ROLES)
LOGIN = "login"  # a redirect to a sign-in page
RAN, REFUSED = "ran", "refused"  # what an admin action did

# Values no page may show: cost rates to a role without sync.view_cost_rate, secrets to anyone.
WORKER_COST_RATE = Decimal("9317.53")
COST_RATE_VALUES = ("9317.53", "8642.19", "7531.86", "6420.75")
SECRET_VALUES = (
    "cred-Zx81-client-secret",
    "cred-Qv27-webhook-secret",
    "cred-Lm55-password",
    "cred-Ht93-old-secret",
)

# What an admin page allows beyond the model permissions (each ModelAdmin's own policy).
ADMIN_POLICY = {
    "pipeline.inboxitem": {"add": False},
    "pipeline.delivery": {"add": False},
    "pipeline.targetrecord": {"add": False, "change": False, "delete": False},
    "pipeline.syncrun": {"delete": False},
    "pipeline.connection": {"delete": False},
    "mappings.ownershiprule": {"delete": False},
    "mappings.ownershipchange": {"add": False, "change": False, "delete": False},
    "mappings.mappingversion": {"add": False},
    "pipeline.exceptionitem": {"add": False},
}


@dataclass(frozen=True)
class Cell:
    """One request: a URL (by its kind) and a method, and what a user gets there."""

    kind: str
    url: str
    method: str
    label: str  # app.model for admin model pages, else the URL name
    action: str = ""
    object_pk: object = None

    def __str__(self) -> str:
        return f"{self.method} {self.url}" + (f" action={self.action}" if self.action else "")


# -- seeding ---------------------------------------------------------------------------------
def surface_seed() -> dict[str, models.Model]:
    """One object of every model the admin serves, carrying the cost rates and secrets above
    wherever a page could show them (worker fields, payloads, credentials, their history)."""
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    from portal.models import ExceptionGroupJob, UserLegalEntity
    from sync.mappings import ownership_services, services
    from sync.pipeline.models import (
        Connection,
        Delivery,
        ExceptionItem,
        InboxItem,
        SyncRun,
        TargetRecord,
    )

    now = timezone.now()
    entry = f.TimeEntryFactory()
    worker = entry.worker
    worker.cost_rate = WORKER_COST_RATE
    worker.cost_rate_currency = entry.currency
    worker.save()
    invoice_line = f.InvoiceLineFactory()
    objects: list[models.Model] = [
        entry,
        worker,
        invoice_line,
        invoice_line.invoice,
        f.FxRateFactory(),
        f.TaxCodeFactory(),
        f.CostCentreFactory(),
        f.AccountingPeriodFactory(),
        f.OpportunityFactory(),
        f.ContractFactory(),
        f.RateCardLineFactory(),
        f.RolePlaceholderFactory(),
        f.AssignmentFactory(),
        f.MilestoneFactory(),
        f.UsageRecordFactory(),
        f.ExpenseFactory(),
        f.InvoiceCandidateFactory(),
        f.PaymentFactory(),
        f.RevenueEntryFactory(),
        f.ExternalRefFactory(),
    ]
    connection = Connection.objects.create(
        name="erp-matrix", system="erp", dialect="netsuite", base_url="http://127.0.0.1:9/ns"
    )
    connection.credentials_set({"client_secret": SECRET_VALUES[3]})
    connection.save()
    connection.credentials_set(
        {
            "client_secret": SECRET_VALUES[0],
            "webhook_secret": SECRET_VALUES[1],
            "password": SECRET_VALUES[2],
        }
    )
    connection.save()  # two history rows: a diff of the credentials could show both
    hr_payload = {
        "id": "u-1",
        "userName": "ada@example.com",
        "urn:ledgerbridge:params:scim:schemas:extension:costing:2.0:User": {
            "costRate": {"amount": COST_RATE_VALUES[1], "currency": "GBP"},
        },
    }
    run = SyncRun.objects.create(kind="pull", connection=connection, started_at=now)
    inbox = InboxItem.objects.create(
        connection=connection,
        system="hr",
        entity="Users",
        external_id="u-1",
        payload=hr_payload,
        payload_hash="0" * 64,
        received_at=now,
        correlation_id="c" * 32,
        run=run,
    )
    delivery = Delivery.objects.create(
        connection=connection,
        operation="erp.employee.upsert",
        content_type=ContentType.objects.get_for_model(type(worker)),
        object_id=str(worker.pk),
        record_version=1,
        idempotency_key="erp:employee:1:v1",
        external_id="LB-W-1",
        payload={"record_type": "employee", "body": {"laborCost": COST_RATE_VALUES[2]}},
        next_attempt_at=now,
        correlation_id="c" * 32,
    )
    exception = ExceptionItem.objects.create(
        queue="time_and_expense",
        stage="validate",
        code="COST_CENTRE_MISSING",
        category="business",
        message="No cost centre.",
        record_key="hr:Users:u-1",
        inbox_item=inbox,
        delivery=delivery,
        payload=hr_payload,
        detail={"rule": "cost_centre", "costRate": COST_RATE_VALUES[3]},
        money_at_risk=Decimal("120.00"),
        currency="GBP",
        correlation_id="c" * 32,
        root_cause="cost-centre",
        first_failed_at=now,
        last_failed_at=now,
        sla_due_at=now + dt.timedelta(days=1),
    )
    exception.detail = {**exception.detail, "seen": 2}
    exception.save()  # a history diff over the payload-bearing fields
    target = TargetRecord.objects.create(
        connection=connection,
        record_type="timeBill",
        external_id="KT-TE-1",
        target_id="9",
        source="delivered",
        seen_at=now,
    )
    mapping_set = services.mapping_set_create(
        slug="matrix-entities", name="Matrix entities", kind="legal_entity", user=None
    )
    version = services.mapping_version_create_draft(mapping_set=mapping_set, user=None)
    services.mapping_entry_set(version=version, source_value="LB-NL", target_value="7", user=None)
    rule = ownership_services.ownership_rule_set(
        entity="project",
        field="name",
        owner_system="erp",
        effective_from=dt.date(2026, 1, 1),
        user=None,
    )
    change = ownership_services.ownership_change_create(
        entity="project",
        field="name",
        owner_system="psa",
        effective_from=dt.date(2026, 7, 1),
        reason="The PSA names projects.",
        user=None,
    )
    objects += [
        connection,
        run,
        inbox,
        delivery,
        exception,
        target,
        mapping_set,
        version,
        rule,
        change,
        AccessAttempt.objects.create(username="x", ip_address="127.0.0.1", failures_since_start=1),
        AccessLog.objects.create(username="x", ip_address="127.0.0.1"),
        AccessFailureLog.objects.create(username="x", ip_address="127.0.0.1", locked_out=False),
        Group.objects.get(name=ROLES[0]),
    ]
    someone = User.objects.create_user("someone-else")
    objects += [
        someone,
        ExceptionGroupJob.objects.create(
            root_cause=exception.root_cause, action="replay", requested_by=someone, total=1
        ),
        UserLegalEntity.objects.create(user=someone, legal_entity="LB-GB"),
    ]
    seeded = {}
    for obj in objects:
        for model in (type(obj), *type(obj)._meta.get_parent_list()):
            seeded.setdefault(model._meta.label_lower, obj)
    # Objects the factories made on the way (legal entity, customer, project, task, …).
    for model in admin.site._registry:
        if model._meta.label_lower not in seeded:
            found = model._default_manager.order_by("pk").first()
            if found is not None:
                seeded[model._meta.label_lower] = found
    from reconciliation.models import ReconciliationRun

    seeded["reconciliation.reconciliationrun"] = ReconciliationRun.objects.create(
        trigger=ReconciliationRun.Trigger.ON_DEMAND, started_at=timezone.now()
    )
    return seeded


# -- the surface -----------------------------------------------------------------------------
def _named_patterns(resolver: URLResolver, namespace: str = "") -> Iterator[tuple[str, object]]:
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _named_patterns(entry, inner)
        elif isinstance(entry, URLPattern) and entry.name:
            yield f"{namespace}{entry.name}", entry


ADMIN_MODEL_PAGES = ("changelist", "add", "history", "delete", "change", "simple_history")


def _admin_model_page(name: str) -> tuple[str, str] | None:
    """(app.model, page) for an admin model URL name such as `admin:sync_worker_change`."""
    if not name.startswith("admin:"):
        return None
    for model in admin.site._registry:
        prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}_"
        page = name.removeprefix(prefix)
        if name.startswith(prefix) and page in ADMIN_MODEL_PAGES:
            return model._meta.label_lower, page
    return None


SIMPLE_NAMES = {  # URL name -> its kind, for URLs that take no object
    "home": "home",
    "worker-ping": "worker-ping",
    "runs-act": "runs-act",
    "metrics": "metrics",
    "login": "login",
    "logout": "logout",
    "password_change": "password-change",
    "password_change_done": "password-change-done",
    "admin:index": "admin-index",
    "admin:login": "admin-login",
    "admin:logout": "admin-logout",
    "admin:password_change": "admin-password-change",
    "admin:password_change_done": "admin-password-change-done",
    "admin:jsi18n": "admin-jsi18n",
    "admin:autocomplete": "admin-autocomplete",
}
AREA_NAMES = {area.url_name: area for area in AREAS}
# Pages of an area about one seeded object: URL name -> (kind, how to build its arguments).
EXCEPTION_PAGES = {
    "exceptions-groups": ("exceptions-groups", lambda seeded: []),
    "exceptions-item": ("exceptions-item", lambda seeded: [seeded["pipeline.exceptionitem"].pk]),
    "exceptions-item-act": (
        "exceptions-item-act",
        lambda seeded: [seeded["pipeline.exceptionitem"].pk],
    ),
    "exceptions-group-act": (
        "exceptions-group-act",
        lambda seeded: [seeded["pipeline.exceptionitem"].root_cause],
    ),
    "exceptions-job": ("exceptions-job", lambda seeded: [seeded["portal.exceptiongroupjob"].pk]),
}
# Pages beside the areas' own, about one seeded object: URL name -> (kind, its arguments).
OBJECT_PAGES = {
    "trace": ("trace", lambda seeded: [seeded["pipeline.exceptionitem"].correlation_id]),
    "runs-connection-act": (
        "runs-connection-act",
        lambda seeded: [seeded["pipeline.connection"].pk],
    ),
}
# The Mappings area's pages about the seeded set or version: URL name -> (kind, its arguments).
MAPPING_PAGES = {
    "mappings-version": ("mappings-read", lambda seeded: [seeded["mappings.mappingversion"].pk]),
    "mappings-version-dry-run": (
        "mappings-read",
        lambda seeded: [seeded["mappings.mappingversion"].pk],
    ),
    "mappings-version-export": (
        "mappings-read",
        lambda seeded: [seeded["mappings.mappingversion"].pk],
    ),
    "mappings-diff": ("mappings-read", lambda seeded: [seeded["mappings.mappingset"].slug]),
    "mappings-version-act": (
        "mappings-act",
        lambda seeded: [seeded["mappings.mappingversion"].pk],
    ),
    "mappings-set-act": ("mappings-act", lambda seeded: [seeded["mappings.mappingset"].slug]),
}
# The Ownership area's pages about the seeded rule or change: URL name -> (kind, its arguments).
OWNERSHIP_PAGES = {
    "ownership-entity": (
        "ownership-read",
        lambda seeded: [seeded["mappings.ownershiprule"].entity],
    ),
    "ownership-field": (
        "ownership-read",
        lambda seeded: [
            seeded["mappings.ownershiprule"].entity,
            seeded["mappings.ownershiprule"].field,
        ],
    ),
    "ownership-change": ("ownership-read", lambda seeded: [seeded["mappings.ownershipchange"].pk]),
    "ownership-change-act": (
        "ownership-act",
        lambda seeded: [seeded["mappings.ownershipchange"].pk],
    ),
    "ownership-change-propose": ("ownership-propose", lambda seeded: []),
}
# Read-only pages of an area: URL name -> (area slug, its arguments, query string).
AREA_READ_PAGES = {
    "dashboards-records": ("dashboards", lambda seeded: [], "?cause=unbilled_time"),
    "reconciliation-run": (
        "reconciliation",
        lambda seeded: [seeded["reconciliation.reconciliationrun"].pk],
        "",
    ),
}
# An area's action URLs: URL name -> area slug. The matrix posts no action: an operator gets
# the page again with "unknown action" (302), everyone else 403.
AREA_ACT_PAGES = {"reconciliation-act": "reconciliation"}
WEBHOOK_NAMES = {"sync:billing-webhook": "billing", "sync:psa-webhook": "psa"}


def surface_walk(seeded: dict[str, models.Model]) -> tuple[list[Cell], list[str]]:
    """Every request the matrix makes, and the URL names nobody classified (must be none)."""
    cells: list[Cell] = []
    unknown: list[str] = []
    for name, _pattern in _named_patterns(get_resolver()):
        methods = ("GET", "POST")
        if name in SIMPLE_NAMES:
            cells += [Cell(SIMPLE_NAMES[name], reverse(name), m, name) for m in methods]
        elif name in AREA_NAMES:
            cells += [Cell("area", reverse(name), m, AREA_NAMES[name].slug) for m in methods]
        elif name in AREA_READ_PAGES:
            slug, arguments, query = AREA_READ_PAGES[name]
            url = reverse(name, args=arguments(seeded)) + query
            cells += [Cell("area", url, m, slug) for m in methods]
        elif name in AREA_ACT_PAGES:
            cells += [Cell("area-act", reverse(name), m, AREA_ACT_PAGES[name]) for m in methods]
        elif name in EXCEPTION_PAGES:
            kind, arguments = EXCEPTION_PAGES[name]
            url = reverse(name, args=arguments(seeded))
            queue = seeded["pipeline.exceptionitem"].queue
            cells += [Cell(kind, url, m, queue) for m in methods]
        elif name in OBJECT_PAGES:
            kind, arguments = OBJECT_PAGES[name]
            url = reverse(name, args=arguments(seeded))
            cells += [Cell(kind, url, m, name) for m in methods]
        elif name in MAPPING_PAGES:
            kind, arguments = MAPPING_PAGES[name]
            url = reverse(name, args=arguments(seeded))
            cells += [Cell(kind, url, m, name) for m in methods]
        elif name in OWNERSHIP_PAGES:
            kind, arguments = OWNERSHIP_PAGES[name]
            url = reverse(name, args=arguments(seeded))
            cells += [Cell(kind, url, m, name) for m in methods]
        elif name in WEBHOOK_NAMES:
            url = reverse(name, args=["no-such-connection"])
            cells += [Cell("webhook", url, m, name) for m in methods]
        elif name == "admin:app_list":
            for app in sorted({m._meta.app_label for m in admin.site._registry}):
                url = reverse(name, kwargs={"app_label": app})
                cells += [Cell("admin-app", url, m, app) for m in methods]
        elif name == "admin:view_on_site":
            worker = seeded["sync.worker"]
            ct = ContentType.objects.get_for_model(type(worker))
            url = reverse(name, args=[ct.pk, worker.pk])
            cells += [Cell("admin-view-on-site", url, m, name) for m in methods]
        elif name == "admin:auth_user_password_change":
            url = reverse(name, args=[seeded["auth.user"].pk])
            cells += [Cell("admin-user-password", url, m, "auth.user") for m in methods]
        elif (found := _admin_model_page(name)) is not None:
            label, page = found
            obj = seeded.get(label)
            if obj is None:
                unknown.append(f"{name}: no seeded {label} (add one to surface_seed)")
                continue
            if page in ("changelist", "add"):
                url = reverse(name)
            elif page == "simple_history":
                history = obj.history.order_by("history_id").first()
                url = reverse(name, args=[obj.pk, history.history_id])
            else:
                url = reverse(name, args=[obj.pk])
            cells += [Cell(f"admin-{page}", url, m, label, object_pk=obj.pk) for m in methods]
            if page == "changelist":
                model_admin = admin.site._registry[type(obj)]
                for _func, action, _desc in model_admin._get_base_actions():
                    cells.append(
                        Cell("admin-action", url, "POST", label, action=action, object_pk=obj.pk)
                    )
        else:
            unknown.append(name)
    return cells, unknown


# -- what each user gets ---------------------------------------------------------------------
def _perms(user: str) -> set[str]:
    return set() if user == ANONYMOUS else set(role_permissions(user))


def _model_allows(user: str, label: str, what: str) -> bool:
    app, model = label.split(".")
    if ADMIN_POLICY.get(label, {}).get(what) is False:
        return False
    return f"{app}.{what}_{model}" in _perms(user)


def _action_permissions(label: str, action: str) -> tuple[str, ...]:
    model = next(m for m in admin.site._registry if m._meta.label_lower == label)
    funcs = {name: func for func, name, _ in admin.site._registry[model]._get_base_actions()}
    return tuple(getattr(funcs[action], "allowed_permissions", ()))


def expected(user: str, cell: Cell) -> set[object]:
    """What `user` must get for `cell`: a set of statuses, LOGIN, or RAN/REFUSED (actions)."""
    perms = _perms(user)
    signed_in = user != ANONYMOUS
    staff = user in STAFF_ROLES
    get = cell.method == "GET"
    kind = cell.kind
    if kind == "webhook":  # signature-checked, never a login
        return {405} if get else {401}
    if kind == "metrics":
        return {200} if "portal.area_runs" in perms else {403}
    if kind == "login":
        return {200}
    if kind == "admin-login":
        return {302} if staff and get else {200}
    if kind == "logout":  # GET: anonymous is sent to sign in first, then 405
        return {405} if get and signed_in else {302}
    if kind == "admin-logout":  # GET: only staff pass the admin's own check to reach the 405
        return {405} if get and staff else {302}
    if kind.startswith("admin"):
        if not staff:
            return {LOGIN}
        return _admin_expected(user, cell, perms)
    if not signed_in:
        return {LOGIN}
    if kind == "home":
        return {200} if get else {405}
    if kind == "area":
        area = next(a for a in AREAS if a.slug == cell.label)
        if not get:
            return {405}
        return {200} if user in area.roles else {403}
    if kind == "area-act":
        area = next(a for a in AREAS if a.slug == cell.label)
        if get:
            return {405}
        return {302} if user in area.operators and area.act_permission in perms else {403}
    if kind.startswith("exceptions-"):
        return _exceptions_expected(user, cell, perms)
    if kind == "trace":
        return _trace_expected(user, cell)
    if kind.startswith("runs-"):
        return _runs_expected(user, cell, perms)
    if kind.startswith("mappings-"):
        return _mappings_expected(user, cell, perms)
    if kind.startswith("ownership-"):
        return _ownership_expected(user, cell, perms)
    if kind == "worker-ping":
        runs = next(a for a in AREAS if a.slug == "runs")
        if get:
            return {405}
        return {302} if user in runs.operators else {403}
    if kind == "password-change":
        return {200}
    if kind == "password-change-done":
        return {200} if get else {405}
    raise AssertionError(f"no rule for {kind}")


def _exceptions_expected(user: str, cell: Cell, perms: set[str]) -> set[object]:
    """The Exceptions area: its roles read, its operators act, each in its own queues
    (`cell.label` is the seeded item's queue); an item of another queue does not exist (404)."""
    get = cell.method == "GET"
    area = next(a for a in AREAS if a.slug == "exceptions")
    opens = user in area.roles
    sees_queue = cell.label in QUEUES_BY_ROLE.get(user, ())
    acts = user in area.operators and "pipeline.change_exceptionitem" in perms
    if cell.kind in ("exceptions-groups", "exceptions-item", "exceptions-job"):
        if not get:
            return {405}
        if not opens:
            return {403}
        return {200} if cell.kind != "exceptions-item" or sees_queue else {404}
    if get:
        return {405}
    if not (opens and acts):
        return {403}
    if cell.kind == "exceptions-item-act" and not sees_queue:
        return {404}
    return {302}  # the page again, with what happened (here: an unknown action) as a message


def _trace_expected(user: str, cell: Cell) -> set[object]:
    """A trace is read by whoever opens the Exceptions or the Runs area; nobody posts to it."""
    if cell.method != "GET":
        return {405}
    readers = {role for a in AREAS if a.slug in ("exceptions", "runs") for role in a.roles}
    return {200} if user in readers else {403}


def _runs_expected(user: str, cell: Cell, perms: set[str]) -> set[object]:
    """The Runs area's actions: its operators act (`portal.act_runs`), everyone else gets 403.
    The matrix posts no action, so an operator gets the page again with "unknown action"."""
    if cell.method == "GET":
        return {405}
    runs = next(a for a in AREAS if a.slug == "runs")
    return {302} if user in runs.operators and runs.act_permission in perms else {403}


def _mappings_expected(user: str, cell: Cell, perms: set[str]) -> set[object]:
    """The Mappings area: its roles read every page (the CSV export too); its operators, holding
    the mapping models' add/change permissions, act. The matrix posts no action, so an
    operator gets the page again with "unknown action"; everyone else gets 403."""
    area = next(a for a in AREAS if a.slug == "mappings")
    get = cell.method == "GET"
    if cell.kind == "mappings-read":
        if not get:
            return {405}
        return {200} if user in area.roles else {403}
    if get:
        return {405}
    edits = {
        area.act_permission,
        "mappings.add_mappingversion",
        "mappings.change_mappingversion",
        "mappings.change_mappingentry",
    }
    return {302} if user in area.operators and edits <= perms else {403}


def _ownership_expected(user: str, cell: Cell, perms: set[str]) -> set[object]:
    """The Ownership area: its roles read every page; its operators, holding the change model's
    add/change permissions, act. The matrix posts no action: an operator gets the change page
    again with "unknown action" (302), or the overview with the proposal's errors (200);
    everyone else gets 403."""
    area = next(a for a in AREAS if a.slug == "ownership")
    get = cell.method == "GET"
    if cell.kind == "ownership-read":
        if not get:
            return {405}
        return {200} if user in area.roles else {403}
    if get:
        return {405}
    edits = {
        area.act_permission,
        "mappings.add_ownershipchange",
        "mappings.change_ownershipchange",
    }
    if user not in area.operators or not edits <= perms:
        return {403}
    return {200} if cell.kind == "ownership-propose" else {302}


def _admin_expected(user: str, cell: Cell, perms: set[str]) -> set[object]:
    kind, label, get = cell.kind, cell.label, cell.method == "GET"
    if kind in ("admin-index", "admin-password-change"):
        return {200}
    if kind in ("admin-password-change-done", "admin-jsi18n"):
        return {200} if get else {405}
    if kind == "admin-autocomplete":
        return {403} if get else {405}  # it serves autocomplete fields only: there are none
    if kind == "admin-view-on-site":
        return {404}  # no model has a public page to send anyone to
    if kind == "admin-app":
        registered = {m._meta.label_lower for m in admin.site._registry}
        holds = any(p.split(".")[0] == label and _perm_model(p) in registered for p in perms)
        return {200} if holds else {404}
    if kind == "admin-user-password":
        return {200} if _model_allows(user, label, "change") else {403}
    view = _model_allows(user, label, "view") or _model_allows(user, label, "change")
    if kind == "admin-action":
        if not view:
            return {403}
        needed = _action_permissions(label, cell.action)
        allowed = all(_model_allows(user, label, p) for p in needed)
        return {RAN} if allowed else {REFUSED}
    if kind in ("admin-changelist", "admin-history"):
        return {200} if view else {403}
    if kind == "admin-simple_history":
        return {200} if get and view else {403}
    if kind == "admin-change":
        if get:
            return {200} if view else {403}
        return {200, 302} if _model_allows(user, label, "change") else {403}
    if kind == "admin-add":
        return {200, 302} if _model_allows(user, label, "add") else {403}
    if kind == "admin-delete":
        return {200} if _model_allows(user, label, "delete") else {403}
    raise AssertionError(f"no rule for {kind}")


def _perm_model(permission: str) -> str:
    app, codename = permission.split(".")
    return f"{app}.{codename.split('_', 1)[1]}" if "_" in codename else ""
