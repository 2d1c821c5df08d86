"""Seed the default field owners of DESIGN.md ("Default owners"), effective from 2000-01-01.

A frozen snapshot: later changes are made with `ownership_rule_set` (admin or shell), never by
editing this list. The project master (project and its WBS tasks) goes to the system named by
the `PROJECT_MASTER_OWNER` setting ("erp" by default, or "psa") as it is when this migration
runs; changing the setting afterwards changes nothing: hand the project over with
`ownership_rule_set`. Field names are canonical model field names (`cost_centre`, not
`cost_centre_id`); a rule may name a field the model does not have yet.
"""

import datetime as dt

from django.conf import settings
from django.db import migrations
from django.utils import timezone

SEED_DATE = dt.date(2000, 1, 1)
SEED_NOTE = "Default owner from DESIGN.md (seeded by migration mappings.0002)."
ACTOR = "system:migration"
PROJECT_MASTER_OWNERS = ("erp", "psa")

# (entity, field or "" for the entity default, owner system)
DEFAULTS = [
    # ERP: legal entity, chart of accounts, tax, receivables and posting status.
    ("legal_entity", "", "erp"),
    ("accounting_period", "", "erp"),
    ("gl_account", "", "erp"),
    ("currency", "", "erp"),
    ("fx_rate", "", "erp"),
    ("tax_code", "", "erp"),
    ("cost_centre", "", "erp"),  # the finance dimension; a worker's cost centre is HR's
    ("customer", "tax_id", "erp"),
    ("customer", "credit_status", "erp"),
    # Approval (tax and credit checks) happens in the ERP: it owns whether a customer is usable.
    ("customer", "status", "erp"),
    ("project", "legal_entity", "erp"),
    ("project", "tax_code", "erp"),
    ("time_entry", "posting_status", "erp"),
    ("expense", "posting_status", "erp"),
    ("invoice", "posting_status", "erp"),
    ("invoice", "amount_paid", "erp"),
    ("invoice", "amount_due", "erp"),
    ("payment", "", "erp"),
    ("revenue_entry", "", "erp"),
    # CRM: commercial terms, sold services, account hierarchy.
    ("customer", "", "crm"),
    ("customer", "name", "crm"),
    ("customer", "parent", "crm"),
    ("opportunity", "", "crm"),
    ("contract", "", "crm"),
    ("contract", "value", "crm"),
    ("contract", "billing_model", "crm"),
    ("rate_card", "", "crm"),
    ("rate_card_line", "", "crm"),
    ("milestone", "amount", "crm"),
    # PSA: assignments, demand, time approval status.
    ("assignment", "", "psa"),
    ("role_placeholder", "", "psa"),
    ("milestone", "", "psa"),
    ("time_entry", "", "psa"),
    ("time_entry", "status", "psa"),
    ("expense", "", "psa"),
    ("expense", "status", "psa"),
    # HR: worker master, employment status, cost centre, manager.
    ("worker", "", "hr"),
    ("worker", "employment_status", "hr"),
    ("worker", "cost_centre", "hr"),
    ("worker", "manager", "hr"),
    # Billing: invoice candidates and issued invoices.
    ("invoice_candidate", "", "billing"),
    ("invoice", "", "billing"),
    ("invoice_line", "", "billing"),
    ("usage_record", "", "billing"),
]


def project_master_owner() -> str:
    owner = getattr(settings, "PROJECT_MASTER_OWNER", "erp")
    if owner not in PROJECT_MASTER_OWNERS:
        raise ValueError(f"PROJECT_MASTER_OWNER must be one of {PROJECT_MASTER_OWNERS}, not {owner!r}")
    return owner


def seed(apps, schema_editor):
    Rule = apps.get_model("mappings", "OwnershipRule")
    HistoricalRule = apps.get_model("mappings", "HistoricalOwnershipRule")
    db = schema_editor.connection.alias
    master = project_master_owner()
    rows = [*DEFAULTS, ("project", "", master), ("task", "", master)]
    now = timezone.now()
    for entity, field, owner in rows:
        rule, created = Rule.objects.using(db).get_or_create(
            entity=entity, field=field, effective_from=SEED_DATE,
            defaults={"owner_system": owner, "notes": SEED_NOTE, "created_at": now,
                      "updated_at": now},
        )
        if created:
            # Migrations see no simple-history signals: write the "+" row by hand.
            HistoricalRule.objects.using(db).create(
                id=rule.id, entity=entity, field=field, owner_system=owner,
                effective_from=SEED_DATE, effective_to=None, notes=SEED_NOTE,
                created_at=rule.created_at, updated_at=rule.updated_at,
                history_date=now, history_type="+", history_actor=ACTOR,
                history_change_reason="Default owners from DESIGN.md",
            )


def unseed(apps, schema_editor):
    Rule = apps.get_model("mappings", "OwnershipRule")
    HistoricalRule = apps.get_model("mappings", "HistoricalOwnershipRule")
    db = schema_editor.connection.alias
    seeded = Rule.objects.using(db).filter(effective_from=SEED_DATE, notes=SEED_NOTE)
    HistoricalRule.objects.using(db).filter(id__in=seeded.values("id")).delete()
    seeded.delete()


class Migration(migrations.Migration):
    dependencies = [("mappings", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
