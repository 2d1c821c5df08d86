"""Which integration serves a connection: the one place a dialect is looked up."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sync.connectors.base import (
    ConnectionConfig,
    SourceConnector,
    TargetConnector,
    instant_read,
)
from sync.errors import DomainError
from sync.integrations.kantata import pull as kantata
from sync.integrations.kantata.client import KantataConnector
from sync.integrations.netsuite import expense_reports
from sync.integrations.netsuite import pull as netsuite
from sync.integrations.netsuite.client import NetSuiteConnector
from sync.integrations.netsuite.columns import ERP_COLUMNS, NUMERIC_BODY_FIELDS
from sync.integrations.netsuite.payments import NetSuitePaymentsConnector
from sync.integrations.salesforce import pull as salesforce
from sync.integrations.salesforce.client import SalesforceConnector
from sync.integrations.salesforce.deals import ACCOUNT_KEY_FIELD
from sync.integrations.scim import pull as scim
from sync.integrations.scim.client import ScimConnector
from sync.integrations.stripe import pull as stripe
from sync.integrations.stripe.client import StripeConnector
from sync.integrations.stripe.payments import StripePaymentsConnector


class ConnectionNotPullable(DomainError):
    """The connection's dialect has no source connector, or the entity is not one it pulls."""


def _updated_at(entity: str, record: Mapping[str, Any]) -> dt.datetime | None:
    return instant_read(record.get("updated_at"))


def iso_position_format(moment: dt.datetime) -> str:
    """A pull position as ISO 8601 in UTC with an explicit offset."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


@dataclass(frozen=True)
class Integration:
    """What the pipeline needs to know about one vendor dialect.

    `source`/`target` build the connector that pulls from / delivers to a connection of this
    dialect (None: it does not). `pull_plan`: what a cycle pulls, in this order (reference data
    before what points at it); `extra_entities`: what a pull accepts beyond it (backfills);
    `feeds`: entities whose pull position is a feed position (no start-time cap; an expired one
    restarts from the oldest kept event). `id_field` names a record's id; `record_changed_at`
    reads when a record changed (for a backfill's `until`); `position_format` writes an instant
    as a pull position of this vendor. `numeric_body_fields`: body fields, by record type, the
    target wants as JSON numbers.
    """

    dialect: str
    source: Callable[..., SourceConnector] | None = None
    target: Callable[..., TargetConnector] | None = None
    pull_plan: tuple[str, ...] = ()
    extra_entities: tuple[str, ...] = ()
    feeds: frozenset[str] = frozenset()
    id_field: str = "id"
    record_changed_at: Callable[[str, Mapping[str, Any]], dt.datetime | None] = _updated_at
    position_format: Callable[[dt.datetime], str] = iso_position_format
    numeric_body_fields: Mapping[str, frozenset[str]] = field(default_factory=dict)


def netsuite_connector(config: ConnectionConfig, **options: Any) -> NetSuiteConnector:
    """The NetSuite connector reading the SuiteQL columns the pipeline needs."""
    return NetSuiteConnector(
        config,
        columns={**ERP_COLUMNS, expense_reports.RECORD_TYPE: expense_reports.COLUMNS},
        **options,
    )


def salesforce_target(config: ConnectionConfig, **options: Any) -> SalesforceConnector:
    """The Salesforce connector delivering to existing Accounts by their Id (the ERP link)."""
    return SalesforceConnector(config, key_fields={"Account": ACCOUNT_KEY_FIELD}, **options)


# Keyed by `Connection.dialect`. CSV drops arrive as files, not pulls: no entry.
INTEGRATIONS: dict[str, Integration] = {
    "netsuite": Integration(
        dialect="netsuite",
        source=netsuite_connector,
        # Customer payments are written only once (payments.py): looked up before a write.
        target=NetSuitePaymentsConnector,
        # Expense reports last: what the ERP holds by our key, for expense posting.
        pull_plan=(*netsuite.PULL_PLAN, expense_reports.RECORD_TYPE),
        record_changed_at=netsuite.record_changed_at,
        position_format=netsuite.position_format,
        numeric_body_fields=NUMERIC_BODY_FIELDS,
    ),
    "scim": Integration(
        dialect="scim",
        source=ScimConnector,
        pull_plan=scim.PULL_PLAN,
        record_changed_at=scim.record_changed_at,
    ),
    "kantata": Integration(
        dialect="kantata",
        source=KantataConnector,
        target=KantataConnector,
        pull_plan=kantata.PULL_PLAN,
        extra_entities=kantata.EXTRA_ENTITIES,
        feeds=kantata.FEEDS,
        record_changed_at=kantata.record_changed_at,
    ),
    "salesforce": Integration(
        dialect="salesforce",
        source=SalesforceConnector,
        target=salesforce_target,
        pull_plan=salesforce.PULL_PLAN,
        id_field=salesforce.ID_FIELD,
        record_changed_at=salesforce.record_changed_at,
    ),
    "stripe": Integration(
        dialect="stripe",
        source=StripeConnector,
        # Customers as the plain connector writes them; invoices issued for invoice candidates
        # and marked paid out of band for cash the ERP applied.
        target=StripePaymentsConnector,
        pull_plan=stripe.PULL_PLAN,
        extra_entities=stripe.EXTRA_ENTITIES,
        record_changed_at=stripe.record_changed_at,
    ),
}


def integration_for(dialect: str) -> Integration:
    """The integration of `dialect`; one that pulls and delivers nothing when none is known."""
    return INTEGRATIONS.get(dialect) or Integration(dialect=dialect)


def source_connector_for(connection: Any, *, transport: Any = None) -> SourceConnector:
    """The connector that pulls from `connection` (a `Connection` row). Raises
    ConnectionNotPullable when its dialect has none, ValueError for settings the connector
    refuses."""
    factory = integration_for(connection.dialect).source
    if factory is None:
        raise ConnectionNotPullable(f"{connection} has no source connector to pull with.")
    return factory(ConnectionConfig.from_connection(connection), transport=transport)


def target_connector_for(connection: Any, **options: Any) -> TargetConnector:
    """The connector that delivers to `connection`. Raises ValueError when its dialect
    receives no deliveries."""
    factory = integration_for(connection.dialect).target
    if factory is None:
        raise ValueError(f"{connection} cannot receive deliveries (dialect {connection.dialect}).")
    return factory(ConnectionConfig.from_connection(connection), **options)
