"""A SOQL subset: parse and check a query against the sandbox's sObject schema. Pure (no DB).

Supported (https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/):
    SELECT Id, Name, … | COUNT()  FROM <sObject>
    [WHERE <field> <op> <literal> [AND …]]    ops: = != <> < <= > >= LIKE IN NOT IN
    [ORDER BY <field> [ASC|DESC] [NULLS FIRST|LAST], …]
    [LIMIT n] [OFFSET n]
Literals: 'strings' (backslash escapes), numbers, TRUE/FALSE, NULL, date literals 2024-01-31 and
dateTime literals 2024-01-31T10:00:00Z / …+01:00 / ….000Z (unquoted, as SOQL requires).
Not supported (MALFORMED_QUERY): OR, NOT, parentheses, relationship fields (Account.Name),
sub-queries, GROUP BY, aggregate functions other than COUNT(), relative date literals.
Errors carry Salesforce's codes: MALFORMED_QUERY, INVALID_TYPE, INVALID_FIELD,
NUMBER_OUTSIDE_VALID_RANGE.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sandbox.core.params import aware_datetime
from sandbox.salesforce.schema import FieldSpec, ObjectSpec, object_spec

MAX_OFFSET = 2000

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[,()])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*(?::\d+)?)
    """,
    re.VERBOSE | re.ASCII,
)

_NUMERIC = {"currency", "double", "percent", "int"}
_TEXT = {"string", "picklist", "reference", "id"}
_TYPE_NAMES = {"datetime": "dateTime", "date": "date", "boolean": "boolean"}


class SoqlError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Token:
    kind: str
    text: str


@dataclass(frozen=True)
class Condition:
    field: FieldSpec
    op: str  # = != < <= > >= LIKE IN NOT IN
    value: Any  # str, Decimal, bool, None, date, datetime, or a tuple of those for IN


@dataclass(frozen=True)
class Ordering:
    field: FieldSpec
    descending: bool = False
    nulls_last: bool | None = None


@dataclass
class SoqlQuery:
    obj: ObjectSpec
    fields: list[FieldSpec] = field(default_factory=list)
    count_only: bool = False
    where: list[Condition] = field(default_factory=list)
    order_by: list[Ordering] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None


def soql_tokenize(text: str) -> list[Token]:
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{text[pos : pos + 20]}'")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, match.group()))
        pos = match.end()
    return tokens


def soql_parse(text: str) -> SoqlQuery:
    """Parse and check `text`; raises SoqlError with Salesforce's error code."""
    return _Parser(soql_tokenize(text)).query()


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    # -- token helpers ------------------------------------------------------------------------
    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def next(self) -> Token:
        token = self.peek()
        if token is None:
            raise SoqlError("MALFORMED_QUERY", "unexpected end of query")
        self.pos += 1
        return token

    def keyword(self, *words: str) -> bool:
        """Consume the keywords if they come next (case-insensitive)."""
        upcoming = self.tokens[self.pos : self.pos + len(words)]
        if len(upcoming) == len(words) and all(
            t.kind == "ident" and t.text.upper() == w for t, w in zip(upcoming, words, strict=True)
        ):
            self.pos += len(words)
            return True
        return False

    def expect_keyword(self, word: str) -> None:
        if not self.keyword(word):
            token = self.peek()
            found = token.text if token else "end of query"
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{found}', expected {word}")

    def expect(self, kind: str, text: str | None = None) -> Token:
        token = self.next()
        if token.kind != kind or (text is not None and token.text != text):
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{token.text}'")
        return token

    # -- grammar ------------------------------------------------------------------------------
    def query(self) -> SoqlQuery:
        self.expect_keyword("SELECT")
        names, count_only = self.select_list()
        self.expect_keyword("FROM")
        obj_name = self.expect("ident").text
        obj = object_spec(obj_name)
        if obj is None:
            raise SoqlError("INVALID_TYPE", f"sObject type '{obj_name}' is not supported.")
        query = SoqlQuery(obj=obj, count_only=count_only)
        query.fields = [self.field(obj, name) for name in names]
        if self.keyword("WHERE"):
            query.where.append(self.condition(obj))
            while self.keyword("AND"):
                query.where.append(self.condition(obj))
            if self.keyword("OR") or self.keyword("NOT"):
                raise SoqlError("MALFORMED_QUERY", "OR and NOT are not supported by the sandbox")
        if self.keyword("ORDER", "BY"):
            query.order_by.append(self.ordering(obj))
            while self.peek() is not None and self.peek().text == ",":
                self.next()
                query.order_by.append(self.ordering(obj))
        if self.keyword("LIMIT"):
            query.limit = self.integer("LIMIT")
        if self.keyword("OFFSET"):
            query.offset = self.integer("OFFSET")
            if query.offset > MAX_OFFSET:
                raise SoqlError(
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    f"Maximum SOQL offset allowed is {MAX_OFFSET}",
                )
        leftover = self.peek()
        if leftover is not None:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{leftover.text}'")
        return query

    def select_list(self) -> tuple[list[str], bool]:
        if self.keyword("COUNT"):
            self.expect("punct", "(")
            self.expect("punct", ")")
            return [], True
        names = [self.expect("ident").text]
        while self.peek() is not None and self.peek().text == ",":
            self.next()
            names.append(self.expect("ident").text)
        return names, False

    def field(self, obj: ObjectSpec, name: str) -> FieldSpec:
        if "." in name:
            raise SoqlError(
                "INVALID_FIELD",
                f"Didn't understand relationship '{name.split('.')[0]}' in field path. "
                "The sandbox does not support relationship queries.",
            )
        spec = obj.field(name)
        if spec is None:
            raise SoqlError(
                "INVALID_FIELD",
                f"No such column '{name}' on entity '{obj.name}'. If you are attempting to use "
                "a custom field, be sure to append the '__c' after the custom field name.",
            )
        return spec

    def integer(self, clause: str) -> int:
        token = self.next()
        if token.kind != "number" or not token.text.isdigit():
            raise SoqlError("MALFORMED_QUERY", f"{clause} expects a non-negative integer")
        return int(token.text)

    def ordering(self, obj: ObjectSpec) -> Ordering:
        spec = self.field(obj, self.expect("ident").text)
        descending = False
        if self.keyword("DESC"):
            descending = True
        else:
            self.keyword("ASC")
        nulls_last = None
        if self.keyword("NULLS", "FIRST"):
            nulls_last = False
        elif self.keyword("NULLS", "LAST"):
            nulls_last = True
        return Ordering(field=spec, descending=descending, nulls_last=nulls_last)

    def condition(self, obj: ObjectSpec) -> Condition:
        token = self.peek()
        if token is not None and token.text == "(":
            raise SoqlError("MALFORMED_QUERY", "parentheses are not supported by the sandbox")
        spec = self.field(obj, self.expect("ident").text)
        if self.keyword("NOT", "IN"):
            return Condition(spec, "NOT IN", self.value_list(spec))
        if self.keyword("IN"):
            return Condition(spec, "IN", self.value_list(spec))
        if self.keyword("LIKE"):
            value = self.value(spec)
            if not isinstance(value, str):
                raise SoqlError("INVALID_FIELD", f"LIKE on '{spec.name}' expects a string")
            return Condition(spec, "LIKE", value)
        op = self.expect("op").text
        op = "!=" if op == "<>" else op
        value = self.value(spec)
        if value is None and op not in {"=", "!="}:
            raise SoqlError("MALFORMED_QUERY", f"null can only be compared with = or != ({op})")
        return Condition(spec, op, value)

    def value_list(self, spec: FieldSpec) -> tuple[Any, ...]:
        self.expect("punct", "(")
        values = [self.value(spec)]
        while self.peek() is not None and self.peek().text == ",":
            self.next()
            values.append(self.value(spec))
        self.expect("punct", ")")
        return tuple(values)

    def value(self, spec: FieldSpec) -> Any:
        token = self.next()
        if token.kind == "ident" and token.text.upper() == "NULL":
            return None
        expected = _TYPE_NAMES.get(spec.type, "number" if spec.type in _NUMERIC else "string")
        if spec.type in _TEXT:
            if token.kind != "string":
                raise _type_error(spec, expected, token)
            return _unquote(token.text)
        if spec.type in _NUMERIC:
            if token.kind != "number":
                raise _type_error(spec, expected, token)
            return Decimal(token.text)
        if spec.type == "boolean":
            if token.kind != "ident" or token.text.upper() not in {"TRUE", "FALSE"}:
                raise _type_error(spec, expected, token)
            return token.text.upper() == "TRUE"
        if spec.type == "date":
            if token.kind != "date":
                raise _type_error(spec, expected, token)
            try:
                return dt.date.fromisoformat(token.text)
            except ValueError as exc:
                raise SoqlError("MALFORMED_QUERY", f"invalid date: {token.text}") from exc
        if token.kind != "datetime":
            raise _type_error(spec, expected, token)
        moment = aware_datetime(token.text)
        if moment is None:
            raise SoqlError("MALFORMED_QUERY", f"invalid dateTime: {token.text}")
        return moment


def _type_error(spec: FieldSpec, expected: str, token: Token) -> SoqlError:
    if token.kind == "ident" and token.text.upper() not in {"TRUE", "FALSE", "NULL"}:
        return SoqlError("MALFORMED_QUERY", f"unexpected token: '{token.text}'")
    quoting = (
        " and should not be enclosed in quotes"
        if token.kind == "string"
        else " and should be enclosed in quotes"
        if expected == "string"
        else ""
    )
    return SoqlError(
        "INVALID_FIELD",
        f"value of filter criterion for field '{spec.name}' must be of type {expected}{quoting}",
    )


def _unquote(literal: str) -> str:
    body = literal[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m[1], m[1]), body)
