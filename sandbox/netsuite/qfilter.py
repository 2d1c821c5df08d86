"""The record service's `q` parameter (GET /record/v1/{type}?q=…), parsed into SuiteQL conditions.

Grammar (a subset of "Record Collection Filtering" in the REST guide):
    condition (AND|OR condition)*     AND binds tighter than OR, as in the guide's examples
    condition = field OPERATOR [value | [v1, v2] | v1 v2 for BETWEEN]
Operators: IS, IS_NOT, EQUAL, EQUAL_NOT, GREATER, GREATER_OR_EQUAL, LESS, LESS_OR_EQUAL,
CONTAIN, CONTAIN_NOT, START_WITH, END_WITH, EMPTY, EMPTY_NOT, ANY_OF, BETWEEN, ON, AFTER,
BEFORE, ON_OR_AFTER, ON_OR_BEFORE. Values are bare words or "double quoted"; dates "1/31/2026"
or 2026-01-31. e.g. `companyName START_WITH "Acme" AND isInactive IS false`.
"""

from __future__ import annotations

import re
from typing import Any

from sandbox.netsuite.suiteql import Comparison, Logical, SuiteQLError

_TOKEN = re.compile(r'\s*(?:"(?P<quoted>[^"]*)"|(?P<punct>[\[\],])|(?P<word>[^\s\[\],"]+))')
_BINARY = {
    "IS": "=",
    "EQUAL": "=",
    "ON": "=",
    "IS_NOT": "!=",
    "EQUAL_NOT": "!=",
    "GREATER": ">",
    "AFTER": ">",
    "GREATER_OR_EQUAL": ">=",
    "ON_OR_AFTER": ">=",
    "LESS": "<",
    "BEFORE": "<",
    "LESS_OR_EQUAL": "<=",
    "ON_OR_BEFORE": "<=",
}
_LIKE = {"CONTAIN": "%{}%", "START_WITH": "{}%", "END_WITH": "%{}", "CONTAIN_NOT": "%{}%"}


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise SuiteQLError(f"Invalid query near {text[position:][:20]!r}")
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def q_parse(text: str) -> Any:
    """The condition tree of a `q` expression; raises SuiteQLError."""
    tokens = _tokens(text)
    position = 0

    def take() -> tuple[str, str]:
        nonlocal position
        if position >= len(tokens):
            raise SuiteQLError("The query ends too early")
        token = tokens[position]
        position += 1
        return token

    def value() -> str:
        kind, text_value = take()
        if kind == "punct":
            raise SuiteQLError(f"Expected a value but found {text_value}")
        return text_value

    def condition() -> Comparison:
        kind, field_name = take()
        if kind != "word":
            raise SuiteQLError(f"Expected a field name but found {field_name}")
        _kind, operator = take()
        operator = operator.upper()
        if operator in _BINARY:
            return Comparison(field_name, _BINARY[operator], value())
        if operator in _LIKE:
            op = "not like" if operator.endswith("_NOT") else "like"
            return Comparison(field_name, op, _LIKE[operator].format(value()))
        if operator in {"EMPTY", "EMPTY_NOT"}:
            return Comparison(field_name, "is null" if operator == "EMPTY" else "is not null")
        if operator == "BETWEEN":
            return Comparison(field_name, "between", (value(), value()))
        if operator in {"ANY_OF", "ANY_OF_NOT"}:
            values = []
            bracketed = position < len(tokens) and tokens[position] == ("punct", "[")
            if bracketed:
                take()
            while True:
                values.append(value())
                if position < len(tokens) and tokens[position] == ("punct", ","):
                    take()
                    continue
                break
            if bracketed and take() != ("punct", "]"):
                raise SuiteQLError("Expected ] after the ANY_OF values")
            return Comparison(field_name, "in" if operator == "ANY_OF" else "not in", tuple(values))
        raise SuiteQLError(f"Unsupported operator {operator}")

    groups: list[list[Any]] = [[condition()]]
    while position < len(tokens):
        _kind, joiner = take()
        if joiner.upper() == "AND":
            groups[-1].append(condition())
        elif joiner.upper() == "OR":
            groups.append([condition()])
        else:
            raise SuiteQLError(f"Expected AND or OR but found {joiner}")
    ands = [group[0] if len(group) == 1 else Logical("and", tuple(group)) for group in groups]
    return ands[0] if len(ands) == 1 else Logical("or", tuple(ands))
