"""External references: one per system and record, one record per system and external id."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, transaction

from sync.models import Currency, ExternalRef
from tests.factories import CurrencyFactory, CustomerFactory, ExternalRefFactory, ProjectFactory


def test_a_second_ref_for_the_same_system_and_record_is_refused(db):
    customer = CustomerFactory()
    ExternalRefFactory(record=customer, system="crm", external_id="001A")

    with pytest.raises(IntegrityError), transaction.atomic():
        ExternalRefFactory(record=customer, system="crm", external_id="001B")

    assert ExternalRef.objects.for_record(customer).count() == 1


def test_a_duplicate_external_id_in_the_same_system_and_type_is_refused(db):
    ExternalRefFactory(record=CustomerFactory(), system="erp", external_id="CUST-17")

    with pytest.raises(IntegrityError), transaction.atomic():
        ExternalRefFactory(record=CustomerFactory(), system="erp", external_id="CUST-17")

    assert ExternalRef.objects.filter(system="erp", external_id="CUST-17").count() == 1


def test_the_same_record_may_have_one_ref_in_each_system(db):
    customer = CustomerFactory()

    for system, external_id in [("crm", "0015g000001"), ("erp", "CUST-17"), ("billing", "cus_X")]:
        ExternalRefFactory(record=customer, system=system, external_id=external_id)

    refs = ExternalRef.objects.for_record(customer)
    assert {(ref.system, ref.external_id) for ref in refs} == {
        ("crm", "0015g000001"),
        ("erp", "CUST-17"),
        ("billing", "cus_X"),
    }
    assert all(ref.record == customer for ref in refs)


def test_the_same_external_id_may_name_records_of_different_types_or_systems(db):
    ExternalRefFactory(record=CustomerFactory(), system="erp", external_id="100")
    ExternalRefFactory(record=ProjectFactory(), system="erp", external_id="100")
    ExternalRefFactory(record=CustomerFactory(), system="psa", external_id="100")

    assert ExternalRef.objects.filter(external_id="100").count() == 3


def test_a_record_with_a_text_primary_key_can_be_referenced(db):
    chf = CurrencyFactory(code="CHF")

    ref = ExternalRefFactory(record=chf, system="erp", external_id="4")

    assert ref.content_type == ContentType.objects.get_for_model(Currency)
    assert ExternalRef.objects.get(pk=ref.pk).record == chf
