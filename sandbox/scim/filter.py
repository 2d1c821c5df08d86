"""A SCIM filter subset (RFC 7644 §3.4.2.2), parsed without touching the database.

Supported: `attrPath op value` joined by `and`; ops eq ne co sw ew gt ge lt le and `pr`;
values "JSON strings", true, false, null, numbers. Attribute paths are case-insensitive and may
be URN-qualified (`urn:…:enterprise:2.0:User:employeeNumber`, `…:manager.value`).
Not supported (400 invalidFilter): `or`, `not`, parentheses, value paths `emails[type eq …]`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from sandbox.scim.schema import ENTERPRISE_URN

OPERATORS = {"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr"}

# Attribute path (lower case) -> canonical path: a tuple of keys below the stored User.
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "id": ("id",),
    "externalid": ("externalId",),
    "username": ("userName",),
    "displayname": ("displayName",),
    "title": ("title",),
    "usertype": ("userType",),
    "active": ("active",),
    "name.givenname": ("name", "givenName"),
    "name.familyname": ("name", "familyName"),
    "meta.lastmodified": ("meta", "lastModified"),
    "meta.created": ("meta", "created"),
    "employeenumber": (ENTERPRISE_URN, "employeeNumber"),
    "costcenter": (ENTERPRISE_URN, "costCenter"),
    "organization": (ENTERPRISE_URN, "organization"),
    "department": (ENTERPRISE_URN, "department"),
    "manager.value": (ENTERPRISE_URN, "manager", "value"),
}

_TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<paren>[()\[\]])|(?P<word>[^\s()\[\]"]+))'
)


class ScimFilterError(Exception):
    pass


@dataclass(frozen=True)
class Comparison:
    path: tuple[str, ...]
    op: str
    value: Any = None


def _attribute(raw: str) -> tuple[str, ...]:
    lowered = raw.lower()
    urn_prefix = ENTERPRISE_URN.lower() + ":"
    if lowered.startswith(urn_prefix):
        lowered = lowered[len(urn_prefix) :]
    elif lowered.startswith("urn:ietf:params:scim:schemas:core:2.0:user:"):
        lowered = lowered[len("urn:ietf:params:scim:schemas:core:2.0:user:") :]
    path = ATTRIBUTES.get(lowered)
    if path is None:
        raise ScimFilterError(f"Unsupported or unknown attribute in filter: {raw}")
    return path


def _value(token: str, kind: str) -> Any:
    if kind == "string":
        return json.loads(token)
    lowered = token.lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    if lowered == "null":
        return None
    try:
        value = json.loads(token)
    except ValueError:
        raise ScimFilterError(f"Invalid comparison value: {token}") from None
    # Python reads Infinity, NaN and 1e400 as floats that are no JSON (RFC 8259) at all.
    if isinstance(value, float) and not math.isfinite(value):
        raise ScimFilterError(f"Invalid comparison value: {token}")
    return value


def scim_filter_parse(text: str) -> list[Comparison]:
    """The comparisons (all joined by `and`); raises ScimFilterError on anything else."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ScimFilterError(f"Unparseable filter near: {text[pos : pos + 20]}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    if not tokens:
        raise ScimFilterError("Empty filter")
    comparisons: list[Comparison] = []
    index = 0
    while True:
        if index >= len(tokens) or tokens[index][0] != "word":
            raise ScimFilterError("Expected an attribute path; parentheses are not supported")
        if tokens[index][1].lower() == "not":
            raise ScimFilterError("'not' is not supported by the sandbox")
        path = _attribute(tokens[index][1])
        if index + 1 >= len(tokens) or tokens[index + 1][0] != "word":
            raise ScimFilterError("Expected an operator after the attribute path")
        op = tokens[index + 1][1].lower()
        if op not in OPERATORS:
            raise ScimFilterError(f"Unknown operator: {tokens[index + 1][1]}")
        if op == "pr":
            comparisons.append(Comparison(path, op))
            index += 2
        else:
            if index + 2 >= len(tokens) or tokens[index + 2][0] == "paren":
                raise ScimFilterError(f"Operator {op} needs a value")
            kind, raw = tokens[index + 2]
            comparisons.append(Comparison(path, op, _value(raw, kind)))
            index += 3
        if index == len(tokens):
            return comparisons
        joiner = tokens[index][1].lower()
        if joiner == "or":
            raise ScimFilterError("'or' is not supported by the sandbox")
        if joiner != "and":
            raise ScimFilterError(f"Expected 'and', found {tokens[index][1]}")
        index += 1
