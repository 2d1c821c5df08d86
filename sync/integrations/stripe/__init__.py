"""Stripe (billing): form-encoded writes, cursor lists, signed webhooks, its pull plan."""
