"""Which connector serves a connection: the one place a dialect is looked up."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sync.connectors.base import ConnectionConfig
from sync.connectors.kantata import KantataConnector
from sync.connectors.netsuite import NetSuiteConnector
from sync.connectors.salesforce import SalesforceConnector
from sync.connectors.scim import ScimConnector
from sync.connectors.stripe import StripeConnector
from sync.errors import DomainError
from sync.pipeline.master_data import ERP_COLUMNS


class ConnectionNotPullable(DomainError):
    """The connection's dialect has no source connector, or the entity is not one it pulls."""


def netsuite_connector(config: ConnectionConfig, **options: Any) -> NetSuiteConnector:
    """The NetSuite connector reading the SuiteQL columns the master-data processors need."""
    return NetSuiteConnector(config, columns=ERP_COLUMNS, **options)


# Dialects that can be pulled from, and the connector that reads each.
SOURCE_CONNECTORS: dict[str, Callable[..., Any]] = {
    "netsuite": netsuite_connector,
    "scim": ScimConnector,
    "kantata": KantataConnector,
    "salesforce": SalesforceConnector,
    "stripe": StripeConnector,
}

# Dialects that can receive deliveries, and the connector that writes to each.
TARGET_CONNECTORS: dict[str, Callable[..., Any]] = {
    "netsuite": NetSuiteConnector,
}


def source_connector_for(connection: Any, *, transport: Any = None) -> Any:
    """The connector that pulls from `connection` (a `Connection` row)."""
    factory = SOURCE_CONNECTORS.get(connection.dialect)
    if factory is None:
        raise ConnectionNotPullable(f"{connection} has no source connector to pull with.")
    return factory(ConnectionConfig.from_connection(connection), transport=transport)


def target_connector_for(connection: Any, **options: Any) -> Any:
    """The connector that delivers to `connection`."""
    factory = TARGET_CONNECTORS.get(connection.dialect)
    if factory is None:
        raise ValueError(f"{connection} cannot receive deliveries (dialect {connection.dialect}).")
    return factory(ConnectionConfig.from_connection(connection), **options)
