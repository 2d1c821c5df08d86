"""Connections: how Ledgerbridge reaches one external system (edited by integration ops)."""

from __future__ import annotations

import json
from typing import Any

from django.db import models

from sync.encryption import EncryptedTextField
from sync.models.history import HistoryActorFields, LeanHistoricalRecords


class System(models.TextChoices):
    CRM = "crm", "CRM"
    PSA = "psa", "PSA"
    HR = "hr", "HR"
    ERP = "erp", "ERP"
    BILLING = "billing", "Billing"


class Dialect(models.TextChoices):
    SALESFORCE = "salesforce", "Salesforce REST"
    KANTATA = "kantata", "Kantata REST v1"
    SCIM = "scim", "SCIM 2.0"
    NETSUITE = "netsuite", "NetSuite REST"
    STRIPE = "stripe", "Stripe-style billing"
    CSV = "csv", "CSV file drop"


class Connection(models.Model):
    """One configured external system. Credentials are encrypted at rest and never rendered.

    The circuit breaker lives here, in the database, so every worker process sees the same
    state: `circuit_open_until` set means deliveries to this connection wait until then.
    """

    name = models.SlugField(max_length=64, unique=True)
    system = models.CharField(max_length=16, choices=System.choices)
    dialect = models.CharField(max_length=16, choices=Dialect.choices)
    base_url = models.URLField(max_length=500, blank=True)
    credentials = EncryptedTextField(blank=True, default="")
    enabled = models.BooleanField(default=True)
    rate_per_second = models.DecimalField(
        max_digits=8,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Client-side request budget; empty means the target's own limits only.",
    )
    max_concurrency = models.PositiveSmallIntegerField(default=4)
    timeout_seconds = models.PositiveSmallIntegerField(default=10)
    pull_interval_seconds = models.PositiveIntegerField(default=60)
    consecutive_failures = models.PositiveIntegerField(default=0)
    circuit_open_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Credentials stay out of history: old secrets have no business being kept.
    history = LeanHistoricalRecords(bases=[HistoryActorFields], excluded_fields=["credentials"])

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_dialect_display()})"

    def credentials_dict(self) -> dict[str, Any]:
        return json.loads(self.credentials) if self.credentials else {}

    def credentials_set(self, values: dict[str, Any]) -> None:
        self.credentials = json.dumps(values, sort_keys=True)
