"""What a vendor's failure answer means: its code and message, its kind, the wait it asks for.

Pure (no network, no database): `http.py` reads each error answer through these, and the
table tests call them directly. Rate-limit signals (all transient, with the wait the vendor
asked for or a default): Retry-After (seconds or HTTP date, RFC 9110 §10.2.3); Salesforce 403
REQUEST_LIMIT_EXCEEDED with `Sforce-Limit-Info: api-usage=N/M`
(https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_api_usage.htm);
Kantata 429 without Retry-After (https://developer.kantata.com/, "Rate limiting"); NetSuite 429
(https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_156570709583.html);
Stripe 429 and `Stripe-Should-Retry` (https://docs.stripe.com/rate-limits,
https://docs.stripe.com/error-low-level#idempotency).
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from sync.connectors.base import CONFIGURATION, INDETERMINATE, PERMANENT, TRANSIENT

ABSENT = "absent"  # `not_found=ABSENT`: a 404 is an answer (the record does not exist)

# Vendor codes that mean "slow down", whatever the status they come with.
RATE_LIMIT_CODES = frozenset(
    {
        "REQUEST_LIMIT_EXCEEDED",  # Salesforce (403, or 429 for concurrent requests)
        "rate_limit",  # Kantata
        "CONCURRENCY_LIMIT_EXCEEDED",  # NetSuite
        "SSS_REQUEST_LIMIT_EXCEEDED",  # NetSuite
        "rate_limit_error",  # Stripe error type
    }
)
# Conflicts that clear by themselves: retry later rather than park the record.
TRANSIENT_CONFLICT_CODES = frozenset(
    {"idempotency_key_in_use", "lock_timeout", "UNABLE_TO_LOCK_ROW"}
)
# 4xx codes that mean our configuration or mapping is wrong, not the record.
CONFIGURATION_CODES = frozenset(
    {
        "INVALID_SESSION_ID",
        "INVALID_AUTH_HEADER",
        "API_DISABLED_FOR_ORG",
        "INSUFFICIENT_ACCESS",
        "INVALID_FIELD",
        "INVALID_TYPE",
        "MALFORMED_QUERY",
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        "invalidFilter",
        "invalid_client",
        "invalid_client_id",
        "invalid_grant",
        "unsupported_grant_type",
        "unauthorized_client",
        "INVALID_LOGIN",
        "authentication",
    }
)
# A write whose gateway gave up may still have been committed behind it.
GATEWAY_STATUSES = frozenset({502, 504})


def retry_after_parse(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After value: delta-seconds or an HTTP date. None if absent
    or unreadable; never negative."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def limit_info_parse(value: str | None) -> tuple[int, int] | None:
    """`Sforce-Limit-Info: api-usage=25/5000` -> (25, 5000)."""
    for part in (value or "").split(","):
        name, _, usage = part.strip().partition("=")
        used, _, limit = usage.partition("/")
        if name == "api-usage" and used.isdigit() and limit.isdigit():
            return int(used), int(limit)
    return None


def error_details(body: Any) -> tuple[str, str]:
    """(vendor_code, message) from any of our dialects' error bodies; ("", "") if none fits.

    Salesforce `[{"errorCode", "message"}]`; Kantata `{"errors": [{"type", "message"}]}`;
    SCIM `{"scimType", "detail"}`; NetSuite `{"title", "o:errorDetails": [{"o:errorCode",
    "detail"}]}`; Stripe `{"error": {"code"|"type", "message"}}`; OAuth `{"error",
    "error_description"}`.
    """
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return str(body[0].get("errorCode", "")), str(body[0].get("message", ""))
    if not isinstance(body, dict):
        return "", ""
    if isinstance(body.get("o:errorDetails"), list) and body["o:errorDetails"]:
        detail = body["o:errorDetails"][0]
        return str(detail.get("o:errorCode", "")), str(detail.get("detail", body.get("title", "")))
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        field = f" ({first['field']})" if first.get("field") else ""
        return str(first.get("type", "")), str(first.get("message", "")) + field
    error = body.get("error")
    if isinstance(error, dict):  # Stripe
        code = error.get("code") or error.get("type") or ""
        return str(code), str(error.get("message", ""))
    if isinstance(error, str):  # OAuth 2.0 (RFC 6749 §5.2)
        return error, str(body.get("error_description", error))
    if "detail" in body or "scimType" in body:
        return str(body.get("scimType", "")), str(body.get("detail", ""))
    return "", str(body.get("message", body.get("title", "")))


def failure_classify(
    *,
    status: int,
    idempotent: bool,
    vendor_code: str = "",
    not_found: str = CONFIGURATION,
    should_retry: bool | None = None,
) -> str:
    """The kind of an HTTP error answer (status >= 300). Pure: the table tests call it directly.

    `should_retry` is Stripe's `Stripe-Should-Retry` header when present.
    """
    if status == 429 or vendor_code in RATE_LIMIT_CODES:
        return TRANSIENT
    if status in (401, 403, 407):
        return CONFIGURATION
    if status == 404:
        return not_found if not_found != ABSENT else PERMANENT
    if status in (405, 406, 415, 501) or (300 < status < 400):
        # The API is being called wrongly (version, path, redirect to a login page): config.
        return CONFIGURATION
    if status in (408, 425) or vendor_code in TRANSIENT_CONFLICT_CODES or should_retry:
        return TRANSIENT
    if 400 <= status < 500 or status == 300:
        # 300: an external id matched several target records; people must merge them.
        return CONFIGURATION if vendor_code in CONFIGURATION_CODES else PERMANENT
    if status in GATEWAY_STATUSES and not idempotent:
        return INDETERMINATE
    return TRANSIENT
