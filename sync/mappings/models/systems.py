"""The external systems Ledgerbridge keeps in step, as owners of data and sources of mappings.

Same values as `sync.pipeline.models.connections.System`; kept here so that mappings and
ownership do not depend on the pipeline's models.
"""

from __future__ import annotations

from django.db import models


class System(models.TextChoices):
    CRM = "crm", "CRM"
    PSA = "psa", "PSA"
    HR = "hr", "HR"
    ERP = "erp", "ERP"
    BILLING = "billing", "Billing"
