"""The pure failure reading: the classification table, Retry-After, Sforce-Limit-Info, bodies."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sync.connectors.base import CONFIGURATION, INDETERMINATE, PERMANENT, TRANSIENT
from sync.connectors.failures import (
    error_details,
    failure_classify,
    limit_info_parse,
    retry_after_parse,
)

from .test_http import NS_USER_ERROR


@pytest.mark.parametrize(
    ("status", "idempotent", "vendor_code", "kind"),
    [
        (502, True, "", TRANSIENT),
        (502, False, "", INDETERMINATE),
        (403, False, "REQUEST_LIMIT_EXCEEDED", TRANSIENT),
        (403, True, "", CONFIGURATION),
        (404, True, "", CONFIGURATION),
        (400, False, "INVALID_FIELD_FOR_INSERT_UPDATE", CONFIGURATION),
        (400, False, "INVALID_CONTENT", PERMANENT),
        (409, False, "UNABLE_TO_LOCK_ROW", TRANSIENT),
        (425, False, "", TRANSIENT),
    ],
)
def test_the_pure_classification_table_matches_the_documented_rules(
    status, idempotent, vendor_code, kind
):
    assert failure_classify(status=status, idempotent=idempotent, vendor_code=vendor_code) == kind


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # already past
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_as_an_http_date(value, seconds):
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert retry_after_parse(value, now=now) == seconds


def test_sforce_limit_info_is_parsed():
    assert limit_info_parse("api-usage=25/5000") == (25, 5000)
    assert limit_info_parse("per-app-api-usage=1/2, api-usage=3/4") == (3, 4)
    assert limit_info_parse(None) is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ([{"errorCode": "DUPLICATE_VALUE", "message": "dup"}], ("DUPLICATE_VALUE", "dup")),
        (
            {"errors": [{"type": "validation", "message": "m", "field": "title"}]},
            ("validation", "m (title)"),
        ),
        ({"scimType": "invalidFilter", "detail": "d"}, ("invalidFilter", "d")),
        (NS_USER_ERROR, ("USER_ERROR", "Please enter value(s) for: Subsidiary")),
        (
            {"error": {"type": "card_error", "code": "card_declined", "message": "m"}},
            ("card_declined", "m"),
        ),
        ({"error": "invalid_grant", "error_description": "d"}, ("invalid_grant", "d")),
        ("plain text", ("", "")),
    ],
)
def test_vendor_error_bodies_yield_their_code_and_message(body, expected):
    assert error_details(body) == expected
