"""The canonical model: one module per concept, re-exported here."""

from sync.models.base import CanonicalModel
from sync.models.billing import Invoice, InvoiceCandidate, InvoiceLine, Payment, RevenueEntry
from sync.models.commercial import Contract, Customer, Opportunity, RateCard, RateCardLine
from sync.models.delivery import (
    Assignment,
    Milestone,
    Project,
    RolePlaceholder,
    Task,
    UsageRecord,
    Worker,
)
from sync.models.reference import (
    AccountingPeriod,
    CostCentre,
    Currency,
    FxRate,
    LegalEntity,
    TaxCode,
)
from sync.models.refs import ExternalRef
from sync.models.transactions import Expense, TimeEntry

# Every concrete canonical model, in dependency order (reference data first). Tests and the
# admin iterate over it; a new model is added here.
CANONICAL_MODELS = (
    Currency,
    LegalEntity,
    FxRate,
    TaxCode,
    CostCentre,
    AccountingPeriod,
    Customer,
    Opportunity,
    Contract,
    RateCard,
    RateCardLine,
    Project,
    Task,
    Worker,
    RolePlaceholder,
    Assignment,
    Milestone,
    UsageRecord,
    TimeEntry,
    Expense,
    InvoiceCandidate,
    Invoice,
    InvoiceLine,
    Payment,
    RevenueEntry,
    ExternalRef,
)

__all__ = [
    "CANONICAL_MODELS",
    "AccountingPeriod",
    "Assignment",
    "CanonicalModel",
    "Contract",
    "CostCentre",
    "Currency",
    "Customer",
    "Expense",
    "ExternalRef",
    "FxRate",
    "Invoice",
    "InvoiceCandidate",
    "InvoiceLine",
    "LegalEntity",
    "Milestone",
    "Opportunity",
    "Payment",
    "Project",
    "RateCard",
    "RateCardLine",
    "RevenueEntry",
    "RolePlaceholder",
    "Task",
    "TimeEntry",
    "UsageRecord",
    "Worker",
]
