from __future__ import annotations

import itertools

import pytest
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from sync.pipeline.models import Connection, Delivery

_keys = itertools.count(1)


@pytest.fixture
def erp_connection(db) -> Connection:
    return Connection.objects.create(
        name="erp", system="erp", dialect="netsuite", base_url="http://127.0.0.1:9/netsuite"
    )


@pytest.fixture
def make_delivery(erp_connection):
    def make(**values) -> Delivery:
        n = next(_keys)
        defaults = {
            "connection": erp_connection,
            "operation": "erp.time_bill.upsert",
            "content_type": ContentType.objects.get_for_model(Connection),
            "object_id": str(n),
            "record_version": 1,
            "idempotency_key": f"erp:time_bill:{n}:v1",
            "external_id": f"LB-TE-{n}",
            "payload": {
                "record_type": "timeBill",
                "body": {"hours": "7.50"},
                "amount": "900.00",
                "currency": "GBP",
            },
            "next_attempt_at": timezone.now(),
            "correlation_id": f"corr-{n}",
        }
        defaults.update(values)
        return Delivery.objects.create(**defaults)

    return make
