"""The Stripe sandbox's clock: one place that tests replace to move time (key expiry, backoff).

Everything in the package reads the time through `clock.now()` (the module attribute, looked up
at each call), so `monkeypatch.setattr(clock, "now", lambda: moment)` moves it everywhere.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone


def now() -> dt.datetime:
    return timezone.now()


def timestamp(moment: dt.datetime) -> int:
    """Stripe's timestamps: whole seconds since the epoch."""
    return int(moment.timestamp())
