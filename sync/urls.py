"""Sync endpoints for other systems: signed webhooks (included under `hooks/` by portal/urls.py)."""

from __future__ import annotations

from django.urls import path

from sync import webhooks

app_name = "sync"

urlpatterns = [
    path("billing/<slug:name>", webhooks.billing_webhook, name="billing-webhook"),
    path("psa/<slug:name>", webhooks.psa_webhook, name="psa-webhook"),
]
