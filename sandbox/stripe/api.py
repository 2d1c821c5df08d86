"""The Stripe API v1 surface shared by the handlers: auth, error shape, headers, form params,
idempotent POSTs and cursor lists.

Follows https://docs.stripe.com/api: form-encoded bodies, `{"object": "list", "data",
"has_more", "url"}` lists newest first with `limit` (1 to 100, default 10), `starting_after`,
`ending_before` and `created[gt|gte|lt|lte]`; errors `{"error": {"type", "code", "message",
"param"}}`. Parameter checks happen before a service runs (they are what Stripe calls
validation: an idempotency key saves nothing for them).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import secrets
from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet

from sandbox import storage
from sandbox.core.protocol import (
    CONCURRENCY_LIMITED,
    INJECTED_FAULT,
    INTERNAL,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    RATE_LIMITED,
    UNAUTHORIZED,
    Request,
    Response,
    SandboxError,
)
from sandbox.stripe import forms, services
from sandbox.stripe.idempotency import idempotent
from sandbox.stripe.objects import API_VERSION, SYSTEM, stripe_id_parse

SECRET_KEY = "sk_test_51LedgerbridgeSandboxKey000000000000"  # noqa: S105 - public test key
PUBLISHABLE_KEY = "pk_test_51LedgerbridgeSandboxKey000000000000"
CURRENCIES = frozenset(
    (
        "usd",
        "eur",
        "gbp",
        "chf",
        "sek",
        "nok",
        "dkk",
        "pln",
        "czk",
        "huf",
        "cad",
        "aud",
        "nzd",
        "jpy",
        "sgd",
        "hkd",
        "inr",
        "mxn",
        "brl",
        "zar",
    )
)
FORM_TYPE = "application/x-www-form-urlencoded"
LIST_PARAMS = {"limit", "starting_after", "ending_before", "created", "expand"}
_MISSING_KEY = (
    "You did not provide an API key. You need to provide your API key in the Authorization "
    "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."
)


def credentials(base_url: str) -> dict[str, Any]:
    return {
        "base_url": base_url,
        "api_base": base_url,
        "api_version": API_VERSION,
        "secret_key": SECRET_KEY,
        "publishable_key": PUBLISHABLE_KEY,
        "webhook_endpoints_url": base_url + "/v1/webhook_endpoints",
    }


# -- errors, auth, headers ---------------------------------------------------------------------
def _error_type(error: SandboxError) -> str:
    if error.extra.get("type"):
        return error.extra["type"]
    if error.status == 402:
        return "card_error"
    if error.status >= 500:
        return "api_error"
    return "invalid_request_error"


def render_error(request: Request, error: SandboxError) -> Response:
    status, code, message = error.status, error.code, error.message
    if code in {NOT_FOUND, METHOD_NOT_ALLOWED}:
        status, code = 404, ""
        message = (
            f"Unrecognized request URL ({request.method}: {request.path}). Please see "
            "https://stripe.com/docs or we can help at https://support.stripe.com/."
        )
    elif code in {RATE_LIMITED, CONCURRENCY_LIMITED}:
        code = "rate_limit"
        message = (
            "Request rate limit exceeded. Learn more about rate limits here "
            "https://stripe.com/docs/rate-limits."
        )
    elif code == UNAUTHORIZED:
        code = ""
    elif code in {INJECTED_FAULT, INTERNAL}:
        code = ""
        message = "An unknown error occurred (sandbox)."
    elif code.isupper():  # another core code (MALFORMED_JSON…): not Stripe's vocabulary
        code = ""
    body: dict[str, Any] = {
        "type": _error_type(SandboxError(status, code, message, extra=error.extra)),
        "message": message,
    }
    if code:
        body["code"] = code
        body["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
    if error.fields:
        body["param"] = error.fields[0]
    if error.extra.get("decline_code"):
        body["decline_code"] = error.extra["decline_code"]
    if error.extra.get("invoice"):
        body["invoice"] = error.extra["invoice"]
    return Response.json({"error": body}, status=status)


def request_id(request: Request) -> str:
    if "request_id" not in request.state:
        request.state["request_id"] = "req_" + secrets.token_hex(7)
    return request.state["request_id"]


def after_response(request: Request, response: Response) -> None:
    response.headers.setdefault("Request-Id", request_id(request))
    response.headers["Stripe-Version"] = API_VERSION


def _api_key(request: Request) -> str | None:
    scheme, _, value = (request.header("authorization") or "").partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value.strip()).decode().partition(":")[0] or None
        except (binascii.Error, UnicodeDecodeError):
            return None
    return None


def authenticate(request: Request) -> None:
    key = _api_key(request)
    if key is None:
        raise SandboxError(401, UNAUTHORIZED, _MISSING_KEY)
    if not secrets.compare_digest(key.encode(), SECRET_KEY.encode()):
        masked = key[:8] + "*" * max(len(key) - 12, 0) + key[-4:]
        raise SandboxError(401, UNAUTHORIZED, f"Invalid API Key provided: {masked}")


def params(request: Request) -> dict[str, Any]:
    """The request's parameters: the form body of a POST, the query string otherwise."""
    if "params" in request.state:
        return request.state["params"]
    if request.method == "POST" and request.body:
        content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
        if content_type != FORM_TYPE:
            raise forms.invalid(
                f"Invalid request: the body must be {FORM_TYPE} (the API v1 does not take "
                f"{content_type or 'an untyped body'})."
            )
        try:
            text = request.body.decode()
        except UnicodeDecodeError as exc:
            raise forms.invalid("Invalid request: the body is not UTF-8.") from exc
    else:
        text = request.query_string
    request.state["params"] = forms.form_decode(text)
    return request.state["params"]


def request_ref(request: Request) -> services.RequestRef:
    return services.RequestRef(
        id=request_id(request), idempotency_key=request.header("idempotency-key")
    )


def idempotent_post(handler: Callable[..., Response]) -> Callable[..., Response]:
    return idempotent(handler, params_of=params, render_error=render_error)


def currency_clean(value: str | None, *, param: str = "currency") -> str | None:
    if value is None:
        return None
    lowered = value.lower()
    if lowered not in CURRENCIES:
        raise forms.invalid(
            f"Invalid currency: {value}. Stripe currently supports these currencies: "
            f"{', '.join(sorted(CURRENCIES))}",
            param=param,
        )
    return lowered


# -- lists -------------------------------------------------------------------------------------
def _cursor(value: str | None, object_name: str, param: str) -> int | None:
    if value is None:
        return None
    pk = stripe_id_parse(value, object_name)
    if pk is None:
        raise services.no_such(object_name, value, param=param, status=400)
    return pk


def _created_filter(queryset: QuerySet, given: dict, field: str) -> QuerySet:
    value = given.get("created")
    if value is None:
        return queryset

    def moment(raw: Any, name: str) -> dt.datetime:
        if not isinstance(raw, str) or not raw.lstrip("-").isdigit():
            raise forms.invalid(
                f"Invalid integer: {raw}", param=name, code="parameter_invalid_integer"
            )
        return dt.datetime.fromtimestamp(int(raw), tz=dt.UTC)

    if isinstance(value, str):
        start = moment(value, "created")
        return queryset.filter(
            **{f"{field}__gte": start, f"{field}__lt": start + dt.timedelta(seconds=1)}
        )
    bounds = forms.read_hash(given, "created", {"gt", "gte", "lt", "lte"}) or {}
    for op, raw in bounds.items():
        queryset = queryset.filter(**{f"{field}__{op}": moment(raw, f"created[{op}]")})
    return queryset


def list_page(
    request: Request,
    queryset: QuerySet,
    *,
    object_name: str,
    url: str,
    given: dict,
    created_field: str = "created_at",
) -> tuple[list, bool]:
    """One page of a cursor list, newest first: (rows, has_more)."""
    limit = forms.read_int(given, "limit", minimum=1, maximum=100) or 10
    after = _cursor(given.get("starting_after"), object_name, "starting_after")
    before = _cursor(given.get("ending_before"), object_name, "ending_before")
    if after is not None and before is not None:
        raise forms.invalid(
            "You may only specify one of these parameters: ending_before, starting_after."
        )
    queryset = _created_filter(queryset, given, created_field)
    if before is not None:
        rows = list(queryset.filter(pk__gt=before).order_by("pk")[: limit + 1])
        has_more = len(rows) > limit
        return list(reversed(rows[:limit])), has_more
    if after is not None:
        queryset = queryset.filter(pk__lt=after)
    rows = list(queryset.order_by("-pk")[: limit + 1])
    return rows[:limit], len(rows) > limit


def list_answer(data: list, has_more: bool, url: str) -> Response:
    return Response.json({"object": "list", "data": data, "has_more": has_more, "url": url})


def records(object_type: str) -> QuerySet:
    return storage.record_queryset(system=SYSTEM, object_type=object_type)
