"""The default owners seeded by migration mappings.0002, as DESIGN.md lists them."""

from __future__ import annotations

import datetime as dt
import importlib
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.db import connection

from sync.mappings.models import OwnershipRule
from sync.mappings.selectors import ownership_book_load

seeding = importlib.import_module("sync.mappings.migrations.0002_ownership_defaults")
TODAY = dt.date(2026, 11, 26)


@pytest.mark.parametrize(
    ("entity", "field", "owner"),
    [
        # ERP: legal entity, chart of accounts, tax, receivables, posting status.
        ("legal_entity", "name", "erp"),
        ("accounting_period", "status", "erp"),
        ("tax_code", "rate", "erp"),
        ("customer", "credit_status", "erp"),
        ("customer", "tax_id", "erp"),
        ("time_entry", "posting_status", "erp"),
        ("payment", "amount", "erp"),
        # CRM: commercial terms, sold services, account hierarchy.
        ("customer", "name", "crm"),
        ("contract", "value", "crm"),
        ("contract", "billing_model", "crm"),
        ("opportunity", "amount", "crm"),
        # PSA: assignments, demand, time approval status.
        ("assignment", "worker", "psa"),
        ("role_placeholder", "role_name", "psa"),
        ("time_entry", "status", "psa"),
        # HR: worker master, employment status, cost centre, manager.
        ("worker", "name", "hr"),
        ("worker", "employment_status", "hr"),
        ("worker", "cost_centre", "hr"),
        ("worker", "manager", "hr"),
        # Billing: invoice candidates and issued invoices.
        ("invoice_candidate", "amount", "billing"),
        ("invoice", "total", "billing"),
        # Project master: the PROJECT_MASTER_OWNER setting, "erp" by default.
        ("project", "name", "erp"),
        ("task", "code", "erp"),
        ("project", "legal_entity", "erp"),
    ],
)
def test_the_seeded_defaults_name_the_owner_design_gives(db, entity, field, owner):
    assert ownership_book_load(on=TODAY).owner(entity, field, TODAY) == owner


def test_every_seeded_rule_has_a_creation_history_row_by_the_migration(db):
    seeded = OwnershipRule.objects.filter(notes=seeding.SEED_NOTE)

    assert seeded.count() == len(seeding.DEFAULTS) + 2
    assert set(
        OwnershipRule.history.filter(id__in=seeded.values("id")).values_list(
            "history_type", "history_actor"
        )
    ) == {("+", "system:migration")}


def test_a_psa_led_firm_seeds_the_project_master_for_psa(db, settings):
    settings.PROJECT_MASTER_OWNER = "psa"
    editor = SimpleNamespace(connection=connection)
    seeding.unseed(apps, editor)

    seeding.seed(apps, editor)

    book = ownership_book_load(on=TODAY)
    assert (book.owner("project", "name", TODAY), book.owner("task", "name", TODAY)) == (
        "psa",
        "psa",
    )
    assert book.owner("project", "legal_entity", TODAY) == "erp"


def test_an_unknown_project_master_owner_stops_the_migration(settings):
    settings.PROJECT_MASTER_OWNER = "crm"

    with pytest.raises(ValueError, match="PROJECT_MASTER_OWNER"):
        seeding.project_master_owner()
