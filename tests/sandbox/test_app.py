"""The sandbox core through HTTP (in-process): routing, control endpoints, injected faults."""

from __future__ import annotations

import httpx
import pytest

from sandbox import storage
from sandbox.core.app import ResponseDropped, SandboxApp
from sandbox.core.dialects import Dialect, Route
from sandbox.core.faults import FaultBook
from sandbox.core.protocol import Request, Response, SandboxError

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

KANTATA = {"Authorization": "Bearer sandbox-kantata-token"}


def in_process(app: SandboxApp) -> httpx.Client:
    return httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://sandbox.test")


def statuses_of_a_fixed_workload(seed: int) -> list[int]:
    app = SandboxApp(faults=FaultBook(seed=seed), manage_connections=False, sleep=lambda s: None)
    app.faults.configure(system="kantata", changes={"error_rate": 0.5})
    with in_process(app) as http:
        return [
            http.get(
                f"/kantata/api/v1/workspaces.json?page={n % 3 + 1}", headers=KANTATA
            ).status_code
            for n in range(24)
        ]


def test_the_same_seed_and_requests_see_the_same_faults():
    first = statuses_of_a_fixed_workload(seed=11)
    assert first == statuses_of_a_fixed_workload(seed=11)
    assert 200 in first
    assert {500, 503} & set(first)


def test_another_seed_sees_other_faults():
    assert statuses_of_a_fixed_workload(seed=11) != statuses_of_a_fixed_workload(seed=12)


def test_an_injected_error_answers_before_the_write_happens(client):
    client.put("/_control/faults", json={"systems": {"kantata": {"error_rate": 1}}})
    answer = client.post(
        "/kantata/api/v1/workspaces.json", json={"workspace": {"title": "x"}}, headers=KANTATA
    )
    assert answer.status_code in {500, 503}
    assert answer.json()["errors"][0]["type"] == "system"
    assert storage.record_queryset(system="kantata", object_type="workspaces").count() == 0


def test_slow_responses_wait_the_configured_delay(client, sleeps):
    client.put(
        "/_control/faults",
        json={"systems": {"scim": {"slow_rate": 1, "slow_seconds": 2.5, "latency_seconds": 0.1}}},
    )
    answer = client.get("/scim/v2/Users", headers={"Authorization": "Bearer sandbox-scim-token"})
    assert answer.status_code == 200
    assert sleeps.calls == [2.5, pytest.approx(0.1)]  # slow first, then the latency


def test_latency_is_the_time_to_answer_the_systems_own_work_included(client, sleeps):
    """With 50 ms latency an answer takes 50 ms whatever the emulator's own work took (up to
    50 ms): 10 requests in flight then serve 200/s, as the bench's premise says."""
    client.put("/_control/faults", json={"systems": {"scim": {"latency_seconds": 0.05}}})
    sleeps.work_seconds = 0.01  # each clock reading is 10 ms of work later
    answer = client.get("/scim/v2/Users", headers={"Authorization": "Bearer sandbox-scim-token"})
    assert answer.status_code == 200
    assert len(sleeps.calls) == 1
    assert sleeps.calls[0] == pytest.approx(0.04)  # started at t, padded at t + 10 ms
    assert sleeps.now == pytest.approx(0.06)  # 10 ms work + 40 ms pad + the last reading


def test_work_slower_than_the_latency_is_not_padded(client, sleeps):
    client.put("/_control/faults", json={"systems": {"scim": {"latency_seconds": 0.005}}})
    sleeps.work_seconds = 0.01
    answer = client.get("/scim/v2/Users", headers={"Authorization": "Bearer sandbox-scim-token"})
    assert answer.status_code == 200
    assert sleeps.calls == []


def test_over_the_concurrency_limit_the_answer_is_429(client, sandbox_app):
    client.put("/_control/faults", json={"systems": {"kantata": {"concurrency_limit": 1}}})
    sandbox_app.faults.enter(system="kantata")  # one request already in flight
    try:
        busy = client.get("/kantata/api/v1/workspaces.json", headers=KANTATA)
    finally:
        sandbox_app.faults.leave(system="kantata")
    assert busy.status_code == 429
    assert client.get("/kantata/api/v1/workspaces.json", headers=KANTATA).status_code == 200


def test_schema_drift_renames_and_adds_fields_on_demand(client):
    storage.record_create(system="kantata", object_type="workspaces", data={"title": "Drift"})
    client.put(
        "/_control/faults",
        json={
            "systems": {
                "kantata": {"rename_fields": {"title": "name"}, "add_fields": {"region": "EMEA"}}
            }
        },
    )
    body = client.get("/kantata/api/v1/workspaces.json", headers=KANTATA).json()
    workspace = next(iter(body["workspaces"].values()))
    assert "title" not in workspace
    assert workspace["name"] == "Drift"
    assert workspace["region"] == "EMEA"


def test_a_dropped_answer_in_process_raises_after_the_write(client):
    client.put("/_control/faults", json={"systems": {"kantata": {"drop_rate": 1}}})
    with pytest.raises(ResponseDropped):
        client.post(
            "/kantata/api/v1/workspaces.json", json={"workspace": {"title": "x"}}, headers=KANTATA
        )
    assert storage.record_queryset(system="kantata", object_type="workspaces").count() == 1


def test_reads_are_never_dropped(client):
    client.put("/_control/faults", json={"systems": {"kantata": {"drop_rate": 1}}})
    assert client.get("/kantata/api/v1/workspaces.json", headers=KANTATA).status_code == 200


# -- control endpoints -------------------------------------------------------------------------
def test_the_control_endpoint_shows_sets_and_resets_faults(client):
    shown = client.get("/_control/faults").json()
    assert shown["seed"] == 1
    assert shown["systems"]["salesforce"]["rate_limit"] == 100_000
    changed = client.put(
        "/_control/faults", json={"seed": 9, "systems": {"scim": {"error_rate": 0.25}}}
    ).json()
    assert changed["seed"] == 9
    assert changed["systems"]["scim"]["error_rate"] == 0.25
    reset = client.delete("/_control/faults").json()
    assert "scim" not in reset["systems"]
    assert reset["systems"]["salesforce"]["rate_limit"] == 100_000


@pytest.mark.parametrize(
    "payload",
    [
        b"{not json",
        b"[1]",
        b'{"systems": {"oracle": {"error_rate": 0.1}}}',
        b'{"systems": {"scim": {"error_rte": 0.1}}}',
        b'{"systems": {"scim": {"error_rate": 2}}}',
        b'{"systems": {"scim": {"error_statuses": [404]}}}',
        b'{"seed": "seven"}',
        b'{"faults": {}}',
    ],
)
def test_a_bad_control_payload_is_a_400_and_changes_nothing(client, payload):
    before = client.get("/_control/faults").json()
    answer = client.put("/_control/faults", content=payload)
    assert answer.status_code == 400
    assert client.get("/_control/faults").json() == before


def test_the_root_lists_every_system_and_health_answers(client):
    systems = client.get("/").json()["systems"]
    assert {"salesforce", "kantata", "scim"} <= set(systems)
    assert systems["scim"] == "http://sandbox.test/scim/v2"
    assert client.get("/_control/health").json()["status"] == "ok"


def test_a_path_outside_every_system_is_a_404(client):
    assert client.get("/oracle/api").status_code == 404
    assert client.get("/_control/nothing").status_code == 404


# -- a dialect built on the core ---------------------------------------------------------------
def _render(request: Request, error: SandboxError) -> Response:
    return Response.json({"code": error.code, "message": error.message}, status=error.status)


def _broken(request: Request) -> Response:
    raise RuntimeError("a bug in a handler")


def _echo(request: Request, name: str) -> Response:
    return Response.json({"name": name, "body": request.json()})


TOY = Dialect(
    system="toy",
    prefix="/toy",
    routes=[
        Route("GET", "/broken", _broken),
        Route("POST", "/echo/{name:[a-z]+}", _echo),
    ],
    render_error=_render,
)


def test_a_new_dialect_needs_only_routes_and_an_error_renderer():
    with in_process(SandboxApp(dialects=[TOY], manage_connections=False)) as http:
        echoed = http.post("/toy/echo/abc", json={"x": 1})
        assert echoed.json() == {"name": "abc", "body": {"x": 1}}
        assert http.post("/toy/echo/ABC", json={}).json()["code"] == "NOT_FOUND"
        assert http.get("/toy/echo/abc").status_code == 405
        malformed = http.post("/toy/echo/abc", content=b"{")
        assert (malformed.status_code, malformed.json()["code"]) == (400, "MALFORMED_JSON")


def test_a_bug_in_a_handler_becomes_the_vendors_500_not_a_crash():
    with in_process(SandboxApp(dialects=[TOY], manage_connections=False)) as http:
        answer = http.get("/toy/broken")
    assert answer.status_code == 500
    assert answer.json()["code"] == "INTERNAL"


def test_a_dropped_answer_in_timeout_mode_hangs_first(client, sleeps):
    client.put(
        "/_control/faults",
        json={
            "systems": {
                "kantata": {"drop_rate": 1, "drop_mode": "timeout", "drop_hang_seconds": 12}
            }
        },
    )
    with pytest.raises(ResponseDropped):
        client.post(
            "/kantata/api/v1/workspaces.json", json={"workspace": {"title": "x"}}, headers=KANTATA
        )
    assert sleeps.calls == [12.0]


def test_a_control_payload_with_one_bad_system_applies_to_none(client):
    answer = client.put(
        "/_control/faults",
        json={"systems": {"kantata": {"error_rate": 0.5}, "scim": {"error_rate": 9}}},
    )
    assert answer.status_code == 400
    assert (
        client.get("/_control/faults").json()["systems"].get("kantata", {}).get("error_rate", 0.0)
        == 0.0
    )
