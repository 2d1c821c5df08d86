"""The SuiteQL subset and the record service's `q` filter, parsed without a database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from sandbox.netsuite.qfilter import q_parse
from sandbox.netsuite.suiteql import Comparison, Logical, SuiteQLError, suiteql_parse


@pytest.mark.parametrize(
    ("text", "table", "columns", "order_by"),
    [
        ("SELECT * FROM customer", "customer", None, []),
        ("select id, companyname from Customer;", "customer", ["id", "companyname"], []),
        (
            "SELECT c.id AS cid FROM customer c ORDER BY c.id DESC",
            "customer",
            ["cid"],
            [("id", True)],
        ),
        (
            "SELECT TOP 5 id FROM timebill ORDER BY trandate, id ASC",
            "timebill",
            ["id"],
            [("trandate", False), ("id", False)],
        ),
        ("SELECT COUNT(*) FROM transaction", "transaction", ["expr1"], []),
        ("SELECT TO_CHAR(trandate, 'YYYY-MM-DD') day FROM timebill", "timebill", ["day"], []),
    ],
)
def test_select_lists_tables_and_ordering_are_parsed(text, table, columns, order_by):
    query = suiteql_parse(text)
    assert query.table == table
    assert (None if query.items is None else [i.alias for i in query.items]) == columns
    assert query.order_by == order_by


W = "SELECT id FROM timebill WHERE "


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("id = 5", Comparison("id", "=", Decimal(5))),
        ("name <> 'O''Brien'", Comparison("name", "!=", "O'Brien")),
        ("memo IS NOT NULL", Comparison("memo", "is not null")),
        ("id NOT IN (1, 2)", Comparison("id", "not in", (Decimal(1), Decimal(2)))),
        (
            "trandate >= TO_DATE('2026-01-31', 'YYYY-MM-DD')",
            Comparison("trandate", ">=", dt.date(2026, 1, 31)),
        ),
        ("hours BETWEEN 1 AND 8", Comparison("hours", "between", (Decimal(1), Decimal(8)))),
    ],
)
def test_where_comparisons_are_parsed(condition, expected):
    statement = W + condition
    assert suiteql_parse(statement).where == expected


def test_and_binds_tighter_than_or_and_parentheses_regroup():
    flat = suiteql_parse("SELECT id FROM job WHERE a = 1 OR b = 2 AND c = 3").where
    assert flat.op == "or"
    assert flat.children[1].op == "and"
    grouped = suiteql_parse("SELECT id FROM job WHERE (a = 1 OR b = 2) AND NOT c = 3").where
    assert grouped.op == "and"
    assert grouped.children[1] == Logical("not", (Comparison("c", "=", Decimal(3)),))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SELECT FROM customer",
        "SELECT id FROM customer JOIN job ON job.parent = customer.id",
        "SELECT MAX(id) FROM customer",
        "SELECT id FROM customer WHERE id = ",
        "SELECT x.id FROM customer c",
        "SELECT id FROM customer WHERE trandate > TO_DATE('31/01/2026', 'YYYY-MM-DD')",
        "DELETE FROM customer",
    ],
)
def test_statements_outside_the_subset_are_refused(text):
    with pytest.raises(SuiteQLError):
        suiteql_parse(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('companyName START_WITH "Acme Co"', Comparison("companyName", "like", "Acme Co%")),
        ("isInactive IS false", Comparison("isInactive", "=", "false")),
        ("subsidiary ANY_OF [1, 2]", Comparison("subsidiary", "in", ("1", "2"))),
        ("email EMPTY", Comparison("email", "is null")),
        ("tranDate ON_OR_AFTER 1/31/2026", Comparison("tranDate", ">=", "1/31/2026")),
    ],
)
def test_q_filters_are_parsed(text, expected):
    assert q_parse(text) == expected


def test_q_filters_combine_with_and_and_or():
    parsed = q_parse("a IS 1 AND b IS 2 OR c IS 3")
    assert parsed.op == "or"
    assert parsed.children[0] == Logical(
        "and", (Comparison("a", "=", "1"), Comparison("b", "=", "2"))
    )


@pytest.mark.parametrize("text", ["companyName", "a IS", "a SOUNDS_LIKE b", "a IS 1 XOR b IS 2"])
def test_bad_q_filters_are_refused(text):
    with pytest.raises(SuiteQLError):
        q_parse(text)
