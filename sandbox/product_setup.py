"""Set a fresh Ledgerbridge up against the sandbox firm: the one module of the sandbox that
writes Ledgerbridge's own records (connections, the first mapping a mapping admin would
publish). Only for the demo, tests and benches: a real tenant's connections and mappings are
entered by people. `manage.py sandbox connect` calls it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.db import transaction

from sandbox import storage
from sandbox.commands.credentials import sandbox_credentials
from sync.mappings.models import MappingSet, MappingVersion
from sync.mappings.services import (
    mapping_entry_set,
    mapping_set_create,
    mapping_version_create_draft,
    mapping_version_publish,
    mapping_version_submit,
)
from sync.pipeline.models import Connection
from sync.pipeline.models.connections import Dialect, System
from sync.pipeline.time_posting.references import LEGAL_ENTITY_SET

DEMO_EFFECTIVE_FROM = dt.date(2000, 1, 1)
SANDBOX_SYSTEMS: dict[str, str] = {
    Dialect.SALESFORCE: System.CRM,
    Dialect.KANTATA: System.PSA,
    Dialect.SCIM: System.HR,
    Dialect.NETSUITE: System.ERP,
    Dialect.STRIPE: System.BILLING,
}
# Secrets Ledgerbridge generates or receives itself, kept when the sandbox's are re-applied.
KEPT_CREDENTIALS = ("webhook_secret",)


@dataclass(frozen=True)
class ConnectionSetUp:
    connection: Connection
    created: bool


def connections_from_sandbox(*, base_url: str) -> list[ConnectionSetUp]:
    """Create or update one Connection per sandbox system (named after its dialect) from the
    sandbox's credentials for a sandbox served at `base_url`. Idempotent; keeps a connection's
    `enabled` flag and its own `webhook_secret`. Raises ValueError for a base URL that is not
    plain http with a host."""
    parts = urlsplit(base_url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"a sandbox base URL looks like http://127.0.0.1:8100, not {base_url!r}")
    offered = sandbox_credentials(host=parts.hostname, port=parts.port or 80)
    done: list[ConnectionSetUp] = []
    with transaction.atomic():
        for dialect, values in offered.items():
            system = SANDBOX_SYSTEMS.get(dialect)
            if system is None:
                continue
            values = dict(values)
            url = values.pop("base_url")
            connection = Connection.objects.select_for_update().filter(name=dialect).first()
            created = connection is None
            connection = connection or Connection(name=dialect)
            kept = {k: v for k, v in connection.credentials_dict().items() if k in KEPT_CREDENTIALS}
            connection.system, connection.dialect, connection.base_url = system, dialect, url
            connection.credentials_set({**{k: str(v) for k, v in values.items()}, **kept})
            connection.full_clean()
            connection.save()
            done.append(ConnectionSetUp(connection=connection, created=created))
    return done


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
        slug=LEGAL_ENTITY_SET,
        name="Legal entity → ERP subsidiary",
        kind="legal_entity",
        description="Seeded for the sandbox demo by `sandbox connect`.",
        user=None,
    )
    draft = mapping_version_create_draft(mapping_set=mapping_set, user=None)
    for source, target in sorted(entries.items()):
        mapping_entry_set(version=draft, source_value=source, target_value=target, user=None)
    mapping_version_submit(version=draft, user=None)
    return mapping_version_publish(version=draft, effective_from=DEMO_EFFECTIVE_FROM, user=None)


PROJECT_TEMPLATE_SET = "project-template"  # sync.pipeline.quote_to_cash.projects
# The demo firm's WBS by CRM billing model: phases (no time) and the tasks time is booked to.
DEMO_PROJECT_TEMPLATES: dict[str, tuple[str, list[dict]]] = {
    "Time and Materials": (
        "TM-STANDARD",
        [
            {"code": "1", "name": "Delivery", "allows_time": False},
            {"code": "1.1", "name": "Consulting", "parent": "1"},
            {"code": "1.2", "name": "Project management", "parent": "1"},
        ],
    ),
    "Fixed Fee": (
        "FF-MILESTONES",
        [
            {"code": "1", "name": "Design"},
            {"code": "2", "name": "Build"},
            {"code": "3", "name": "Acceptance"},
        ],
    ),
    "Usage": ("USAGE-SERVICE", [{"code": "1", "name": "Managed service"}]),
}


def project_template_mapping_from_sandbox() -> MappingVersion | None:
    """Publish the demo project templates (billing model → template and its WBS). Idempotent:
    does nothing when the set already has a published version."""
    existing = MappingSet.objects.filter(slug=PROJECT_TEMPLATE_SET).first()
    if existing and existing.versions.filter(status="published").exists():
        return None
    mapping_set = existing or mapping_set_create(
        slug=PROJECT_TEMPLATE_SET,
        name="Billing model → project template",
        kind="project_template",
        description="Seeded for the sandbox demo by `sandbox connect`.",
        user=None,
    )
    draft = mapping_version_create_draft(mapping_set=mapping_set, user=None)
    for model, (template, tasks) in DEMO_PROJECT_TEMPLATES.items():
        mapping_entry_set(
            version=draft,
            source_value=model,
            target_value=template,
            attributes={"tasks": tasks},
            user=None,
        )
    mapping_version_submit(version=draft, user=None)
    return mapping_version_publish(version=draft, effective_from=DEMO_EFFECTIVE_FROM, user=None)
