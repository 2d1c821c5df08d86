"""Template filters for finance pages: money with its currency, right-aligned by the page."""

from __future__ import annotations

from decimal import Decimal

from django import template

register = template.Library()


@register.filter
def money(amount: Decimal | None, currency: str = "") -> str:
    """`1234.5|money:"GBP"` → "1,234.50 GBP"; no amount → "—" (the page says why)."""
    if amount is None:
        return "—"
    text = f"{Decimal(amount):,.2f}"
    return f"{text} {currency}".strip()
