"""Issue 16, done-when 2, on the real stack: a deal closed through the CRM's REST API, then
`manage.py sync cycle` twice against the sandbox served over HTTP, on PostgreSQL."""

from __future__ import annotations

import io

import httpx
import pytest
from django.core.management import call_command

from sync.models import Customer, Project
from sync.pipeline.models import Delivery, ExceptionItem
from tests.pipeline.test_quote_to_cash_cycle import (
    deal_close,
    onboarded_check,
    prospect_deal,
    sandbox_counts,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases=["default", "sandbox"]),
]


def sync_cycle() -> str:
    out = io.StringIO()
    call_command("sync", "cycle", stdout=out)
    return out.getvalue()


def test_closing_a_deal_then_two_cycles_gives_one_customer_one_job_one_workspace(
    served_sandbox, tmp_path
):
    call_command(
        "sandbox", "seed", "--scale", "300", "--seed", "16", "--reset",
        "--manifest", str(tmp_path / "manifest.json"), stdout=io.StringIO(),
    )  # fmt: skip
    call_command("sandbox", "connect", "--base-url", served_sandbox.base_url, stdout=io.StringIO())
    first = sync_cycle()
    assert "crm/Opportunity" in first  # the cycle prints its counts per flow
    customers, projects = Customer.objects.count(), Project.objects.count()
    deal, account = prospect_deal()
    before = sandbox_counts()

    with httpx.Client(base_url=served_sandbox.base_url) as http:
        deal_close(http, deal=deal, account=account)
    second = sync_cycle()
    sync_cycle()

    won = onboarded_check(before=before, account=account)
    assert (Customer.objects.count(), Project.objects.count()) == (customers + 1, projects + 1)
    assert "quote to cash: customers accepted 1" in second
    traced = Delivery.objects.filter(correlation_id=won.correlation_id)
    # customer, CRM link, billing customer, job, 3 ERP tasks, workspace, 3 stories
    assert traced.count() == traced.filter(state="delivered").count() == 11
    assert not ExceptionItem.objects.filter(correlation_id=won.correlation_id).exists()
