"""The NetSuite record types the sandbox knows, with their REST field names and types.

Record storage (`SandboxRecord`, system "netsuite", object_type = the REST record type name,
e.g. "customer", "job", "timeBill"):
- `data` holds the body fields by their REST names (camelCase); a reference (`subsidiary`,
  `customer`…) is stored as the referenced record's id string ("42"), a select field
  (`entityStatus`, `approvalStatus`) as its option id string, a sublist (`item`, `expense`,
  `apply`) as a list of line dicts stored the same way;
- `id` is the record's internal id, `external_id` its `externalId`, `created_at` and
  `updated_at` are `dateCreated` and `lastModifiedDate`;
- `parent_id` and `status` are promoted per type (see `RecordSpec.parent_field` and
  `status_of`).

Internal ids are unique across all types (one table), as a connector must not rely on that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

SYSTEM = "netsuite"
ASYNC_JOB_TYPE = "asyncJob"  # internal object type of `Prefer: respond-async` jobs

# Field kinds: string, text, boolean, date, number, integer, ref, select, sublist.


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: str
    required: bool = False
    writable: bool = True
    targets: tuple[str, ...] = ()  # record types a `ref` may point at
    options: tuple[tuple[str, str], ...] = ()  # (id, refName) of a `select`
    line: tuple[FieldSpec, ...] = ()  # fields of a `sublist` line
    length: int = 300

    @property
    def column(self) -> str:
        """The SuiteQL column name: NetSuite lower-cases field ids in SuiteQL."""
        return self.name.lower()

    def option_name(self, option_id: str) -> str | None:
        return dict(self.options).get(option_id)


@dataclass(frozen=True)
class RecordSpec:
    name: str  # REST record type, e.g. "timeBill"
    fields: tuple[FieldSpec, ...]
    parent_field: str = ""  # reference promoted to the indexed parent_id column
    status_field: str = ""  # field promoted to the indexed status column
    name_field: str = ""  # what a reference's refName shows
    transaction_type: str = ""  # SuiteQL `transaction.type` (CustInvc…), if a transaction
    in_closed_period_check: bool = False

    def field(self, name: str) -> FieldSpec | None:
        return self._by_name.get(name)

    def column(self, name: str) -> FieldSpec | None:
        """The field by its SuiteQL column name (case-insensitive)."""
        return self._by_column.get(name.lower())

    # Built once per spec (specs are module constants), not once per field looked up.
    @cached_property
    def _by_name(self) -> dict[str, FieldSpec]:
        return {spec.name: spec for spec in self.fields}

    @cached_property
    def _by_column(self) -> dict[str, FieldSpec]:
        return {spec.column: spec for spec in self.fields}


def _f(name: str, kind: str = "string", **kwargs) -> FieldSpec:
    return FieldSpec(name, kind, **kwargs)


def _ref(name: str, *targets: str, required: bool = False) -> FieldSpec:
    return FieldSpec(name, "ref", required=required, targets=targets)


# Option ids of NetSuite's standard lists (the ids connectors see; refName is the label).
JOB_STATUSES = (
    ("1", "Closed"),
    ("2", "In Progress"),
    ("3", "Not Awarded"),
    ("4", "Pending"),
    ("5", "Awarded"),
)
JOB_STATUS_CLOSED = "1"
TASK_STATUSES = (
    ("NOTSTART", "Not Started"),
    ("PROGRESS", "In Progress"),
    ("COMPLETE", "Completed"),
)
APPROVAL_STATUSES = (("1", "Pending Approval"), ("2", "Approved"), ("3", "Rejected"))
INVOICE_STATUSES = (("A", "Open"), ("B", "Paid In Full"), ("V", "Voided"))

SYSTEM_FIELDS = (
    _f("id", "integer", writable=False),
    _f("externalId"),
    _f("dateCreated", "datetime", writable=False),
    _f("lastModifiedDate", "datetime", writable=False),
)

CURRENCY = RecordSpec(
    name="currency",
    name_field="symbol",
    fields=(
        *SYSTEM_FIELDS,
        _f("name", required=True),
        _f("symbol", required=True, length=3),
        _f("isInactive", "boolean"),
    ),
)
SUBSIDIARY = RecordSpec(
    name="subsidiary",
    name_field="name",
    fields=(
        *SYSTEM_FIELDS,
        _f("name", required=True),
        _ref("currency", "currency", required=True),
        _f("country", length=2),
        _ref("parent", "subsidiary"),
        _f("isInactive", "boolean"),
    ),
)
DEPARTMENT = RecordSpec(
    name="department",
    name_field="name",
    fields=(
        *SYSTEM_FIELDS,
        _f("name", required=True),
        _ref("subsidiary", "subsidiary"),
        _f("isInactive", "boolean"),
    ),
)
ACCOUNTING_PERIOD = RecordSpec(
    name="accountingPeriod",
    name_field="periodName",
    fields=(
        *SYSTEM_FIELDS,
        _f("periodName", required=True),
        _f("startDate", "date", required=True),
        _f("endDate", "date", required=True),
        _f("closed", "boolean"),
        # OneWorld closes periods per subsidiary; a period without one applies to all.
        _ref("subsidiary", "subsidiary"),
        _f("isQuarter", "boolean"),
        _f("isYear", "boolean"),
        _f("isInactive", "boolean"),
    ),
)
CUSTOMER = RecordSpec(
    name="customer",
    name_field="companyName",
    status_field="isInactive",
    fields=(
        *SYSTEM_FIELDS,
        _f("companyName", required=True),
        _f("entityId"),
        _f("email"),
        _f("phone", length=32),
        _ref("subsidiary", "subsidiary", required=True),
        _ref("currency", "currency"),
        _f("isInactive", "boolean"),
        _f("vatRegNumber", length=40),
        _f("creditLimit", "number"),
        _f("comments", "text"),
    ),
)
EMPLOYEE = RecordSpec(
    name="employee",
    name_field="entityId",
    status_field="isInactive",
    fields=(
        *SYSTEM_FIELDS,
        _f("firstName", required=True),
        _f("lastName", required=True),
        _f("entityId"),
        _f("email"),
        _ref("subsidiary", "subsidiary", required=True),
        _ref("department", "department"),
        _ref("supervisor", "employee"),
        _f("laborCost", "number"),
        _f("isInactive", "boolean"),
        _f("title"),
    ),
)
JOB = RecordSpec(
    name="job",
    name_field="companyName",
    parent_field="parent",
    status_field="entityStatus",
    fields=(
        *SYSTEM_FIELDS,
        _f("companyName", required=True),
        _f("entityId"),
        _ref("parent", "customer", required=True),
        _ref("subsidiary", "subsidiary"),
        _ref("currency", "currency"),
        _f("entityStatus", "select", options=JOB_STATUSES),
        _f("startDate", "date"),
        _f("projectedEndDate", "date"),
        _ref("projectManager", "employee"),
        _f("isInactive", "boolean"),
    ),
)
PROJECT_TASK = RecordSpec(
    name="projectTask",
    name_field="title",
    parent_field="company",
    status_field="status",
    fields=(
        *SYSTEM_FIELDS,
        _f("title", required=True),
        _ref("company", "job", required=True),
        _ref("parent", "projectTask"),
        _f("status", "select", options=TASK_STATUSES),
        _f("plannedWork", "number"),
        _f("startDate", "date"),
        _f("endDate", "date"),
    ),
)
TIME_BILL = RecordSpec(
    name="timeBill",
    parent_field="customer",
    status_field="approvalStatus",
    in_closed_period_check=True,
    fields=(
        *SYSTEM_FIELDS,
        _ref("employee", "employee", required=True),
        # NetSuite's "Customer:Project" field: a project (job) or a customer.
        _ref("customer", "job", "customer"),
        _ref("caseTaskEvent", "projectTask"),
        _f("tranDate", "date", required=True),
        _f("hours", "number", required=True),
        _f("rate", "number"),
        _f("isBillable", "boolean"),
        _ref("department", "department"),
        _ref("subsidiary", "subsidiary"),
        _f("memo", "text"),
        _f("approvalStatus", "select", options=APPROVAL_STATUSES),
    ),
)
EXPENSE_LINE = (
    _f("line", "integer", writable=False),
    _f("expenseDate", "date"),
    _f("category"),
    _f("amount", "number", required=True),
    _ref("customer", "job", "customer"),
    _ref("department", "department"),
    _f("isBillable", "boolean"),
    _f("memo", "text"),
)
EXPENSE_REPORT = RecordSpec(
    name="expenseReport",
    parent_field="entity",
    status_field="approvalStatus",
    transaction_type="ExpRept",
    in_closed_period_check=True,
    fields=(
        *SYSTEM_FIELDS,
        _f("tranId", writable=False),
        _ref("entity", "employee", required=True),
        _f("tranDate", "date", required=True),
        _ref("subsidiary", "subsidiary"),
        _ref("currency", "currency"),
        _ref("department", "department"),
        _f("memo", "text"),
        _f("approvalStatus", "select", options=APPROVAL_STATUSES),
        _f("total", "number", writable=False),
        _f("expense", "sublist", line=EXPENSE_LINE),
    ),
)
INVOICE_LINE = (
    _f("line", "integer", writable=False),
    _f("item"),
    _f("description", "text"),
    _f("quantity", "number"),
    _f("rate", "number"),
    _f("amount", "number", required=True),
    _ref("department", "department"),
)
INVOICE = RecordSpec(
    name="invoice",
    parent_field="entity",
    status_field="status",
    transaction_type="CustInvc",
    in_closed_period_check=True,
    fields=(
        *SYSTEM_FIELDS,
        _f("tranId", writable=False),
        _ref("entity", "customer", required=True),
        _ref("job", "job"),
        _f("tranDate", "date", required=True),
        _f("dueDate", "date"),
        _ref("subsidiary", "subsidiary"),
        _ref("currency", "currency"),
        _ref("department", "department"),
        _f("memo", "text"),
        _f("otherRefNum", length=45),
        _f("status", "select", writable=False, options=INVOICE_STATUSES),
        _f("total", "number", writable=False),
        _f("amountRemaining", "number", writable=False),
        _f("item", "sublist", line=INVOICE_LINE),
    ),
)
APPLY_LINE = (
    _ref("doc", "invoice", required=True),
    _f("apply", "boolean"),
    _f("amount", "number", required=True),
)
CUSTOMER_PAYMENT = RecordSpec(
    name="customerPayment",
    parent_field="customer",
    transaction_type="CustPymt",
    in_closed_period_check=True,
    fields=(
        *SYSTEM_FIELDS,
        _f("tranId", writable=False),
        _ref("customer", "customer", required=True),
        _f("tranDate", "date", required=True),
        _f("payment", "number", required=True),
        _ref("subsidiary", "subsidiary"),
        _ref("currency", "currency"),
        _f("memo", "text"),
        _f("apply", "sublist", line=APPLY_LINE),
    ),
)

RECORDS: dict[str, RecordSpec] = {
    spec.name: spec
    for spec in (
        CURRENCY,
        SUBSIDIARY,
        DEPARTMENT,
        ACCOUNTING_PERIOD,
        CUSTOMER,
        EMPLOYEE,
        JOB,
        PROJECT_TASK,
        TIME_BILL,
        EXPENSE_REPORT,
        INVOICE,
        CUSTOMER_PAYMENT,
    )
}
TRANSACTION_TYPES = {
    spec.transaction_type: spec for spec in RECORDS.values() if spec.transaction_type
}


def record_spec(name: str) -> RecordSpec | None:
    """The record type by REST name; NetSuite's record service ignores the case of the type."""
    return RECORDS.get(name) or next(
        (spec for key, spec in RECORDS.items() if key.lower() == name.lower()), None
    )


def status_of(spec: RecordSpec, data: dict) -> str:
    """The value promoted to the `status` column: the status field, or "inactive"/"active"."""
    if not spec.status_field:
        return ""
    value = data.get(spec.status_field)
    if spec.status_field == "isInactive":
        return "inactive" if value else "active"
    return "" if value is None else str(value)


@dataclass(frozen=True)
class Table:
    """A SuiteQL table: one record type, or `transaction` over the transaction types."""

    name: str
    specs: tuple[RecordSpec, ...] = field(default_factory=tuple)


def suiteql_table(name: str) -> Table | None:
    lowered = name.lower()
    if lowered == "transaction":
        return Table("transaction", tuple(TRANSACTION_TYPES.values()))
    spec = next((s for s in RECORDS.values() if s.name.lower() == lowered), None)
    return Table(spec.name, (spec,)) if spec else None
