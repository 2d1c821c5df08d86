"""`manage.py sync …`: connections from the sandbox, a full cycle, a backfill with progress."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection as db

from sandbox import storage
from sandbox.core.app import SandboxApp
from sandbox.core.faults import FaultBook
from sandbox.core.server import sandbox_server_start
from sandbox.kantata import views as kantata_views
from sync.pipeline.models import Connection, InboxItem, SyncRun
from sync.pipeline.pull import pull_position_get

DATABASES = ["default", "sandbox"]


def sync(*args: str) -> str:
    out = io.StringIO()
    call_command("sync", *args, stdout=out)
    return out.getvalue()


def connect(*args: str) -> str:
    """`manage.py sandbox connect …`: Ledgerbridge's connections to the sandbox systems."""
    out = io.StringIO()
    call_command("sandbox", "connect", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def served():
    """The sandbox on a real loopback port: the commands talk to it over HTTP."""
    running = sandbox_server_start(app=SandboxApp(faults=FaultBook(seed=5)))
    yield running
    running.stop()


@pytest.mark.django_db(databases=DATABASES)
def test_connections_from_the_sandbox_creates_one_encrypted_connection_per_system():
    output = connect("--base-url", "http://127.0.0.1:8100")

    by_name = {c.name: c for c in Connection.objects.all()}
    assert {(c.name, c.system) for c in by_name.values()} == {
        ("salesforce", "crm"),
        ("kantata", "psa"),
        ("scim", "hr"),
        ("netsuite", "erp"),
        ("stripe", "billing"),
    }
    kantata = by_name["kantata"]
    assert kantata.base_url == "http://127.0.0.1:8100/kantata/api/v1"
    assert kantata.credentials_dict()["access_token"] == kantata_views.ACCESS_TOKEN
    with db.cursor() as cursor:
        cursor.execute("SELECT credentials FROM pipeline_connection WHERE name = 'kantata'")
        (stored,) = cursor.fetchone()
    assert kantata_views.ACCESS_TOKEN not in stored  # encrypted at rest
    assert "created kantata (psa, kantata) http://127.0.0.1:8100/kantata/api/v1" in output


@pytest.mark.django_db(databases=DATABASES)
def test_connections_from_the_sandbox_again_updates_and_keeps_our_webhook_secret():
    connect()
    stripe = Connection.objects.get(name="stripe")
    stripe.credentials_set({**stripe.credentials_dict(), "webhook_secret": "whsec_ours"})
    stripe.enabled = False
    stripe.save()

    output = connect("--base-url", "http://127.0.0.1:9200")

    stripe.refresh_from_db()
    assert Connection.objects.count() == 5
    assert stripe.base_url == "http://127.0.0.1:9200/stripe"
    assert stripe.credentials_dict()["webhook_secret"] == "whsec_ours"
    assert stripe.enabled is False  # ops' choice survives
    assert "updated stripe" in output


@pytest.mark.django_db(databases=DATABASES)
def test_connections_refuses_a_base_url_that_is_not_a_sandbox_address():
    with pytest.raises(CommandError, match="looks like"):
        connect("--base-url", "ftp://somewhere")


@pytest.mark.django_db(databases=DATABASES)
def test_connections_lists_what_is_configured():
    connect()
    listing = sync("connections")
    assert "netsuite (erp, netsuite) enabled http://127.0.0.1:8100/netsuite" in listing


@pytest.mark.django_db(databases=DATABASES, transaction=True)
def test_sync_cycle_pulls_every_sandbox_system_and_prints_a_summary(served):
    connect("--base-url", served.base_url)
    for n in range(3):
        storage.record_create(system="kantata", object_type="users", data={"full_name": f"U{n}"})

    output = sync("cycle")

    run = SyncRun.objects.get(kind="cycle")
    assert run.status == "succeeded", run.error
    assert run.pulled == 3
    assert f"run {run.pk} (cycle) succeeded" in output
    assert "pulled" in output
    assert "delivered" in output
    assert InboxItem.objects.filter(system="psa", entity="users").count() == 3


@pytest.mark.django_db(databases=DATABASES, transaction=True)
def test_sync_cycle_exits_with_an_error_when_a_system_refuses_us(served):
    connect("--base-url", served.base_url)
    scim = Connection.objects.get(name="scim")
    scim.credentials_set({"access_token": "expired"})
    scim.save()

    with pytest.raises(CommandError, match="pull scim/Users: configuration 401"):
        sync("cycle", "--connection", "scim")
    assert SyncRun.objects.get().status == "failed"


@pytest.mark.django_db(databases=DATABASES, transaction=True)
def test_sync_backfill_prints_progress_and_leaves_the_pull_position(served):
    connect("--base-url", served.base_url)
    for n in range(2):
        storage.record_create(system="kantata", object_type="users", data={"full_name": f"U{n}"})
    kantata = Connection.objects.get(name="kantata")

    output = sync(
        "backfill",
        "--connection",
        "kantata",
        "--entity",
        "users",
        "--from",
        "2000-01-01",
        "--to",
        "2999-12-31",
    )

    assert "kantata/users: page 1, 2 records, 2 new" in output
    assert "(backfill) succeeded" in output
    assert pull_position_get(connection=kantata, entity="users").since is None


@pytest.mark.django_db(databases=DATABASES)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--connection", "nobody", "--entity", "users", "--from", "2026-01-01"], "no connection"),
        (
            ["--connection", "kantata", "--entity", "users", "--from", "01/10/2026"],
            "not a YYYY-MM-DD",
        ),
        (
            [
                "--connection",
                "kantata",
                "--entity",
                "users",
                "--from",
                "2026-02-01",
                "--to",
                "2026-01-01",
            ],
            "before",
        ),
        (
            ["--connection", "kantata", "--entity", "invoices", "--from", "2026-01-01"],
            "not 'invoices'",
        ),
    ],
)
def test_sync_backfill_refuses_bad_arguments_with_a_message(args, message):
    connect()
    with pytest.raises(CommandError, match=message):
        sync("backfill", *args)


@pytest.mark.django_db(databases=["default", "sandbox"])
def test_connecting_to_the_sandbox_publishes_the_demo_legal_entity_mapping_once(tmp_path):
    from sync.mappings.models import MappingVersion

    call_command(
        "sandbox",
        "seed",
        "--scale",
        "200",
        "--reset",
        "--manifest",
        str(tmp_path / "manifest.json"),
    )
    call_command("sandbox", "connect", stdout=io.StringIO())
    call_command("sandbox", "connect", stdout=io.StringIO())

    (version,) = MappingVersion.objects.filter(mapping_set__slug="legal-entity")
    assert version.status == "published"
    mapped = set(version.entries.values_list("source_value", flat=True))
    assert mapped == {"LB-US", "LB-GB", "LB-DE"}  # LB-NL has no ERP subsidiary: left unmapped


@pytest.mark.django_db(databases=DATABASES, transaction=True)
def test_sync_webhooks_subscribes_the_psa_and_billing_with_secrets_the_connections_verify_with(
    served,
):
    from sandbox.models import SandboxWebhookSubscription
    from sync.webhooks import SECRET_KEY

    connect("--base-url", served.base_url)

    output = sync("webhooks", "--portal-url", "http://portal.test:8000/")

    subscriptions = SandboxWebhookSubscription.objects.using("sandbox")
    (subscription,) = subscriptions.filter(system="kantata")
    assert subscription.url == "http://portal.test:8000/hooks/psa/kantata"
    assert set(subscription.event_types) == {"time_entry.approved", "expense.approved"}
    psa = Connection.objects.get(name="kantata")
    assert psa.credentials_dict()[SECRET_KEY] == subscription.secret
    (endpoint,) = subscriptions.filter(system="stripe")
    assert endpoint.url == "http://portal.test:8000/hooks/billing/stripe"
    assert {"invoice.paid", "invoice.payment_failed"} <= set(endpoint.event_types)
    billing = Connection.objects.get(name="stripe")
    assert billing.credentials_dict()[SECRET_KEY] == endpoint.secret
    assert "subscribed kantata" in output
    assert "subscribed stripe: invoice.created" in output
    assert "→ http://portal.test:8000/hooks/billing/stripe" in output


@pytest.mark.django_db(databases=DATABASES)
def test_sync_webhooks_says_why_when_there_is_nothing_or_nobody_to_subscribe(served):
    with pytest.raises(CommandError, match=r"no enabled Kantata \(PSA\) or Stripe"):
        sync("webhooks")
    connect("--base-url", served.base_url)
    served.stop()  # the PSA is gone: the command fails with the reason, after --wait
    with pytest.raises(CommandError, match="kantata"):
        sync("webhooks", "--wait", "0.5")
    with pytest.raises(CommandError, match="stripe"):
        sync("webhooks", "--connection", "stripe", "--wait", "0.5")
