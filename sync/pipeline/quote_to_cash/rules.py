"""The customer-onboarding rules, pure (no database): duplicate keys, tax and credit checks.

A CRM account is checked before it may become an ERP customer:
- duplicates: an ERP customer with the same normalised name in the same country, or the same
  tax registration (normalised, qualified by its country), is a suspected duplicate: the deal
  waits for the customer-master team, never a second customer (decision 80);
- a customer without a tax registration is not created (the ERP needs it to invoice);
- credit: "Rejected" and "On Hold" accounts are not onboarded; "Pending" is onboarded with the
  credit status `watch` (the ERP owns the credit decision afterwards).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Legal-form words dropped from a name before comparing ("Acme Ltd." = "ACME LIMITED").
LEGAL_FORMS = frozenset(
    {"ltd", "limited", "llc", "inc", "corp", "corporation", "gmbh", "ag", "bv", "nv", "sa",
     "sas", "sarl", "plc", "co", "company", "kg", "oy", "ab", "as", "spa", "srl"}
)  # fmt: skip
# Country names as CRM users type them → ISO 3166 alpha-2 (the rest must already be codes).
COUNTRY_NAMES = {
    "united states": "US", "usa": "US", "united kingdom": "GB", "uk": "GB",
    "great britain": "GB", "germany": "DE", "deutschland": "DE", "austria": "AT",
    "france": "FR", "netherlands": "NL", "the netherlands": "NL",
}  # fmt: skip
_VAT_PREFIX = re.compile(r"^[A-Z]{2}(?=[0-9A-Z]*[0-9])")

CREDIT_STATUS = {"Approved": "good", "Pending": "watch", "": "unchecked"}
CREDIT_BLOCKED = {"Rejected": "refused", "On Hold": "watch"}


def name_normalise(name: str) -> str:
    """A company name as the duplicate check compares it: accents, case, punctuation, spacing
    and legal-form words removed ("Acme Holdings Ltd." and "ACME HOLDINGS LTD" agree)."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    words = re.findall(r"[a-z0-9]+", plain)
    kept = [w for w in words if w not in LEGAL_FORMS] or words
    return "".join(kept)


def country_normalise(country: str) -> str:
    """ISO alpha-2 of a CRM country (code or common name); "" when unknown."""
    text = country.strip()
    if len(text) == 2 and text.isalpha():
        return text.upper()
    return COUNTRY_NAMES.get(text.lower(), "")


def tax_key(tax_registration: str, country: str) -> str:
    """A tax registration as the duplicate check compares it: upper case without spaces or
    punctuation, qualified by its country (an EU VAT number names its own; otherwise the
    record's country). "" when there is none."""
    compact = re.sub(r"[^0-9A-Za-z]", "", tax_registration).upper()
    if not compact:
        return ""
    if _VAT_PREFIX.match(compact):
        return compact
    return f"{country_normalise(country) or '??'}:{compact}"


@dataclass(frozen=True)
class Candidate:
    """An ERP customer the account is compared with."""

    customer_id: int
    name: str
    tax_registration: str
    country: str


def duplicates_find(
    *, name: str, tax_registration: str, country: str, candidates: list[Candidate]
) -> list[Candidate]:
    """The candidates the account may duplicate (same normalised name in the same country, or
    the same country-qualified tax registration), in the order given."""
    name_key = name_normalise(name)
    own_country = country_normalise(country)
    own_tax = tax_key(tax_registration, country)
    found = []
    for candidate in candidates:
        same_name = name_key and name_normalise(candidate.name) == name_key
        same_country = (
            not own_country
            or not candidate.country
            or (country_normalise(candidate.country) == own_country)
        )
        same_tax = own_tax and tax_key(candidate.tax_registration, candidate.country) == own_tax
        if (same_name and same_country) or same_tax:
            found.append(candidate)
    return found


@dataclass(frozen=True)
class Refusal:
    code: str
    message: str
    fix: str


def account_refusal(*, tax_registration: str, credit_status: str) -> Refusal | None:
    """Why an account may not become an ERP customer yet (tax, then credit), or None."""
    if not tax_registration.strip():
        return Refusal(
            code="TAX_REGISTRATION_MISSING",
            message="The account has no tax registration: the ERP cannot invoice it.",
            fix="Enter the customer's tax registration on the CRM account; the deal is "
            "onboarded at the next cycle.",
        )
    if credit_status in CREDIT_BLOCKED:
        return Refusal(
            code="CREDIT_BLOCKED",
            message=f"The account's credit status is {credit_status}: it is not onboarded.",
            fix="Clear the credit check with finance and update the CRM account's credit status.",
        )
    return None


def credit_status_canonical(credit_status: str) -> str:
    """The canonical credit status of a CRM credit status (unknown values: unchecked)."""
    return CREDIT_STATUS.get(credit_status, CREDIT_BLOCKED.get(credit_status, "unchecked"))
