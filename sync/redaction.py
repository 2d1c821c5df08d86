"""What nobody may read, and what only `sync.view_cost_rate` may read: one function for both.

Every place that shows a stored value to a person or a log — admin pages, history views, log
lines, the portal's pages and exports — passes it through `value_redact` (or asks
`field_redacted` for a model field), so a vendor payload that carries a worker's cost rate or a
credential cannot leak through a page that forgot about it.

- Credentials (passwords, secrets, tokens, API keys, signing keys) are masked for everyone.
- Cost rates (`costRate`, `laborCost`, `cost_rate` …) are masked unless the reader may see them.

Keys are matched after lower-casing and dropping every character but letters and digits, so
`costRate`, `cost_rate` and `COST-RATE` are one key. A masked key keeps its place with
`MASK` as its value (the reader learns that a value exists, not what it is).
"""

from __future__ import annotations

import re
from typing import Any

MASK = "••••"
COST_RATE_PERMISSION = "sync.view_cost_rate"

_NOT_ALNUM = re.compile(r"[^a-z0-9]")
# Labour cost by any vendor's name for it (SCIM costing extension, NetSuite employee).
COST_RATE_KEYS = frozenset({"costrate", "laborcost", "labourcost", "hourlycost", "costamount"})
CREDENTIAL_KEYS = frozenset(
    {
        "password",
        "passwd",
        "secret",
        "token",
        "accesstoken",
        "refreshtoken",
        "idtoken",
        "clientsecret",
        "apikey",
        "authorization",
        "privatekey",
        "signingkey",
        "webhooksecret",
        "credentials",
        "consumersecret",
        "tokensecret",
        "sessionid",
        "cookie",
    }
)
_CREDENTIAL_SUFFIXES = ("secret", "password", "token", "apikey", "privatekey")


def _normal(key: str) -> str:
    return _NOT_ALNUM.sub("", key.lower())


def key_is_credential(key: str) -> bool:
    """True for a key whose value is a credential (nobody reads it back)."""
    normal = _normal(key)
    return normal in CREDENTIAL_KEYS or normal.endswith(_CREDENTIAL_SUFFIXES)


def key_is_cost_rate(key: str) -> bool:
    """True for a key whose value is a labour cost rate."""
    return _normal(key) in COST_RATE_KEYS


def key_redacted(key: str, *, cost_rates_visible: bool) -> bool:
    """Whether a value stored under `key` is masked for this reader."""
    return key_is_credential(key) or (not cost_rates_visible and key_is_cost_rate(key))


def value_redact(value: Any, *, cost_rates_visible: bool) -> Any:
    """A copy of `value` (JSON-like: dicts, lists, scalars) with masked values replaced by MASK.

    Pure and total: any other value comes back as it is. The original is never changed.
    """
    if isinstance(value, dict):
        return {
            key: MASK
            if key_redacted(str(key), cost_rates_visible=cost_rates_visible)
            else value_redact(item, cost_rates_visible=cost_rates_visible)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [value_redact(item, cost_rates_visible=cost_rates_visible) for item in value]
    return value


def field_redacted(name: str, *, cost_rates_visible: bool) -> bool:
    """Whether a model field called `name` is masked for this reader (same rule as keys)."""
    return key_redacted(name, cost_rates_visible=cost_rates_visible)


def cost_rates_visible_to(user: Any) -> bool:
    """Whether `user` (a Django user, possibly anonymous) may read cost rates."""
    return bool(user is not None and user.has_perm(COST_RATE_PERMISSION))
