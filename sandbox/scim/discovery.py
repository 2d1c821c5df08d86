"""SCIM discovery's schema resources (RFC 7643 §7, served at /Schemas as RFC 7644 §4 asks).

Describes the attributes the emulator serves: the core User, the enterprise extension and the
costing extension. A SCIM client's discovery reads /ResourceTypes, then finds every schema and
extension they name under /Schemas; a missing one fails the discovery.
"""

from __future__ import annotations

from typing import Any

from sandbox.scim.schema import COSTING_URN, ENTERPRISE_URN, USER_SCHEMA

SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"


def _attribute(
    name: str,
    kind: str = "string",
    *,
    multi: bool = False,
    required: bool = False,
    case_exact: bool = False,
    mutability: str = "readOnly",
    uniqueness: str = "none",
    sub: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any]:
    """One attribute definition (RFC 7643 §7); the HR feed is read-only, so readOnly."""
    attribute: dict[str, Any] = {
        "name": name,
        "type": kind,
        "multiValued": multi,
        "description": "",
        "required": required,
        "caseExact": case_exact,
        "mutability": mutability,
        "returned": "default",
        "uniqueness": uniqueness,
    }
    if sub:
        attribute["subAttributes"] = list(sub)
    return attribute


_USER_ATTRIBUTES = (
    _attribute("userName", required=True, uniqueness="server"),
    _attribute(
        "name",
        "complex",
        sub=(_attribute("formatted"), _attribute("familyName"), _attribute("givenName")),
    ),
    _attribute("displayName"),
    _attribute("title"),
    _attribute("userType"),
    _attribute("active", "boolean"),
    _attribute(
        "emails",
        "complex",
        multi=True,
        sub=(_attribute("value"), _attribute("type"), _attribute("primary", "boolean")),
    ),
)
_ENTERPRISE_ATTRIBUTES = (
    _attribute("employeeNumber"),
    _attribute("costCenter"),
    _attribute("organization"),
    _attribute("division"),
    _attribute("department"),
    _attribute(
        "manager",
        "complex",
        sub=(
            _attribute("value", case_exact=True),
            _attribute("$ref", "reference"),
            _attribute("displayName"),
        ),
    ),
)
_COSTING_ATTRIBUTES = (
    _attribute(
        "costRate",
        "complex",
        # A decimal string, never a float: money keeps every digit.
        sub=(_attribute("amount"), _attribute("currency")),
    ),
    _attribute("effectiveFrom", "dateTime"),
)

SCHEMAS: dict[str, tuple[str, str, tuple[dict[str, Any], ...]]] = {
    USER_SCHEMA: ("User", "User Account", _USER_ATTRIBUTES),
    ENTERPRISE_URN: ("EnterpriseUser", "Enterprise User", _ENTERPRISE_ATTRIBUTES),
    COSTING_URN: ("CostingUser", "A worker's cost rate (sensitive)", _COSTING_ATTRIBUTES),
}


def schema_render(urn: str, *, base_url: str) -> dict[str, Any] | None:
    """The schema resource of `urn`; None when the emulator serves no such schema."""
    known = SCHEMAS.get(urn)
    if known is None:
        return None
    name, description, attributes = known
    return {
        "schemas": [SCHEMA_SCHEMA],
        "id": urn,
        "name": name,
        "description": description,
        "attributes": list(attributes),
        "meta": {"resourceType": "Schema", "location": f"{base_url}/Schemas/{urn}"},
    }
