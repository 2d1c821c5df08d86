"""Set a fresh Ledgerbridge up against the sandbox firm: what a mapping admin would publish first.

Only for `make run`'s demo: a real tenant's mappings are drafted, reviewed and published by
mapping admins in the browser.
"""

from __future__ import annotations

import datetime as dt

from sync.mappings.models import MappingSet, MappingVersion
from sync.mappings.services import (
    mapping_entry_set,
    mapping_set_create,
    mapping_version_create_draft,
    mapping_version_publish,
    mapping_version_submit,
)
from sync.pipeline.time_posting import LEGAL_ENTITY_SET
from sync.sandbox import storage

DEMO_EFFECTIVE_FROM = dt.date(2000, 1, 1)


def legal_entity_mapping_from_sandbox() -> MappingVersion | None:
    """Publish legal entity code → ERP subsidiary id for every subsidiary the sandbox ERP has.

    Idempotent: does nothing when the set already has a published version. Legal entities the
    ERP lacks stay unmapped on purpose (the demo firm plants one), so their time is parked.
    """
    existing = MappingSet.objects.filter(slug=LEGAL_ENTITY_SET).first()
    if existing and existing.versions.filter(status="published").exists():
        return None
    subsidiaries = storage.record_queryset(system="netsuite", object_type="subsidiary").exclude(
        external_id=None
    )
    entries = {record.external_id: str(record.pk) for record in subsidiaries}
    if not entries:
        return None
    mapping_set = existing or mapping_set_create(
        slug=LEGAL_ENTITY_SET, name="Legal entity → ERP subsidiary", kind="legal_entity",
        description="Seeded for the sandbox demo by `sync connections --from-sandbox`.",
        user=None,
    )
    draft = mapping_version_create_draft(mapping_set=mapping_set, user=None)
    for source, target in sorted(entries.items()):
        mapping_entry_set(version=draft, source_value=source, target_value=target, user=None)
    mapping_version_submit(version=draft, user=None)
    return mapping_version_publish(version=draft, effective_from=DEMO_EFFECTIVE_FROM, user=None)
