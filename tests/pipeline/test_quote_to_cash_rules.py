"""The customer-onboarding rules, pure: duplicate keys, tax and credit checks."""

from __future__ import annotations

import pytest

from sync.pipeline.quote_to_cash.rules import (
    Candidate,
    account_refusal,
    country_normalise,
    credit_status_canonical,
    duplicates_find,
    name_normalise,
    tax_key,
)

ACME = Candidate(
    customer_id=7, name="Acme Holdings Ltd.", tax_registration="GB123456789", country="GB"
)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Acme Holdings Ltd.", "ACME HOLDINGS LTD"),  # the planted CRM duplicate: case, dots
        ("Acme Holdings Ltd", "Acme Holdings Ltd."),  # the planted ERP duplicate: a trailing dot
        ("Acme  Holdings Limited", "acme holdings"),  # spacing, legal form
        ("Müller Technik GmbH", "MULLER TECHNIK"),  # accents, legal form
    ],
)
def test_names_differing_only_in_case_punctuation_spacing_or_legal_form_normalise_alike(
    first, second
):
    assert name_normalise(first) == name_normalise(second)


def test_different_companies_keep_different_names():
    assert name_normalise("Acme Holdings Ltd") != name_normalise("Acme Logistics Ltd")


@pytest.mark.parametrize(
    ("tax", "country", "key"),
    [
        ("GB 123 456 789", "GB", "GB123456789"),
        ("gb123456789", "United Kingdom", "GB123456789"),
        ("ATU12345678", "DE", "ATU12345678"),  # a VAT number names its own country
        ("12-3456789", "US", "US:123456789"),
        ("12-3456789", "United States", "US:123456789"),
        ("", "GB", ""),
    ],
)
def test_a_tax_registration_compares_without_punctuation_and_with_its_country(tax, country, key):
    assert tax_key(tax, country) == key


def test_country_names_and_codes_read_as_iso_codes():
    assert [country_normalise(c) for c in ("gb", "Germany", "Atlantis")] == ["GB", "DE", ""]


@pytest.mark.parametrize(
    ("name", "tax", "country", "found"),
    [
        ("ACME HOLDINGS LTD", "GB123456789", "GB", [7]),  # same company, re-keyed
        ("Acme Holdings", "", "GB", [7]),  # same name, same country, no tax id
        ("Acme Holdings", "", "US", []),  # same name in another country: another company
        ("Renamed Ltd", "GB 123 456 789", "GB", [7]),  # same tax registration
        ("Renamed Ltd", "123456789", "US", []),  # same digits, another country's register
        ("Other Ltd", "GB999999999", "GB", []),
    ],
)
def test_a_suspected_duplicate_shares_the_name_in_its_country_or_the_tax_registration(
    name, tax, country, found
):
    twins = duplicates_find(name=name, tax_registration=tax, country=country, candidates=[ACME])
    assert [t.customer_id for t in twins] == found


@pytest.mark.parametrize(
    ("tax", "credit", "code"),
    [
        ("", "Approved", "TAX_REGISTRATION_MISSING"),
        ("   ", "Approved", "TAX_REGISTRATION_MISSING"),
        ("GB123", "Rejected", "CREDIT_BLOCKED"),
        ("GB123", "On Hold", "CREDIT_BLOCKED"),
        ("GB123", "Pending", None),
        ("GB123", "Approved", None),
        ("GB123", "", None),
    ],
)
def test_an_account_without_tax_registration_or_with_blocked_credit_is_refused(tax, credit, code):
    refusal = account_refusal(tax_registration=tax, credit_status=credit)
    assert (refusal.code if refusal else None) == code


@pytest.mark.parametrize(
    ("crm", "canonical"),
    [("Approved", "good"), ("Pending", "watch"), ("Rejected", "refused"), ("", "unchecked")],
)
def test_crm_credit_statuses_map_to_the_canonical_ones(crm, canonical):
    assert credit_status_canonical(crm) == canonical
