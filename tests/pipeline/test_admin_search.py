"""Following a trace in the ops admin: a pasted correlation id lists the rows carrying it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from sync.pipeline.inbox import inbox_store

pytestmark = pytest.mark.django_db

TRACE = "3f2a9c0d5b7e4a1f8c6d2e0b9a7f5c3d"


@pytest.fixture
def admin_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("ops", password="unused-123"))
    return client


def _listed(client, query: str) -> set[str]:
    page = client.get(reverse("admin:pipeline_inboxitem_changelist"), {"q": query})
    assert page.status_code == 200
    return {item.external_id for item in page.context["cl"].result_list}


def test_a_pasted_correlation_id_lists_its_trace_and_other_terms_search_as_before(admin_client):
    inbox_store(
        system="psa", entity="time_entry", records=[("te-1", {"h": "1"})], correlation_id=TRACE
    )
    inbox_store(
        system="psa", entity="time_entry", records=[("te-2", {"h": "2"})], correlation_id=TRACE
    )
    # An external id that merely contains the trace id: a substring search would list it too.
    inbox_store(
        system="psa",
        entity="time_entry",
        records=[(f"note-{TRACE}", {"h": "3"})],
        correlation_id="another-run",
    )

    assert _listed(admin_client, f"  {TRACE} ") == {"te-1", "te-2"}
    assert _listed(admin_client, "correlation:another-run") == {f"note-{TRACE}"}
    assert _listed(admin_client, "correlation:te-1") == set()  # exact: no row carries "te-1"
    assert _listed(admin_client, TRACE[:12]) == {f"note-{TRACE}", "te-1", "te-2"}  # icontains
    assert _listed(admin_client, "te-1") == {"te-1"}
    assert _listed(admin_client, "no-such-trace") == set()


def test_a_hex_term_no_row_carries_as_its_correlation_id_searches_as_usual(admin_client):
    """Only terms of this product's own id form take the exact path, and only when it finds
    something: a 32-hex external id is still found by a plain search."""
    inbox_store(
        system="psa",
        entity="time_entry",
        records=[(TRACE, {"h": "1"})],
        correlation_id="sender-supplied-id",
    )
    assert _listed(admin_client, TRACE) == {TRACE}
    assert _listed(admin_client, "sender-supplied-id") == {TRACE}
