"""What the mapping editor adds to the services: CSV import (all or nothing, checked against
reference data, history naming the user), the reference lists, and the diff of two versions."""

from __future__ import annotations

import datetime as dt

import pytest

from sync.mappings import services
from sync.mappings.errors import MappingInvalid, MappingVersionFrozen
from sync.mappings.models import MappingEntry
from sync.mappings.selectors import mapping_reference_list, mapping_versions_diff
from sync.models import ExternalRef
from tests import factories as f

JAN = dt.date(2026, 1, 1)
HEADER = "source_value,target_value,attributes\n"


def erp_subsidiary(external_id: str, *, status: str = ExternalRef.Status.ACTIVE) -> None:
    f.ExternalRefFactory(
        record=f.LegalEntityFactory(), system="erp", external_id=external_id, status=status
    )


def _entries(version) -> dict[str, tuple[str, dict]]:
    rows = version.entries.values_list("source_value", "target_value", "attributes")
    return {s: (t, a) for s, t, a in rows}


@pytest.fixture
def legal_entities(make_set):
    for subsidiary in ("3", "5", "7"):
        erp_subsidiary(subsidiary)
    return make_set("legal-entity")


def test_a_good_csv_adds_and_changes_entries_with_history_naming_the_user(
    legal_entities, make_draft, maria
):
    draft = make_draft(legal_entities, {"LB-GB": "3", "LB-DE": "5"})

    done = services.mapping_version_import_csv(
        version=draft,
        text=HEADER + 'LB-GB,3,\nLB-DE,7,"{""country"": ""DE""}"\nLB-NL,5,\n',
        user=maria,
    )

    assert (done.added, done.changed, done.removed, done.unchanged) == (1, 1, 0, 1)
    assert _entries(draft) == {
        "LB-GB": ("3", {}),
        "LB-DE": ("7", {"country": "DE"}),
        "LB-NL": ("5", {}),
    }
    written = MappingEntry.history.filter(version_id=draft.pk, history_type__in=["+", "~"])
    imported = written.exclude(source_value="LB-GB").order_by("-history_id")[:2]
    assert {(h.history_type, h.history_user, h.history_actor) for h in imported} == {
        ("+", maria, "user:maria"),
        ("~", maria, "user:maria"),
    }


def test_importing_the_same_file_again_writes_nothing(legal_entities, make_draft, maria):
    draft = make_draft(legal_entities)
    text = HEADER + "LB-GB,3\nLB-NL,7\n"
    services.mapping_version_import_csv(version=draft, text=text, user=maria)
    rows = MappingEntry.history.count()

    again = services.mapping_version_import_csv(version=draft, text=text, user=maria)

    assert (again.added, again.changed, again.unchanged) == (0, 0, 2)
    assert MappingEntry.history.count() == rows


def test_replace_removes_the_entries_the_file_does_not_list(legal_entities, make_draft, maria):
    draft = make_draft(legal_entities, {"LB-GB": "3", "LB-DE": "5"})

    done = services.mapping_version_import_csv(
        version=draft, text=HEADER + "LB-GB,3\n", replace=True, user=maria
    )

    assert done.removed == 1
    assert _entries(draft) == {"LB-GB": ("3", {})}
    removal = MappingEntry.history.get(version_id=draft.pk, history_type="-")
    assert (removal.source_value, removal.history_user) == ("LB-DE", maria)


def test_a_csv_with_a_bad_row_is_refused_with_its_row_number_and_imports_nothing(
    legal_entities, make_draft, maria
):
    draft = make_draft(legal_entities, {"LB-GB": "3"})
    history = MappingEntry.history.count()

    with pytest.raises(MappingInvalid) as refused:
        services.mapping_version_import_csv(
            version=draft,
            text=HEADER + "LB-GB,5\nLB-NL,7\nLB-FR,99\nLB-ES,\n",
            replace=True,
            user=maria,
        )

    assert refused.value.messages == [
        "Row 4: Target '99' is not an ERP subsidiary id Ledgerbridge knows.",
        "Row 5: source_value and target_value are both required.",
    ]
    assert _entries(draft) == {"LB-GB": ("3", {})}
    assert MappingEntry.history.count() == history


def test_an_orphaned_erp_subsidiary_is_not_a_known_target(make_set):
    erp_subsidiary("3")
    erp_subsidiary("9", status=ExternalRef.Status.ORPHANED)
    f.ExternalRefFactory(record=f.LegalEntityFactory(), system="crm", external_id="4")

    reference = mapping_reference_list(mapping_set=make_set("legal-entity"))

    assert reference.values == {"3"}


def test_currency_targets_are_checked_against_known_currencies_and_other_kinds_are_not(
    make_set,
):
    f.CurrencyFactory(code="EUR")

    currency = mapping_reference_list(mapping_set=make_set("currency", kind="currency"))
    items = mapping_reference_list(mapping_set=make_set("items", kind="service_item"))

    assert "EUR" in currency.values
    assert items is None


def test_nothing_is_imported_into_a_version_in_review(legal_entities, make_draft, maria):
    draft = make_draft(legal_entities, {"LB-GB": "3"})
    services.mapping_version_submit(version=draft, user=maria)

    with pytest.raises(MappingVersionFrozen):
        services.mapping_version_import_csv(version=draft, text=HEADER + "LB-NL,7\n", user=maria)


def test_the_diff_of_two_versions_lists_rows_added_removed_and_changed(
    legal_entities, make_published, make_draft
):
    v1 = make_published(legal_entities, {"LB-GB": "3", "LB-DE": "5", "LB-FR": "7"}, JAN)
    v2 = make_draft(legal_entities, {"LB-GB": "3", "LB-DE": "7", "LB-NL": "5"})

    diff = mapping_versions_diff(old=v1, new=v2)
    backwards = mapping_versions_diff(old=v2, new=v1)

    assert [(c.source_value, c.new) for c in diff.added] == [("LB-NL", ("5", {}))]
    assert [(c.source_value, c.old) for c in diff.removed] == [("LB-FR", ("7", {}))]
    assert [(c.source_value, c.old[0], c.new[0]) for c in diff.changed] == [("LB-DE", "5", "7")]
    assert diff.unchanged == 1
    assert [c.source_value for c in backwards.added] == ["LB-FR"]
    assert mapping_versions_diff(old=v1, new=v1).empty
