"""A seeded sandbox firm synced into Ledgerbridge through its connectors, for reconciliation,
and a NetSuite client to change the ERP behind Ledgerbridge's back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from reconciliation.runs import reconciliation_run
from sandbox.core.app import SandboxApp
from sandbox.core.faults import FaultBook
from sandbox.generator.seed import sandbox_seed
from sandbox.netsuite import views as netsuite_views
from sandbox.product_setup import connections_from_sandbox, legal_entity_mapping_from_sandbox
from sync.pipeline.cycle import sync_cycle_run
from sync.pipeline.models import Connection

BASE_URL = "http://sandbox.test"
NS_REST = "/netsuite/services/rest"


@dataclass
class Firm:
    manifest: dict[str, Any]
    app: SandboxApp

    def transport_for(self, connection: Any = None) -> httpx.WSGITransport:
        return httpx.WSGITransport(app=self.app)

    def cycle(self, **options: Any):
        return sync_cycle_run(transport_for=self.transport_for, **options)

    def reconcile(self, **options: Any):
        return reconciliation_run(
            trigger=options.pop("trigger", "on_demand"), transport_for=self.transport_for, **options
        )

    @contextmanager
    def erp(self) -> Iterator[httpx.Client]:
        """A client of the sandbox ERP's REST API, signed in (OAuth 2.0 client credentials)."""
        with httpx.Client(transport=self.transport_for(), base_url=BASE_URL) as client:
            token = client.post(
                f"{NS_REST}/auth/oauth2/v1/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": netsuite_views.CLIENT_ID,
                    "client_secret": netsuite_views.CLIENT_SECRET,
                },
            ).json()["access_token"]
            client.headers["Authorization"] = f"Bearer {token}"
            yield client


def firm_sync(*, time_entries: int, seed: int = 42) -> Firm:
    """Seed the sandbox, connect Ledgerbridge to it as `make run` does, and run one full cycle
    (pull, process, deliver)."""
    manifest = sandbox_seed(seed=seed, time_entries=time_entries, reset=True).manifest
    app = SandboxApp(faults=FaultBook(seed=1), manage_connections=False, sleep=lambda _s: None)
    connections_from_sandbox(base_url=BASE_URL)
    # One delivery at a time: the in-process sandbox shares the tests' SQLite database.
    Connection.objects.update(max_concurrency=1)
    legal_entity_mapping_from_sandbox()
    firm = Firm(manifest=manifest, app=app)
    run = firm.cycle()
    assert run.status == "succeeded", run.error
    return firm
