"""Delivering the work: projects and their WBS, workers, staffing, milestones and usage."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

from sync.encryption import EncryptedDecimalField
from sync.models.base import CanonicalModel, lifecycle_status_field
from sync.models.commercial import Contract, Customer
from sync.models.fields import MoneyField, MoneyProperty, QuantityField, RateField
from sync.models.reference import CostCentre, Currency, LegalEntity, TaxCode


class Project(CanonicalModel):
    """A project shell provisioned from a won deal: legal entity, currency, tax nexus and WBS.

    `contract` is optional for internal and pre-sales projects; `tax_code` is set while the
    shell is provisioned.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PROVISIONING = "provisioning", "Provisioning"
        OPEN = "open", "Open"
        ON_HOLD = "on_hold", "On hold"
        CLOSED = "closed", "Closed"

    code = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="projects")
    contract = models.ForeignKey(
        Contract, on_delete=models.PROTECT, null=True, blank=True, related_name="projects"
    )
    legal_entity = models.ForeignKey(LegalEntity, on_delete=models.PROTECT, related_name="projects")
    currency = models.ForeignKey(Currency, on_delete=models.PROTECT, related_name="+")
    tax_code = models.ForeignKey(
        TaxCode, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    status = lifecycle_status_field(Status, default=Status.DRAFT)

    # Provisioning that fails in a target goes back to draft. A closed project may be reopened
    # for late time (finance does this before period close); the history row says who did.
    TRANSITIONS = {
        Status.DRAFT: frozenset({Status.PROVISIONING, Status.CLOSED}),
        Status.PROVISIONING: frozenset({Status.OPEN, Status.DRAFT}),
        Status.OPEN: frozenset({Status.ON_HOLD, Status.CLOSED}),
        Status.ON_HOLD: frozenset({Status.OPEN, Status.CLOSED}),
        Status.CLOSED: frozenset({Status.OPEN}),
    }

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Task(CanonicalModel):
    """A WBS element of a project; time is booked only to tasks that allow it."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tasks")
    parent = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="children"
    )
    code = models.CharField(max_length=40)
    name = models.CharField(max_length=200)
    allows_time = models.BooleanField(default=True)
    status = lifecycle_status_field(Status, default=Status.OPEN)

    TRANSITIONS = {
        Status.OPEN: frozenset({Status.CLOSED}),
        Status.CLOSED: frozenset({Status.OPEN}),
    }

    class Meta:
        verbose_name = "WBS task"
        ordering = ["project", "code"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "code"], name="task_unique_code_per_project"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    def clean(self) -> None:
        """A parent task belongs to the same project and is not the task itself or below it."""
        super().clean()
        ancestor, seen = self.parent, set()
        while ancestor is not None:
            if ancestor.project_id != self.project_id:
                raise ValidationError({"parent": "The parent task is in another project."})
            if (self.pk is not None and ancestor.pk == self.pk) or ancestor.pk in seen:
                raise ValidationError({"parent": "A task cannot be its own ancestor."})
            seen.add(ancestor.pk)
            ancestor = ancestor.parent


class Worker(CanonicalModel):
    """A person from the HR feed. The cost rate is sensitive: encrypted at rest and in history,
    readable in the portal only with `sync.view_cost_rate`."""

    class EmploymentStatus(models.TextChoices):
        ACTIVE = "active", "Active"
        ON_LEAVE = "on_leave", "On leave"
        TERMINATED = "terminated", "Terminated"

    employee_number = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    legal_entity = models.ForeignKey(LegalEntity, on_delete=models.PROTECT, related_name="workers")
    cost_centre = models.ForeignKey(
        CostCentre, on_delete=models.PROTECT, null=True, blank=True, related_name="workers"
    )
    manager = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="reports"
    )
    employment_status = lifecycle_status_field(EmploymentStatus, default=EmploymentStatus.ACTIVE)
    cost_rate = EncryptedDecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    cost_rate_currency = models.ForeignKey(
        Currency, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    cost_rate_money = MoneyProperty(amount="cost_rate", currency="cost_rate_currency")

    STATUS_FIELD = "employment_status"  # HR's word; HR owns it
    # A rehire keeps the employee number, so terminated may become active again.
    TRANSITIONS = {
        EmploymentStatus.ACTIVE: frozenset(
            {EmploymentStatus.ON_LEAVE, EmploymentStatus.TERMINATED}
        ),
        EmploymentStatus.ON_LEAVE: frozenset(
            {EmploymentStatus.ACTIVE, EmploymentStatus.TERMINATED}
        ),
        EmploymentStatus.TERMINATED: frozenset({EmploymentStatus.ACTIVE}),
    }

    class Meta:
        ordering = ["name"]
        permissions = [("view_cost_rate", "Can see worker cost rates")]

    def __str__(self) -> str:
        return f"{self.employee_number} {self.name}"


class RolePlaceholder(CanonicalModel):
    """Demand for a role not yet filled by a named worker; never reaches labour costing."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        FILLED = "filled", "Filled"
        CANCELLED = "cancelled", "Cancelled"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="role_placeholders")
    role_name = models.CharField(max_length=100)
    status = lifecycle_status_field(Status, default=Status.OPEN)

    TRANSITIONS = {
        Status.OPEN: frozenset({Status.FILLED, Status.CANCELLED}),
        Status.FILLED: frozenset({Status.OPEN}),  # the named worker left the project
        Status.CANCELLED: frozenset(),
    }

    class Meta:
        ordering = ["project", "role_name"]

    def __str__(self) -> str:
        return f"{self.role_name} on {self.project_id}"


class Assignment(CanonicalModel):
    """Staffing of a project by exactly one of: a named worker or a role placeholder."""

    class Status(models.TextChoices):
        TENTATIVE = "tentative", "Tentative"
        CONFIRMED = "confirmed", "Confirmed"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="assignments")
    task = models.ForeignKey(
        Task, on_delete=models.PROTECT, null=True, blank=True, related_name="assignments"
    )
    worker = models.ForeignKey(
        Worker, on_delete=models.PROTECT, null=True, blank=True, related_name="assignments"
    )
    role_placeholder = models.ForeignKey(
        RolePlaceholder, on_delete=models.PROTECT, null=True, blank=True, related_name="assignments"
    )
    start_date = models.DateField()
    end_date = models.DateField()
    hours_per_week = QuantityField(max_digits=5, decimal_places=2)
    status = lifecycle_status_field(Status, default=Status.TENTATIVE)

    TRANSITIONS = {
        Status.TENTATIVE: frozenset({Status.CONFIRMED, Status.CANCELLED}),
        Status.CONFIRMED: frozenset({Status.COMPLETED, Status.CANCELLED}),
        Status.COMPLETED: frozenset(),
        Status.CANCELLED: frozenset(),
    }

    class Meta:
        ordering = ["project", "start_date"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(worker__isnull=False) & Q(role_placeholder__isnull=True))
                | (Q(worker__isnull=True) & Q(role_placeholder__isnull=False)),
                name="assignment_worker_xor_placeholder",
            ),
            models.CheckConstraint(
                condition=Q(end_date__gte=F("start_date")), name="assignment_end_after_start"
            ),
            models.CheckConstraint(
                condition=Q(hours_per_week__gte=0), name="assignment_hours_not_negative"
            ),
        ]

    def __str__(self) -> str:
        who = (
            f"worker {self.worker_id}"
            if self.worker_id
            else f"placeholder {self.role_placeholder_id}"
        )
        return f"{who} on {self.project_id} {self.start_date}..{self.end_date}"


class Milestone(CanonicalModel):
    """A fixed-fee billing event; completing it makes an invoice candidate."""

    class Status(models.TextChoices):
        PLANNED = "planned", "Planned"
        COMPLETED = "completed", "Completed"
        INVOICED = "invoiced", "Invoiced"
        CANCELLED = "cancelled", "Cancelled"

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="milestones")
    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="milestones")
    name = models.CharField(max_length=200)
    amount = MoneyField()
    currency = models.ForeignKey(Currency, on_delete=models.PROTECT, related_name="+")
    due_date = models.DateField()
    status = lifecycle_status_field(Status, default=Status.PLANNED)

    money = MoneyProperty(amount="amount", currency="currency")

    TRANSITIONS = {
        Status.PLANNED: frozenset({Status.COMPLETED, Status.CANCELLED}),
        Status.COMPLETED: frozenset({Status.INVOICED, Status.PLANNED}),  # acceptance withdrawn
        Status.INVOICED: frozenset(),
        Status.CANCELLED: frozenset(),
    }

    class Meta:
        ordering = ["due_date"]

    def __str__(self) -> str:
        return self.name


class UsageRecord(CanonicalModel):
    """Metered usage on a usage/recurring contract for one period."""

    class Status(models.TextChoices):
        RECORDED = "recorded", "Recorded"
        RATED = "rated", "Rated"
        INVOICED = "invoiced", "Invoiced"
        VOID = "void", "Void"

    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="usage_records")
    quantity = QuantityField(max_digits=18, decimal_places=4)
    unit = models.CharField(max_length=30)
    unit_price = RateField()
    currency = models.ForeignKey(Currency, on_delete=models.PROTECT, related_name="+")
    period_date = models.DateField()
    status = lifecycle_status_field(Status, default=Status.RECORDED)

    unit_price_money = MoneyProperty(amount="unit_price", currency="currency")

    TRANSITIONS = {
        Status.RECORDED: frozenset({Status.RATED, Status.VOID}),
        Status.RATED: frozenset({Status.INVOICED, Status.VOID}),
        Status.INVOICED: frozenset(),
        Status.VOID: frozenset(),
    }

    class Meta:
        ordering = ["-period_date"]

    def __str__(self) -> str:
        return f"{self.quantity} {self.unit} on {self.period_date}"
