"""The Salesforce objects the sandbox knows: Account, Opportunity, Contract (the SOW).

Record storage (`SandboxRecord`, system "salesforce", object_type = the sObject name):
- `data` holds the writable fields by their API names (custom fields end in `__c`);
- `Id`, `CreatedDate`, `LastModifiedDate`, `SystemModstamp`, `IsDeleted` come from columns;
- `external_id` holds `Ledgerbridge_Id__c` (the external-id field connectors upsert by);
- `parent_id` holds the numeric id of `AccountId`; `status` holds StageName / Status.

Ids are 18 characters: the object's key prefix ("001" Account, "006" Opportunity, "800"
Contract) and the record's numeric id, zero-padded (real ids are base-62; connectors treat
them as opaque strings either way).
"""

from __future__ import annotations

from dataclasses import dataclass, field

SYSTEM = "salesforce"
EXTERNAL_ID_FIELD = "Ledgerbridge_Id__c"
BATCH_SIZE = 2000
MIN_BATCH_SIZE = 200


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str  # id string picklist reference currency double percent int date datetime boolean
    required: bool = False
    writable: bool = True
    picklist: tuple[str, ...] = ()
    references: str = ""  # target sObject of a reference field
    external_id: bool = False
    length: int = 255


@dataclass(frozen=True)
class ObjectSpec:
    name: str
    key_prefix: str
    fields: dict[str, FieldSpec] = field(default_factory=dict)
    status_field: str = ""  # stored in the indexed `status` column
    parent_field: str = ""  # reference stored in the indexed `parent_id` column

    def field(self, name: str) -> FieldSpec | None:
        """The field by API name, case-insensitively (SOQL and the REST API ignore case)."""
        return self._by_lower().get(name.lower())

    def _by_lower(self) -> dict[str, FieldSpec]:
        return {key.lower(): spec for key, spec in self.fields.items()}


def _fields(*specs: FieldSpec) -> dict[str, FieldSpec]:
    system_fields = (
        FieldSpec("Id", "id", writable=False),
        FieldSpec("CreatedDate", "datetime", writable=False),
        FieldSpec("LastModifiedDate", "datetime", writable=False),
        FieldSpec("SystemModstamp", "datetime", writable=False),
        FieldSpec("IsDeleted", "boolean", writable=False),
        FieldSpec(EXTERNAL_ID_FIELD, "string", external_id=True),
    )
    return {spec.name: spec for spec in (*system_fields, *specs)}


CURRENCIES = ("EUR", "GBP", "USD", "CHF", "SEK", "NOK", "DKK", "PLN", "CAD", "AUD", "JPY", "SGD")
BILLING_MODELS = ("Time and Materials", "Fixed Fee", "Usage")

ACCOUNT = ObjectSpec(
    name="Account",
    key_prefix="001",
    fields=_fields(
        FieldSpec("Name", "string", required=True),
        FieldSpec("AccountNumber", "string", length=40),
        FieldSpec("Type", "picklist", picklist=("Customer", "Prospect", "Partner", "Other")),
        FieldSpec("Industry", "string", length=40),
        FieldSpec("ParentId", "reference", references="Account"),
        FieldSpec("BillingStreet", "string"),
        FieldSpec("BillingCity", "string", length=40),
        FieldSpec("BillingPostalCode", "string", length=20),
        FieldSpec("BillingCountry", "string", length=80),
        FieldSpec("CurrencyIsoCode", "picklist", picklist=CURRENCIES),
        FieldSpec("Phone", "string", length=40),
        FieldSpec("Website", "string"),
        FieldSpec("ERP_Customer_Id__c", "string", external_id=True),
        FieldSpec("Tax_Registration__c", "string", length=40),
        FieldSpec(
            "Credit_Status__c", "picklist", picklist=("Approved", "Pending", "On Hold", "Rejected")
        ),
    ),
)

OPPORTUNITY = ObjectSpec(
    name="Opportunity",
    key_prefix="006",
    status_field="StageName",
    parent_field="AccountId",
    fields=_fields(
        FieldSpec("Name", "string", required=True, length=120),
        FieldSpec("AccountId", "reference", references="Account"),
        FieldSpec(
            "StageName",
            "picklist",
            required=True,
            picklist=(
                "Prospecting",
                "Qualification",
                "Proposal",
                "Negotiation",
                "Closed Won",
                "Closed Lost",
            ),
        ),
        FieldSpec("CloseDate", "date", required=True),
        FieldSpec("Amount", "currency"),
        FieldSpec("CurrencyIsoCode", "picklist", picklist=CURRENCIES),
        FieldSpec("Probability", "percent"),
        FieldSpec("Type", "string", length=40),
        FieldSpec("IsClosed", "boolean", writable=False),
        FieldSpec("IsWon", "boolean", writable=False),
        FieldSpec("Billing_Model__c", "picklist", picklist=BILLING_MODELS),
        FieldSpec("Legal_Entity__c", "string", length=40),
        FieldSpec("Description", "string", length=32000),
    ),
)

CONTRACT = ObjectSpec(
    name="Contract",
    key_prefix="800",
    status_field="Status",
    parent_field="AccountId",
    fields=_fields(
        FieldSpec("AccountId", "reference", required=True, references="Account"),
        FieldSpec("ContractNumber", "string", writable=False, length=30),
        FieldSpec("Status", "picklist", picklist=("Draft", "In Approval Process", "Activated")),
        FieldSpec("StartDate", "date"),
        FieldSpec("EndDate", "date"),
        FieldSpec("ContractTerm", "int"),
        FieldSpec("Opportunity__c", "reference", references="Opportunity"),
        FieldSpec("Billing_Model__c", "picklist", picklist=BILLING_MODELS),
        FieldSpec("Contract_Value__c", "currency"),
        FieldSpec("CurrencyIsoCode", "picklist", picklist=CURRENCIES),
        FieldSpec("SOW_Number__c", "string", length=40),
        FieldSpec("Description", "string", length=32000),
    ),
)

OBJECTS: dict[str, ObjectSpec] = {spec.name: spec for spec in (ACCOUNT, OPPORTUNITY, CONTRACT)}
_BY_PREFIX = {spec.key_prefix: spec for spec in OBJECTS.values()}


def object_spec(name: str) -> ObjectSpec | None:
    """The sObject by name, case-insensitively."""
    return next((spec for key, spec in OBJECTS.items() if key.lower() == name.lower()), None)


def sf_id(spec: ObjectSpec, pk: int) -> str:
    return f"{spec.key_prefix}{pk:015d}"


def sf_id_parse(value: str, *, expected: ObjectSpec | None = None) -> int | None:
    """The numeric id of an 18- (or 15-) character id of our format; None when malformed."""
    if not isinstance(value, str) or len(value) not in (15, 18):
        return None
    prefix, digits = value[:3], value[3:]
    if prefix not in _BY_PREFIX or not (digits.isascii() and digits.isdigit()):
        return None
    if expected is not None and prefix != expected.key_prefix:
        return None
    return int(digits)
