"""The dry run on a draft version page: mapping admins and the auditor run it (a GET, a read),
see the totals and the changed records, and nothing is written."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from sync.mappings.models import MappingSet
from sync.mappings.services import (
    mapping_entry_set,
    mapping_version_create_draft,
    mapping_version_update,
)
from sync.models import AccountingPeriod
from sync.pipeline.models import Connection, ExceptionItem, InboxItem
from tests.pipeline.test_time_posting import (  # noqa: F401 (firm is a fixture)
    entry,
    firm,
    process,
    publish_legal_entities,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def erp_connection(db) -> Connection:
    return Connection.objects.create(
        name="erp", system="erp", dialect="netsuite", base_url="http://127.0.0.1:9/netsuite"
    )


@pytest.fixture
def draft(firm):  # noqa: F811
    """Two November entries parked LEGAL_ENTITY_UNMAPPED; a draft mapping UK01 from Nov 2."""
    process(firm, [entry(1)])
    v2 = publish_legal_entities(firm["admin"], {"DE01": "5"}, dt.date(2026, 11, 1))
    AccountingPeriod.objects.create(
        legal_entity=firm["project"].legal_entity,
        start_date=dt.date(2026, 11, 1),
        end_date=dt.date(2026, 11, 30),
        status="open",
    )
    process(firm, [entry(2, date_performed="2026-11-03"), entry(3, date_performed="2026-11-04")])
    version = mapping_version_create_draft(
        mapping_set=MappingSet.objects.get(slug="legal-entity"), based_on=v2, user=firm["admin"]
    )
    mapping_entry_set(version=version, source_value="UK01", target_value="7", user=firm["admin"])
    return mapping_version_update(
        version=version, effective_from=dt.date(2026, 11, 2), notes="", user=firm["admin"]
    )


def client_of(role_user, role: str) -> Client:
    client = Client()
    client.force_login(role_user(role, username=f"{role}-1"))
    return client


def test_the_draft_page_offers_the_dry_run_form(draft, role_user):
    page = client_of(role_user, "mapping_admin").get(f"/mappings/versions/{draft.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Dry run against the last" in html
    assert 'value="1000"' in html
    assert "dry-run-result" not in html


@pytest.mark.parametrize("role", ["mapping_admin", "auditor"])
def test_mapping_admins_and_the_auditor_run_it_and_nothing_is_written(draft, role_user, role):
    statuses = list(InboxItem.objects.order_by("id").values_list("status", flat=True))
    items = list(ExceptionItem.objects.order_by("id").values_list("status", flat=True))

    page = client_of(role_user, role).get(
        f"/mappings/versions/{draft.pk}/dry-run/", {"limit": "1000"}
    )

    assert page.status_code == 200
    html = page.content.decode()
    assert '<dd id="dry-run-changed">2</dd>' in html
    assert '<dd id="dry-run-clears">2</dd>' in html
    assert "<td>parked LEGAL_ENTITY_UNMAPPED</td><td>would post</td>" in html
    assert "subsidiary — → 7" in html
    assert '<td class="num">1,800.00 GBP</td>' in html  # the money the cleared items hold
    assert '<td class="num">900.00 GBP</td>' in html
    assert list(InboxItem.objects.order_by("id").values_list("status", flat=True)) == statuses
    assert list(ExceptionItem.objects.order_by("id").values_list("status", flat=True)) == items


def test_a_bad_limit_is_a_form_error_and_nothing_runs(draft, role_user):
    page = client_of(role_user, "auditor").get(
        f"/mappings/versions/{draft.pk}/dry-run/", {"limit": "0"}
    )
    assert page.status_code == 200
    assert page.context["dry_run"] is None
    assert page.context["dry_run_form"].errors


def test_a_role_outside_the_area_may_not_run_it(draft, role_user):
    page = client_of(role_user, "pmo").get(f"/mappings/versions/{draft.pk}/dry-run/")
    assert page.status_code == 403


def test_only_the_first_200_changed_records_are_listed(draft, role_user, monkeypatch):
    monkeypatch.setattr("portal.mappings.DRY_RUN_SHOWN", 1)
    page = client_of(role_user, "mapping_admin").get(f"/mappings/versions/{draft.pk}/dry-run/")
    assert len(page.context["dry_run_changes"]) == 1
    assert "and 1 more record not listed" in page.content.decode()
