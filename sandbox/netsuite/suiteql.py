"""A parser for the SuiteQL subset the sandbox answers (pure: no database).

    SELECT [TOP n] * | item, … FROM table [alias]
      [WHERE condition] [ORDER BY column [ASC|DESC], …]

    item       column [AS alias] | COUNT(*) [AS alias] | TO_CHAR(column, 'format') [AS alias]
    condition  comparisons joined by AND / OR, NOT, parentheses
    comparison column (= | != | <> | < | <= | > | >=) value | column [NOT] LIKE 'pattern'
               | column [NOT] IN (value, …) | column IS [NOT] NULL | column BETWEEN v AND v
    value      'text' | number | TO_DATE('2026-01-31', 'YYYY-MM-DD')
               | TO_TIMESTAMP('2026-01-31 10:00:00', 'YYYY-MM-DD HH24:MI:SS')

No joins, GROUP BY or sub-queries (SuiteQL has them; connectors here need one table at a time).
Raises `SuiteQLError` with NetSuite's "Invalid search query" wording.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


class SuiteQLError(Exception):
    pass


@dataclass(frozen=True)
class SelectItem:
    column: str  # lower case; "*" inside COUNT(*)
    alias: str
    function: str = ""  # "", "count", "to_char"
    format: str = ""


@dataclass(frozen=True)
class Comparison:
    column: str
    op: str  # = != < <= > >= like not like in not in is null is not null between
    value: Any = None


@dataclass(frozen=True)
class Logical:
    op: str  # and / or / not
    children: tuple[Any, ...]


@dataclass
class SuiteQLQuery:
    table: str
    items: list[SelectItem] | None  # None: SELECT *
    where: Any = None
    order_by: list[tuple[str, bool]] = field(default_factory=list)  # (column, descending)
    top: int | None = None

    @property
    def count_only(self) -> bool:
        return bool(self.items) and all(item.function == "count" for item in self.items)


_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?\d+(?:\.\d+)?)"
    r"|(?P<op><=|>=|<>|!=|=|<|>)|(?P<punct>[(),*])|(?P<name>[A-Za-z_][\w.]*))"
)
_KEYWORDS = {
    "select",
    "from",
    "where",
    "and",
    "or",
    "not",
    "order",
    "by",
    "asc",
    "desc",
    "as",
    "like",
    "in",
    "is",
    "null",
    "between",
    "top",
}
_DATE_FORMATS = {
    "YYYY-MM-DD": "%Y-%m-%d",
    "MM/DD/YYYY": "%m/%d/%Y",
    "DD.MM.YYYY": "%d.%m.%Y",
    "YYYY-MM-DD HH24:MI:SS": "%Y-%m-%d %H:%M:%S",
    'YYYY-MM-DD"T"HH24:MI:SS': "%Y-%m-%dT%H:%M:%S",
}


def date_format(fmt: str) -> str:
    """The strftime pattern of a supported Oracle date format model."""
    pattern = _DATE_FORMATS.get(fmt.upper().replace('"T"', '"T"'))
    if pattern is None:
        raise SuiteQLError(f"Unsupported date format '{fmt}'. Use one of {sorted(_DATE_FORMATS)}.")
    return pattern


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position, text = [], 0, text.strip().rstrip(";")
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            near = text[position:][:20]
            raise SuiteQLError(f"Unexpected character at position {position}: {near!r}")
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "name" and value.lower() in _KEYWORDS:
            kind, value = "kw", value.lower()
        tokens.append((kind, value))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.position = 0
        self.alias = ""

    def peek(self, offset: int = 0) -> tuple[str, str]:
        index = self.position + offset
        return self.tokens[index] if index < len(self.tokens) else ("end", "")

    def take(self) -> tuple[str, str]:
        token = self.peek()
        self.position += 1
        return token

    def accept(self, kind: str, value: str | None = None) -> bool:
        token_kind, token_value = self.peek()
        if token_kind == kind and (value is None or token_value.lower() == value):
            self.position += 1
            return True
        return False

    def expect(self, kind: str, value: str | None = None) -> str:
        token_kind, token_value = self.take()
        if token_kind != kind or (value is not None and token_value.lower() != value):
            wanted = value or kind
            raise SuiteQLError(f"Expected {wanted} but found {token_value or 'the end'}")
        return token_value

    def column(self) -> str:
        name = self.expect("name").lower()
        if "." in name:
            prefix, _, name = name.partition(".")
            if self.alias and prefix != self.alias:
                raise SuiteQLError(f"Unknown table alias {prefix}: joins are not supported")
        return name

    # -- statement -----------------------------------------------------------------------------
    def parse(self) -> SuiteQLQuery:
        self.expect("kw", "select")
        top = None
        if self.accept("kw", "top"):
            top = int(self.expect("number"))
        start = self.position
        self._skip_select_list()
        self.expect("kw", "from")
        table = self.expect("name")
        if self.peek()[0] == "name":
            self.alias = self.take()[1].lower()
        end = self.position
        self.position = start
        items = self._select_list()
        if self.peek() != ("kw", "from"):
            raise SuiteQLError(f"Unsupported select list near {self.peek()[1]}")
        self.position = end
        query = SuiteQLQuery(table=table.lower(), items=items, top=top)
        if self.accept("kw", "where"):
            query.where = self._or()
        if self.accept("kw", "order"):
            self.expect("kw", "by")
            while True:
                column = self.column()
                descending = self.accept("kw", "desc")
                if not descending:
                    self.accept("kw", "asc")
                query.order_by.append((column, descending))
                if not self.accept("punct", ","):
                    break
        if self.peek()[0] != "end":
            raise SuiteQLError(f"Unsupported syntax near {self.peek()[1]}")
        return query

    def _skip_select_list(self) -> None:
        depth = 0
        while True:
            kind, value = self.peek()
            if kind == "end":
                raise SuiteQLError("Expected FROM")
            if kind == "kw" and value == "from" and depth == 0:
                return
            depth += {"(": 1, ")": -1}.get(value, 0) if kind == "punct" else 0
            self.position += 1

    def _select_list(self) -> list[SelectItem] | None:
        if self.accept("punct", "*"):
            return None
        items = []
        while True:
            items.append(self._select_item(len(items) + 1))
            if not self.accept("punct", ","):
                return items

    def _select_item(self, number: int) -> SelectItem:
        kind, value = self.peek()
        if kind == "name" and value.lower() == "count" and self.peek(1) == ("punct", "("):
            self.position += 2
            self.expect("punct", "*")
            self.expect("punct", ")")
            return SelectItem("*", self._alias(f"expr{number}"), function="count")
        if kind == "name" and value.lower() == "to_char" and self.peek(1) == ("punct", "("):
            self.position += 2
            column = self.column()
            self.expect("punct", ",")
            fmt = _unquote(self.expect("string"))
            date_format(fmt)
            self.expect("punct", ")")
            return SelectItem(column, self._alias(f"expr{number}"), function="to_char", format=fmt)
        column = self.column()
        return SelectItem(column, self._alias(column))

    def _alias(self, default: str) -> str:
        if self.accept("kw", "as"):
            return self.expect("name").lower()
        if self.peek()[0] == "name":  # an alias without AS
            return self.take()[1].lower()
        return default

    # -- conditions ----------------------------------------------------------------------------
    def _or(self) -> Any:
        children = [self._and()]
        while self.accept("kw", "or"):
            children.append(self._and())
        return children[0] if len(children) == 1 else Logical("or", tuple(children))

    def _and(self) -> Any:
        children = [self._not()]
        while self.accept("kw", "and"):
            children.append(self._not())
        return children[0] if len(children) == 1 else Logical("and", tuple(children))

    def _not(self) -> Any:
        if self.accept("kw", "not"):
            return Logical("not", (self._not(),))
        if self.accept("punct", "("):
            inner = self._or()
            self.expect("punct", ")")
            return inner
        return self._comparison()

    def _comparison(self) -> Comparison:
        column = self.column()
        kind, value = self.take()
        if kind == "op":
            return Comparison(column, "!=" if value == "<>" else value, self._value())
        negated = False
        if kind == "kw" and value == "not":
            negated = True
            kind, value = self.take()
        if kind == "kw" and value == "like":
            return Comparison(column, "not like" if negated else "like", self._value())
        if kind == "kw" and value == "in":
            self.expect("punct", "(")
            values = [self._value()]
            while self.accept("punct", ","):
                values.append(self._value())
            self.expect("punct", ")")
            return Comparison(column, "not in" if negated else "in", tuple(values))
        if kind == "kw" and value == "is" and not negated:
            is_not = self.accept("kw", "not")
            self.expect("kw", "null")
            return Comparison(column, "is not null" if is_not else "is null")
        if kind == "kw" and value == "between" and not negated:
            low = self._value()
            self.expect("kw", "and")
            return Comparison(column, "between", (low, self._value()))
        raise SuiteQLError(f"Unsupported condition on {column} near {value or 'the end'}")

    def _value(self) -> Any:
        kind, value = self.take()
        if kind == "string":
            return _unquote(value)
        if kind == "number":
            return Decimal(value)
        if kind == "name" and value.lower() in {"to_date", "to_timestamp"}:
            self.expect("punct", "(")
            text = _unquote(self.expect("string"))
            fmt = "YYYY-MM-DD"
            if self.accept("punct", ","):
                fmt = _unquote(self.expect("string"))
            self.expect("punct", ")")
            try:
                moment = dt.datetime.strptime(text, date_format(fmt)).replace(tzinfo=dt.UTC)
            except ValueError as exc:
                raise SuiteQLError(f"Invalid date {text!r} for format {fmt}") from exc
            return moment.date() if value.lower() == "to_date" else moment
        raise SuiteQLError(f"Expected a value but found {value or 'the end'}")


def _unquote(token: str) -> str:
    return token[1:-1].replace("''", "'")


def suiteql_parse(text: str) -> SuiteQLQuery:
    """Parse a SuiteQL statement of the supported subset; raises SuiteQLError."""
    if not isinstance(text, str) or not text.strip():
        raise SuiteQLError("The query is empty")
    return _Parser(text).parse()
