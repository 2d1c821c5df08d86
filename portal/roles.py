"""Roles: the groups people work in, the portal areas each sees, the model permissions each holds.

The groups are created by a data migration (portal/migrations/0002_roles.py); their permissions
are brought in line after every `migrate` (post_migrate), so a new model's permissions reach
the roles without another data migration. This table is the one place to change a role.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)

FINANCE = "finance"
PMO = "pmo"
MAPPING_ADMIN = "mapping_admin"
INTEGRATION_OPS = "integration_ops"
EXECUTIVE = "executive"
AUDITOR = "auditor"
ROLES = (FINANCE, PMO, MAPPING_ADMIN, INTEGRATION_OPS, EXECUTIVE, AUDITOR)
# Roles whose people work in the Django admin too (staff): connections, mappings.
STAFF_ROLES = (MAPPING_ADMIN, INTEGRATION_OPS)


@dataclass(frozen=True)
class Area:
    """A portal area: `roles` open it (read), `operators` act in it (every POST it serves).

    The auditor reads everywhere and acts nowhere."""

    slug: str
    title: str
    url_name: str
    summary: str
    roles: tuple[str, ...]
    operators: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not set(self.operators) <= set(self.roles) or AUDITOR in self.operators:
            raise ValueError(f"area {self.slug}: operators must open it, and never the auditor")

    @property
    def permission(self) -> str:
        return f"portal.area_{self.slug}"

    @property
    def act_permission(self) -> str:
        return f"portal.act_{self.slug}"


AREAS: tuple[Area, ...] = (
    Area(
        "exceptions",
        "Exceptions",
        "area-exceptions",
        "Failed postings parked by queue, with money at risk, owners and replay.",
        (FINANCE, PMO, INTEGRATION_OPS, AUDITOR),
        (FINANCE, PMO, INTEGRATION_OPS),
    ),
    Area(
        "mappings",
        "Mappings",
        "area-mappings",
        "Versioned mappings: legal entities, service items, tax codes, templates, rate cards.",
        # Finance reads them: a parked posting's fix is often a mapping row, and the groups
        # page links finance to it (a mapping admin then edits; decision 100).
        (MAPPING_ADMIN, FINANCE, AUDITOR),
        (MAPPING_ADMIN,),
    ),
    Area(
        "ownership",
        "Ownership",
        "area-ownership",
        "Which system owns which field, effective-dated.",
        (MAPPING_ADMIN, FINANCE, AUDITOR),
        (MAPPING_ADMIN,),
    ),
    Area(
        "runs",
        "Runs",
        "area-runs",
        "Sync runs, connector health, workers, retries and dead letters.",
        (INTEGRATION_OPS, AUDITOR),
        (INTEGRATION_OPS,),
    ),
    Area(
        "reconciliation",
        "Reconciliation",
        "area-reconciliation",
        "Source against target after every cycle; revenue leakage by cause.",
        (FINANCE, EXECUTIVE, AUDITOR),
        (FINANCE,),
    ),
    Area(
        "dashboards",
        "Dashboards",
        "area-dashboards",
        "KPIs: revenue leakage, unbilled time, cash, DSO, backlogs, queues and vendor APIs.",
        (EXECUTIVE, FINANCE, PMO, INTEGRATION_OPS, AUDITOR),
    ),
)
AREA_BY_SLUG = {area.slug: area for area in AREAS}

# Canonical models by what they are, as `app_label.model_name` (lower case).
REFERENCE_DATA = (
    "sync.legalentity",
    "sync.currency",
    "sync.fxrate",
    "sync.taxcode",
    "sync.costcentre",
    "sync.ratecard",
    "sync.ratecardline",
)
COMMERCIAL = ("sync.customer", "sync.opportunity", "sync.contract")
DELIVERY = (
    "sync.project",
    "sync.task",
    "sync.worker",
    "sync.roleplaceholder",
    "sync.assignment",
    "sync.milestone",
    "sync.usagerecord",
)
TRANSACTIONS = ("sync.timeentry", "sync.expense")
BILLING = (
    "sync.invoicecandidate",
    "sync.invoice",
    "sync.invoiceline",
    "sync.payment",
    "sync.revenueentry",
)
LINKS = ("sync.externalref",)
ALL_CANONICAL = REFERENCE_DATA + COMMERCIAL + DELIVERY + TRANSACTIONS + BILLING + LINKS
# The pipeline's own records.
EXCEPTIONS = ("pipeline.exceptionitem", "pipeline.exceptioncomment")
PLUMBING = (
    "pipeline.connection",
    "pipeline.inboxitem",
    "pipeline.delivery",
    "pipeline.syncrun",
    "pipeline.targetrecord",
)
MAPPINGS = (
    "mappings.mappingset",
    "mappings.mappingversion",
    "mappings.mappingentry",
    "mappings.ownershiprule",
    "mappings.ownershipchange",
)


# Which exception queues each role works (or, for the auditor, reads). Finance owns the money
# queues; PMO project set-up; integration ops and the auditor see every queue.
ALL_QUEUES = (
    "customer_master",
    "project_setup",
    "time_and_expense",
    "billing",
    "tax",
    "mapping",
    "integration_ops",
)
FINANCE_QUEUES = ("time_and_expense", "billing", "tax")
QUEUES_BY_ROLE: dict[str, tuple[str, ...]] = {
    FINANCE: ("customer_master", "project_setup", *FINANCE_QUEUES, "mapping"),
    PMO: ("project_setup",),
    INTEGRATION_OPS: ALL_QUEUES,
    AUDITOR: ALL_QUEUES,
}


def queues_for(user) -> tuple[str, ...]:
    """The exception queues `user` may open, in the order of ALL_QUEUES (superuser: all)."""
    if user.is_superuser:
        return ALL_QUEUES
    held = {
        q for g in user.groups.values_list("name", flat=True) for q in QUEUES_BY_ROLE.get(g, ())
    }
    return tuple(q for q in ALL_QUEUES if q in held)


def _view(models: tuple[str, ...]) -> list[str]:
    return [f"{m.split('.')[0]}.view_{m.split('.')[1]}" for m in models]


def _edit(models: tuple[str, ...]) -> list[str]:
    perms = []
    for m in models:
        app, name = m.split(".")
        perms += [f"{app}.add_{name}", f"{app}.change_{name}"]
    return perms


MODEL_PERMISSIONS: dict[str, list[str]] = {
    # Finance works time, expense, invoice and tax failures and needs labour cost to do it.
    FINANCE: [*_view(ALL_CANONICAL), "sync.view_cost_rate", *_view(EXCEPTIONS), *_edit(EXCEPTIONS)],
    # PMO sets up projects and staffing; sees delivery and commercial records, not cost rates.
    PMO: [
        *_view((*COMMERCIAL, *DELIVERY, *TRANSACTIONS, "sync.legalentity", "sync.currency")),
        *_view(EXCEPTIONS),
        *_edit(EXCEPTIONS),
    ],
    # Mapping admins keep reference data right.
    MAPPING_ADMIN: [
        *_view(REFERENCE_DATA + COMMERCIAL + DELIVERY + MAPPINGS),
        *_edit(REFERENCE_DATA + MAPPINGS),
        "mappings.delete_mappingversion",
        "mappings.publish_mappingversion",
    ],
    # Integration ops run the plumbing: every record and its cross-references, read-only here.
    INTEGRATION_OPS: [
        *_view((*ALL_CANONICAL, *EXCEPTIONS, *PLUMBING)),
        *_edit(EXCEPTIONS),
        "pipeline.change_connection",
        "pipeline.add_connection",
    ],
    # Executives see figures, composed on dashboards; record-level reads of commercial data.
    EXECUTIVE: _view((*COMMERCIAL, "sync.project", "sync.invoice", "sync.payment")),
    # Auditors read everything and change nothing; cost rates stay masked for them.
    AUDITOR: _view((*ALL_CANONICAL, *EXCEPTIONS, *PLUMBING, *MAPPINGS)),
}


def role_permissions(role: str) -> list[str]:
    """Every permission codename (`app.codename`) the role holds: areas plus model permissions."""
    areas = [area.permission for area in AREAS if role in area.roles]
    acts = [area.act_permission for area in AREAS if role in area.operators]
    return [*areas, *acts, *MODEL_PERMISSIONS[role]]


def roles_sync(*, using: str = "default") -> None:
    """Give each role group exactly the permissions in this module. Idempotent.

    Permissions whose model does not exist yet are skipped with a warning (they arrive with the
    migration that adds the model, and the next `migrate` assigns them).
    """
    from django.contrib.auth.models import Group, Permission

    for role in ROLES:
        group, _ = Group.objects.using(using).get_or_create(name=role)
        wanted = role_permissions(role)
        found = {
            f"{p.content_type.app_label}.{p.codename}": p
            for p in Permission.objects.using(using)
            .select_related("content_type")
            .filter(codename__in=[w.split(".", 1)[1] for w in wanted])
        }
        missing = [w for w in wanted if w not in found]
        if missing:
            logger.warning("role %s: permissions not defined yet: %s", role, ", ".join(missing))
        group.permissions.set([found[w] for w in wanted if w in found])


def roles_sync_after_migrate(sender, using: str = "default", **kwargs) -> None:
    if sender.label != "portal" or using != "default":
        return
    roles_sync(using=using)
