"""SCIM 2.0 Users as the HR emulator serves them, and how they are stored.

`SandboxRecord` rows with system "scim", object_type "User":
- `data` holds the User's attributes by SCIM names, minus id/meta/schemas/externalId:
  userName, name {givenName, familyName, formatted}, displayName, title, userType, active,
  emails [{value, type, primary}], and the extensions under their URNs:
  ENTERPRISE_URN: {employeeNumber, costCenter, organization, division, department,
                   manager: {value: <manager's SCIM id>, displayName}}
  COSTING_URN:    {costRate: {amount: "85.00", currency: "GBP"}, effectiveFrom: "2024-01-01"}
  (cost rate is a decimal *string*, never a float);
- `external_id` is `externalId` (the HR system's worker key); `status` is "active"/"inactive";
  `parent_id` is the manager's numeric id; `updated_at` is meta.lastModified.

SCIM ids are rendered as UUID-shaped strings ending in the numeric id (hex), so connectors
cannot come to rely on integers.
"""

from __future__ import annotations

SYSTEM = "scim"
OBJECT_TYPE = "User"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
COSTING_URN = "urn:ledgerbridge:params:scim:schemas:extension:costing:2.0:User"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
MEDIA_TYPE = "application/scim+json"
DEFAULT_COUNT = 100
MAX_COUNT = 1000
_ID_PREFIX = "5c1e0000-0000-4000-8000-"


def scim_id(pk: int) -> str:
    return f"{_ID_PREFIX}{pk:012x}"


def scim_id_parse(value: str) -> int | None:
    if not value.startswith(_ID_PREFIX) or len(value) != len(_ID_PREFIX) + 12:
        return None
    try:
        return int(value[len(_ID_PREFIX) :], 16)
    except ValueError:
        return None
