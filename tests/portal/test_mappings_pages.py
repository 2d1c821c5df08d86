"""The Mappings area as mapping admins and the auditor use it: sets and versions, editing a
draft, review and four-eyes publishing, read-only published versions, rollback, CSV export and
import, the diff of two versions; and every action leaves history naming the person."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from sync.mappings import services
from sync.mappings.models import MappingEntry, MappingVersion
from sync.models import ExternalRef
from tests import factories as f

JAN = dt.date(2026, 1, 1)
JUL = dt.date(2026, 7, 1)
Status = MappingVersion.Status
HEADER = "source_value,target_value,attributes\n"

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(role_user):
    """`signed_in(role, name)`: a client signed in as a new user holding `role`."""

    def make(role: str, name: str) -> Client:
        client = Client()
        client.user = role_user(role, username=name)
        client.force_login(client.user)
        return client

    return make


@pytest.fixture
def maria(signed_in):
    return signed_in("mapping_admin", "maria")


@pytest.fixture
def omar(signed_in):
    return signed_in("mapping_admin", "omar")


@pytest.fixture
def legal_entity_set():
    """The legal-entity set, v1 published by the system: LB-GB → 3, LB-DE → 5; the ERP has
    subsidiaries 3, 5 and 7."""
    for subsidiary in ("3", "5", "7"):
        f.ExternalRefFactory(record=f.LegalEntityFactory(), system="erp", external_id=subsidiary)
    mapping_set = services.mapping_set_create(
        slug="legal-entity", name="Legal entity → ERP subsidiary", kind="legal_entity", user=None
    )
    v1 = services.mapping_version_create_draft(mapping_set=mapping_set, user=None)
    for source, target in {"LB-GB": "3", "LB-DE": "5"}.items():
        services.mapping_entry_set(version=v1, source_value=source, target_value=target, user=None)
    services.mapping_version_submit(version=v1, user=None)
    services.mapping_version_publish(version=v1, effective_from=JAN, user=None)
    return mapping_set


def v(mapping_set, number: int) -> MappingVersion:
    return mapping_set.versions.get(number=number)


def act(client: Client, version: MappingVersion, action: str, **data):
    return client.post(f"/mappings/versions/{version.pk}/act/", {"action": action, **data})


def said(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def entries(version: MappingVersion) -> dict[str, str]:
    return dict(version.entries.values_list("source_value", "target_value"))


def entry_history(version: MappingVersion) -> list[tuple[str, str, str]]:
    rows = MappingEntry.history.filter(version_id=version.pk).order_by("history_id")
    return [
        (h.history_type, h.source_value, h.history_user.username) for h in rows if h.history_user
    ]


def draft_of(client: Client, mapping_set, based_on: int = 1) -> MappingVersion:
    act(client, v(mapping_set, based_on), "new_draft")
    return mapping_set.versions.order_by("-number").first()


# -- reading -----------------------------------------------------------------------------------
def test_the_area_lists_each_set_with_its_versions_status_date_author_and_reviewer(
    legal_entity_set, maria, omar
):
    draft = draft_of(maria, legal_entity_set)
    act(maria, draft, "submit")
    act(omar, draft, "publish", effective_from="2026-07-01")

    page = omar.get("/mappings/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "Legal entity → ERP subsidiary" in html
    rows = [r for r in html.split("<tr ") if r.startswith("data-version")]
    assert 'data-version="2" data-status="published"' in rows[0]
    for shown in ("2026-07-01", "<td>maria</td>", "<td>omar</td>"):
        assert shown in rows[0]
    assert 'data-version="1"' in rows[1]
    assert "<td>system</td>" in rows[1]


def test_the_version_page_shows_entries_and_the_reference_data_targets_are_checked_against(
    legal_entity_set, maria
):
    page = maria.get(f"/mappings/versions/{v(legal_entity_set, 1).pk}/")

    assert page.status_code == 200
    assert [(r["source"], r["target"]) for r in page.context["rows"]] == [
        ("LB-DE", "5"),
        ("LB-GB", "3"),
    ]
    assert "an ERP subsidiary id Ledgerbridge knows (3 known)" in page.content.decode()


# -- editing a draft -----------------------------------------------------------------------------
def test_a_mapping_admin_adds_changes_and_removes_rows_of_a_draft_with_history_naming_them(
    legal_entity_set, maria
):
    draft = draft_of(maria, legal_entity_set)

    added = act(maria, draft, "entry_set", source_value="LB-NL", target_value="7")
    act(
        maria,
        draft,
        "entry_set",
        source_value="LB-DE",
        target_value="7",
        row="1",
        attributes='{"country": "DE"}',
    )
    act(maria, draft, "entry_delete", source_value="LB-GB")

    assert added.status_code == 302
    assert entries(draft) == {"LB-DE": "7", "LB-NL": "7"}
    assert draft.entries.get(source_value="LB-DE").attributes == {"country": "DE"}
    assert entry_history(draft)[-3:] == [
        ("+", "LB-NL", "maria"),
        ("~", "LB-DE", "maria"),
        ("-", "LB-GB", "maria"),
    ]
    page = maria.get(f"/mappings/versions/{draft.pk}/")
    assert "entry removed: LB-GB → 3" in page.content.decode()


@pytest.mark.parametrize(
    ("values", "error"),
    [
        ({"target_value": "99"}, "&#x27;99&#x27; is not an ERP subsidiary id Ledgerbridge knows."),
        ({"target_value": "7", "attributes": "[1, 2]"}, "Attributes are a JSON object"),
        ({"target_value": ""}, "This field is required."),
    ],
)
def test_a_bad_row_is_a_form_error_beside_the_field_and_nothing_is_written(
    legal_entity_set, maria, values, error
):
    draft = draft_of(maria, legal_entity_set)
    before = MappingEntry.history.count()

    page = act(maria, draft, "entry_set", source_value="LB-NL", **values)

    assert page.status_code == 200
    assert error in page.content.decode()
    assert page.context["add_form"].errors
    assert MappingEntry.history.count() == before
    assert "LB-NL" not in entries(draft)


def test_an_unknown_code_typed_into_an_existing_row_is_shown_on_that_row(legal_entity_set, maria):
    draft = draft_of(maria, legal_entity_set)

    page = act(maria, draft, "entry_set", source_value="LB-GB", target_value="99", row="1")

    row = next(r for r in page.context["rows"] if r["source"] == "LB-GB")
    assert row["target"] == "99"
    assert row["form"].errors["target_value"]
    assert entries(draft)["LB-GB"] == "3"


def test_the_planned_date_and_notes_of_a_draft_are_saved(legal_entity_set, maria):
    draft = draft_of(maria, legal_entity_set)

    act(maria, draft, "update", effective_from="2026-07-01", notes="Adds LB-NL.")

    draft.refresh_from_db()
    assert (draft.effective_from, draft.notes) == (JUL, "Adds LB-NL.")
    assert draft.history.latest("history_id").history_user == maria.user


# -- review and publishing ----------------------------------------------------------------------
def test_the_author_cannot_publish_their_own_version_and_a_second_admin_can(
    legal_entity_set, maria, omar
):
    draft = draft_of(maria, legal_entity_set)
    act(maria, draft, "entry_set", source_value="LB-NL", target_value="7")
    act(maria, draft, "submit")

    refused = act(maria, draft, "publish", effective_from="2026-07-01")
    refused_page = maria.get(refused.url)

    draft.refresh_from_db()
    assert draft.status == Status.IN_REVIEW
    assert any("another mapping admin must publish it" in m for m in said(refused_page))

    act(omar, draft, "publish", effective_from="2026-07-01")

    draft.refresh_from_db()
    assert (draft.status, draft.effective_from, draft.published_by) == (
        Status.PUBLISHED,
        JUL,
        omar.user,
    )
    moves = [(h.status, h.history_user.username) for h in draft.history.order_by("history_id")]
    assert moves[-2:] == [(Status.IN_REVIEW, "maria"), (Status.PUBLISHED, "omar")]


def test_a_reviewer_sends_a_version_back_to_draft_with_a_reason(legal_entity_set, maria, omar):
    draft = draft_of(maria, legal_entity_set)
    act(maria, draft, "submit")

    act(omar, draft, "send_back", reason="LB-NL is missing.")

    draft.refresh_from_db()
    assert draft.status == Status.DRAFT
    assert "Sent back by user:omar: LB-NL is missing." in draft.notes
    assert draft.history.latest("history_id").history_user == omar.user


def test_submitting_an_empty_draft_is_refused_with_a_message(legal_entity_set, maria):
    response = maria.post(f"/mappings/sets/{legal_entity_set.slug}/act/", {"action": "new_draft"})
    empty = v(legal_entity_set, 2)
    assert response.url == f"/mappings/versions/{empty.pk}/"
    assert empty.created_by == maria.user

    refused = act(maria, empty, "submit")

    assert any("no entries" in m for m in said(maria.get(refused.url)))
    empty.refresh_from_db()
    assert empty.status == Status.DRAFT


def test_a_published_version_is_read_only_through_the_page(legal_entity_set, maria):
    v1 = v(legal_entity_set, 1)

    page = maria.get(f"/mappings/versions/{v1.pk}/")
    changed = act(maria, v1, "entry_set", source_value="LB-GB", target_value="7")
    removed = act(maria, v1, "entry_delete", source_value="LB-GB")
    upload = SimpleUploadedFile("v1.csv", (HEADER + "LB-GB,7\n").encode())
    imported = maria.post(f"/mappings/versions/{v1.pk}/act/", {"action": "import", "file": upload})

    assert 'name="target_value"' not in page.content.decode()
    assert "Published versions are read-only." in page.content.decode()
    assert {changed.status_code, removed.status_code, imported.status_code} == {302}
    assert any("cannot change" in m for m in said(maria.get(changed.url)))
    assert entries(v1) == {"LB-GB": "3", "LB-DE": "5"}


def test_rollback_opens_a_copy_in_review_that_a_second_admin_publishes(
    legal_entity_set, maria, omar
):
    draft = draft_of(maria, legal_entity_set)
    act(maria, draft, "entry_set", source_value="LB-GB", target_value="7", row="1")
    act(maria, draft, "submit")
    act(omar, draft, "publish", effective_from="2026-04-01")

    response = act(maria, v(legal_entity_set, 1), "rollback", effective_from="2026-07-01")

    copy = v(legal_entity_set, 3)
    assert response.url == f"/mappings/versions/{copy.pk}/"
    assert (copy.status, copy.based_on, copy.created_by) == (
        Status.IN_REVIEW,
        v(legal_entity_set, 1),
        maria.user,
    )
    assert entries(copy) == {"LB-GB": "3", "LB-DE": "5"}
    act(maria, copy, "publish", effective_from="2026-07-01")
    copy.refresh_from_db()
    assert copy.status == Status.IN_REVIEW
    act(omar, copy, "publish", effective_from="2026-07-01")
    copy.refresh_from_db()
    assert (copy.status, copy.published_by) == (Status.PUBLISHED, omar.user)


def test_a_published_version_can_be_retired(legal_entity_set, omar):
    v1 = v(legal_entity_set, 1)

    act(omar, v1, "retire")

    v1.refresh_from_db()
    assert (v1.status, v1.retired_by) == (Status.RETIRED, omar.user)


# -- CSV ------------------------------------------------------------------------------------------
def test_a_version_exports_as_csv(legal_entity_set, maria):
    response = maria.get(f"/mappings/versions/{v(legal_entity_set, 1).pk}/export.csv")

    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="legal-entity-v1.csv"' in response["Content-Disposition"]
    assert response.content.decode().splitlines() == [
        "source_value,target_value,attributes",
        "LB-DE,5,",
        "LB-GB,3,",
    ]


def test_a_good_csv_imports_into_a_draft(legal_entity_set, maria):
    draft = draft_of(maria, legal_entity_set)
    upload = SimpleUploadedFile("d.csv", (HEADER + "LB-GB,3\nLB-NL,7\n").encode("utf-8-sig"))

    response = maria.post(
        f"/mappings/versions/{draft.pk}/act/",
        {"action": "import", "file": upload, "replace": "on"},
    )

    assert entries(draft) == {"LB-GB": "3", "LB-NL": "7"}
    assert any(
        "1 added, 0 changed, 1 removed, 1 unchanged" in m for m in said(maria.get(response.url))
    )
    assert ("+", "LB-NL", "maria") in entry_history(draft)


def test_a_csv_with_a_bad_row_shows_the_row_and_reason_and_imports_nothing(legal_entity_set, maria):
    draft = draft_of(maria, legal_entity_set)
    upload = SimpleUploadedFile("d.csv", (HEADER + "LB-NL,7\nLB-FR,99\n").encode())

    page = maria.post(f"/mappings/versions/{draft.pk}/act/", {"action": "import", "file": upload})

    assert page.status_code == 200
    assert page.context["import_errors"] == [
        "Row 3: Target '99' is not an ERP subsidiary id Ledgerbridge knows."
    ]
    assert "Nothing was imported" in page.content.decode()
    assert entries(draft) == {"LB-GB": "3", "LB-DE": "5"}


def test_a_file_that_is_not_utf8_is_a_form_error(legal_entity_set, maria):
    draft = draft_of(maria, legal_entity_set)
    upload = SimpleUploadedFile("d.csv", (HEADER + "LB-Ø,7\n").encode("latin-1"))

    page = maria.post(f"/mappings/versions/{draft.pk}/act/", {"action": "import", "file": upload})

    assert page.status_code == 200
    assert "not UTF-8" in page.content.decode()


# -- diff -----------------------------------------------------------------------------------------
def test_the_diff_of_a_draft_and_the_version_it_is_based_on(legal_entity_set, maria):
    draft = draft_of(maria, legal_entity_set)
    act(maria, draft, "entry_set", source_value="LB-NL", target_value="7")
    act(maria, draft, "entry_set", source_value="LB-DE", target_value="7", row="1")
    act(maria, draft, "entry_delete", source_value="LB-GB")

    page = maria.get(f"/mappings/sets/{legal_entity_set.slug}/diff/")
    chosen = maria.get(f"/mappings/sets/{legal_entity_set.slug}/diff/?old=2&new=1")

    assert (page.context["old"].number, page.context["new"].number) == (1, 2)
    diff = page.context["diff"]
    assert [c.source_value for c in diff.added] == ["LB-NL"]
    assert [c.source_value for c in diff.removed] == ["LB-GB"]
    assert [c.source_value for c in diff.changed] == ["LB-DE"]
    assert [c.source_value for c in chosen.context["diff"].added] == ["LB-GB"]
    assert maria.get(f"/mappings/sets/{legal_entity_set.slug}/diff/?old=9").status_code == 404


# -- who may -------------------------------------------------------------------------------------
def test_the_auditor_reads_every_page_sees_no_action_and_every_action_answers_403(
    legal_entity_set, maria, signed_in
):
    auditor = signed_in("auditor", "audrey")
    draft = draft_of(maria, legal_entity_set)
    reads = [
        "/mappings/",
        f"/mappings/versions/{draft.pk}/",
        f"/mappings/versions/{v(legal_entity_set, 1).pk}/",
        f"/mappings/versions/{draft.pk}/export.csv",
        f"/mappings/sets/{legal_entity_set.slug}/diff/",
    ]
    for url in reads:
        response = auditor.get(url)
        assert response.status_code == 200, url
        assert b'name="action"' not in response.content, url
    assert b"does not change them" in auditor.get(f"/mappings/versions/{draft.pk}/").content

    for action in ACTIONS:
        for version in (draft, v(legal_entity_set, 1)):
            data = {"source_value": "LB-NL", "target_value": "7", "effective_from": "2026-07-01"}
            assert act(auditor, version, action, **data).status_code == 403, action
    new_draft = auditor.post(
        f"/mappings/sets/{legal_entity_set.slug}/act/", {"action": "new_draft"}
    )
    assert new_draft.status_code == 403
    assert legal_entity_set.versions.count() == 2
    assert entries(draft) == {"LB-GB": "3", "LB-DE": "5"}


ACTIONS = (
    "entry_set",
    "entry_delete",
    "import",
    "update",
    "submit",
    "send_back",
    "publish",
    "rollback",
    "new_draft",
    "retire",
)


@pytest.mark.parametrize("role", ["pmo", "integration_ops", "executive"])
def test_roles_outside_the_area_get_403_on_every_page_and_action(legal_entity_set, signed_in, role):
    client = signed_in(role, f"someone-{role}")
    v1 = v(legal_entity_set, 1)

    for url in (
        "/mappings/",
        f"/mappings/versions/{v1.pk}/",
        f"/mappings/versions/{v1.pk}/export.csv",
    ):
        assert client.get(url).status_code == 403, url
    assert act(client, v1, "new_draft").status_code == 403
    assert legal_entity_set.versions.count() == 1


def test_orphaned_erp_subsidiaries_are_not_offered(legal_entity_set, maria):
    ExternalRef.objects.filter(external_id="7").update(status=ExternalRef.Status.ORPHANED)
    draft = draft_of(maria, legal_entity_set)

    page = act(maria, draft, "entry_set", source_value="LB-NL", target_value="7")

    assert page.status_code == 200
    assert "7" not in page.context["reference_values"]
