"""The SOQL subset parser (pure: no database)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from sandbox.salesforce.soql import SoqlError, soql_parse


def test_a_full_query_is_parsed_into_fields_conditions_order_and_limit():
    query = soql_parse(
        "SELECT Id, Name, StageName FROM Opportunity "
        "WHERE LastModifiedDate > 2025-01-01T00:00:00Z AND Amount >= 1000.50 "
        "AND StageName IN ('Closed Won', 'Closed Lost') AND IsWon = true "
        "ORDER BY LastModifiedDate DESC, Name LIMIT 50 OFFSET 10"
    )
    assert query.obj.name == "Opportunity"
    assert [f.name for f in query.fields] == ["Id", "Name", "StageName"]
    assert [(c.field.name, c.op, c.value) for c in query.where] == [
        ("LastModifiedDate", ">", dt.datetime(2025, 1, 1, tzinfo=dt.UTC)),
        ("Amount", ">=", Decimal("1000.50")),
        ("StageName", "IN", ("Closed Won", "Closed Lost")),
        ("IsWon", "=", True),
    ]
    assert [(o.field.name, o.descending) for o in query.order_by] == [
        ("LastModifiedDate", True),
        ("Name", False),
    ]
    assert (query.limit, query.offset) == (50, 10)


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("2025-01-31T10:00:00Z", dt.datetime(2025, 1, 31, 10, tzinfo=dt.UTC)),
        ("2025-01-31T10:00:00.000Z", dt.datetime(2025, 1, 31, 10, tzinfo=dt.UTC)),
        (
            "2025-01-31T10:00:00+01:00",
            dt.datetime(2025, 1, 31, 10, tzinfo=dt.timezone(dt.timedelta(hours=1))),
        ),
    ],
)
def test_datetime_literals_are_read_in_every_soql_form(literal, expected):
    query = soql_parse(f"SELECT Id FROM Account WHERE LastModifiedDate > {literal}")  # noqa: S608 - SOQL, not SQL
    assert query.where[0].value == expected


def test_keywords_and_names_ignore_case_and_strings_keep_escapes():
    query = soql_parse(r"select name from ACCOUNT where name = 'O\'Brien & Co'")
    assert query.obj.name == "Account"
    assert query.fields[0].name == "Name"
    assert query.where[0].value == "O'Brien & Co"


def test_count_queries_select_no_fields():
    query = soql_parse("SELECT COUNT() FROM Contract WHERE Status = 'Activated'")
    assert query.count_only
    assert query.fields == []


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("", "MALFORMED_QUERY"),
        ("SELECT FROM Account", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE (Name = 'a')", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE Name = 'a' OR Name = 'b'", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE Name = 'a' GROUP BY Name", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE Name > null", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE Name = unquoted", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE Name = 'open", "MALFORMED_QUERY"),
        ("SELECT Id FROM Lead", "INVALID_TYPE"),
        ("SELECT Account.Name FROM Opportunity", "INVALID_FIELD"),
        ("SELECT Id FROM Opportunity WHERE CloseDate > 2025-01-01T00:00:00Z", "INVALID_FIELD"),
        ("SELECT Id FROM Opportunity WHERE Amount > '5'", "INVALID_FIELD"),
        ("SELECT Id FROM Opportunity WHERE IsWon = 'true'", "INVALID_FIELD"),
        ("SELECT Id FROM Account OFFSET 2001", "NUMBER_OUTSIDE_VALID_RANGE"),
    ],
)
def test_bad_queries_raise_salesforces_error_codes(soql, code):
    with pytest.raises(SoqlError) as raised:
        soql_parse(soql)
    assert raised.value.code == code
