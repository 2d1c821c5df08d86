"""Contract tests of the Kantata (Mavenlink) REST v1 emulator (in-process)."""

from __future__ import annotations

import datetime as dt

import pytest

from sandbox import storage
from sandbox.models import SandboxEvent, SandboxRecord
from sandbox.router import SANDBOX_DB

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

API = "/kantata/api/v1"
START = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def kantata(client):
    client.headers["Authorization"] = "Bearer sandbox-kantata-token"
    return client


def workspace(title: str = "Migration") -> SandboxRecord:
    return storage.record_create(
        system="kantata", object_type="workspaces", data={"title": title, "currency": "EUR"}
    )


def time_entries_bulk(count: int, *, workspace_id: int, approved_every: int = 2) -> None:
    storage.record_bulk_insert(
        records=(
            SandboxRecord(
                system="kantata",
                object_type="time_entries",
                parent_id=workspace_id,
                status="approved" if n % approved_every == 0 else "unapproved",
                data={
                    "user_id": str(1 + n % 3),
                    "story_id": "7",
                    "date_performed": (START.date() + dt.timedelta(days=n % 28)).isoformat(),
                    "time_in_minutes": 60,
                    "billable": True,
                    "rate_in_cents": 15000,
                    "currency": "EUR",
                },
                created_at=START,
                updated_at=START + dt.timedelta(minutes=n),
            )
            for n in range(count)
        )
    )


def error_of(answer) -> dict:
    body = answer.json()
    assert set(body) == {"errors"}, body
    return body["errors"][0]


# -- auth --------------------------------------------------------------------------------------
@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Token sandbox-kantata-token"])
def test_a_request_without_the_bearer_token_gets_401_in_kantatas_shape(client, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    answer = client.get(f"{API}/workspaces.json", headers=headers)
    assert answer.status_code == 401
    assert error_of(answer)["type"] == "authentication"


# -- lists -------------------------------------------------------------------------------------
def test_a_list_is_side_loaded_with_results_keys_and_meta(kantata):
    ws = workspace()
    answer = kantata.get(f"{API}/workspaces.json")
    body = answer.json()
    assert answer.status_code == 200
    assert body["count"] == 1
    assert body["results"] == [{"key": "workspaces", "id": str(ws.pk)}]
    assert body["workspaces"][str(ws.pk)]["title"] == "Migration"
    assert body["meta"] == {"count": 1, "page_count": 1, "page_number": 1, "page_size": 20}


def test_time_entries_page_with_per_page_to_the_last_page(kantata):
    ws = workspace()
    time_entries_bulk(450, workspace_id=ws.pk)
    ids: list[str] = []
    page = 1
    while True:
        body = kantata.get(
            f"{API}/time_entries.json", params={"page": page, "per_page": 200}
        ).json()
        ids += [r["id"] for r in body["results"]]
        if page >= body["meta"]["page_count"]:
            break
        page += 1
    assert page == 3
    assert len(ids) == len(set(ids)) == 450
    beyond = kantata.get(f"{API}/time_entries.json", params={"page": 4, "per_page": 200}).json()
    assert beyond["results"] == []
    assert beyond["count"] == 450


def test_per_page_above_200_is_capped_at_200(kantata):
    ws = workspace()
    time_entries_bulk(250, workspace_id=ws.pk)
    body = kantata.get(f"{API}/time_entries", params={"per_page": 1000}).json()
    assert len(body["results"]) == 200
    assert body["meta"]["page_size"] == 200


def test_updated_after_returns_only_later_changes_in_update_order(kantata):
    ws = workspace()
    time_entries_bulk(100, workspace_id=ws.pk)
    body = kantata.get(
        f"{API}/time_entries.json",
        params={
            "updated_after": "2025-03-01T10:00:00Z",
            "order": "updated_at:asc",
            "per_page": 200,
        },
    ).json()
    assert body["count"] == 39  # minutes 61..99
    stamps = [body["time_entries"][r["id"]]["updated_at"] for r in body["results"]]
    assert stamps == sorted(stamps)


def test_the_approval_filter_selects_approved_or_unapproved_entries(kantata):
    ws = workspace()
    time_entries_bulk(10, workspace_id=ws.pk)
    approved = kantata.get(f"{API}/time_entries.json", params={"approved": "true"}).json()
    unapproved = kantata.get(f"{API}/time_entries.json", params={"status": "unapproved"}).json()
    assert (approved["count"], unapproved["count"]) == (5, 5)
    assert all(e["approved"] for e in approved["time_entries"].values())


def test_workspace_user_and_date_filters_narrow_time_entries(kantata):
    first, second = workspace("A"), workspace("B")
    time_entries_bulk(9, workspace_id=first.pk)
    time_entries_bulk(4, workspace_id=second.pk)
    by_workspace = kantata.get(f"{API}/time_entries", params={"workspace_id": second.pk}).json()
    by_user = kantata.get(
        f"{API}/time_entries", params={"workspace_id": first.pk, "user_id": "1"}
    ).json()
    by_date = kantata.get(
        f"{API}/time_entries", params={"date_performed_between": "2025-03-01:2025-03-02"}
    ).json()
    assert by_workspace["count"] == 4
    assert by_user["count"] == 3
    assert by_date["count"] == 4  # day 0 and day 1 in each workspace
    entry = next(iter(by_workspace["time_entries"].values()))
    assert entry["workspace_id"] == str(second.pk)


def test_only_returns_just_the_listed_ids(kantata):
    a, _b, c = workspace("A"), workspace("B"), workspace("C")
    body = kantata.get(f"{API}/workspaces.json", params={"only": f"{a.pk},{c.pk}"}).json()
    assert sorted(body["workspaces"]) == sorted([str(a.pk), str(c.pk)])


@pytest.mark.parametrize(
    "params",
    [
        {"page": "0"},
        {"per_page": "many"},
        {"updated_after": "yesterday"},
        {"approved": "maybe"},
        {"workspace_id": "one,two"},
        {"order": "title:asc"},
        {"date_performed_between": "2025-03-01"},
    ],
)
def test_a_bad_list_parameter_is_a_400_not_a_500(kantata, params):
    answer = kantata.get(f"{API}/time_entries.json", params=params)
    assert answer.status_code == 400
    assert error_of(answer)["type"] == "argument"


def test_every_listed_resource_answers(kantata):
    for resource in ("workspaces", "stories", "users", "assignments", "time_entries", "expenses"):
        answer = kantata.get(f"{API}/{resource}.json")
        assert answer.status_code == 200, resource
        assert answer.json()["count"] == 0


def test_an_unknown_record_or_resource_is_a_404(kantata):
    assert kantata.get(f"{API}/workspaces/999999.json").status_code == 404
    assert error_of(kantata.get(f"{API}/invoices.json"))["type"] == "not_found"


# -- workspace writes --------------------------------------------------------------------------
def test_a_workspace_is_created_and_updated(kantata):
    created = kantata.post(
        f"{API}/workspaces.json",
        json={
            "workspace": {
                "title": "ERP rollout",
                "currency": "GBP",
                "start_date": "2025-04-01",
                "external_reference": "PRJ-1",
            }
        },
    )
    assert created.status_code == 200, created.text
    body = created.json()
    ws_id = body["results"][0]["id"]
    assert body["workspaces"][ws_id]["external_reference"] == "PRJ-1"
    updated = kantata.put(
        f"{API}/workspaces/{ws_id}.json", json={"workspace": {"title": "ERP rollout (phase 2)"}}
    )
    assert updated.status_code == 200
    assert updated.json()["workspaces"][ws_id]["title"] == "ERP rollout (phase 2)"
    assert updated.json()["workspaces"][ws_id]["currency"] == "GBP"


def test_a_second_create_of_the_same_workspace_is_not_deduplicated_without_a_reference(kantata):
    """Kantata honours no idempotency key: a blind retry makes a duplicate."""
    for _ in range(2):
        kantata.post(f"{API}/workspaces.json", json={"workspace": {"title": "Twice"}})
    assert kantata.get(f"{API}/workspaces.json").json()["count"] == 2


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"workspace": {"title": ""}}, 422, "title"),
        ({"workspace": {"description": "no title"}}, 422, "title"),
        ({"workspace": {"title": "x", "colour": "red"}}, 422, "colour"),
        ({"workspace": {"title": 5}}, 422, "title"),
        ({"workspace": {"title": "x", "start_date": "01/04/2025"}}, 422, "start_date"),
        ({"workspace": {"title": "x", "currency": "XXX"}}, 422, "currency"),
        ({"workspace": {"title": "x", "price_in_cents": 12.5}}, 422, "price_in_cents"),
        (
            {"workspace": {"title": "x", "start_date": "2025-05-01", "due_date": "2025-04-01"}},
            422,
            "due_date",
        ),
        ({"title": "not wrapped"}, 400, None),
        ([1, 2], 400, None),
    ],
)
def test_an_invalid_workspace_gets_kantatas_validation_error(kantata, body, status, field):
    answer = kantata.post(f"{API}/workspaces.json", json=body)
    assert answer.status_code == status
    error = error_of(answer)
    assert error["type"] == ("validation" if status == 422 else "argument")
    assert error.get("field") == field


def test_malformed_json_on_a_workspace_is_a_400(kantata):
    answer = kantata.post(
        f"{API}/workspaces.json", content=b"{title", headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 400


def test_a_taken_external_reference_is_a_422(kantata):
    body = {"workspace": {"title": "x", "external_reference": "PRJ-1"}}
    assert kantata.post(f"{API}/workspaces.json", json=body).status_code == 200
    again = kantata.post(f"{API}/workspaces.json", json=body)
    assert again.status_code == 422
    assert error_of(again)["field"] == "external_reference"


def test_time_entries_cannot_be_posted_through_the_api(kantata):
    # Time is booked by consultants in the PSA; stories and workspaces are what Ledgerbridge
    # provisions (the tests below).
    answer = kantata.post(f"{API}/time_entries.json", json={"time_entry": {"time_in_minutes": 60}})
    assert answer.status_code == 405


# -- change feed -------------------------------------------------------------------------------
def test_the_change_feed_returns_changes_after_a_cursor(kantata):
    ws = workspace()
    storage.record_update(record=ws, changes={"title": "Renamed"})
    first = kantata.get(f"{API}/change_events.json").json()
    assert [e["change_type"] for e in first["change_events"].values()] == ["created", "updated"]
    cursor = first["meta"]["next_cursor"]
    storage.record_update(record=ws, changes={"title": "Renamed again"})
    second = kantata.get(f"{API}/change_events.json", params={"since": cursor}).json()
    events = list(second["change_events"].values())
    assert len(events) == 1
    assert events[0]["subject_type"] == "Workspace"
    assert events[0]["subject_id"] == str(ws.pk)
    assert events[0]["changes"] == {"title": "Renamed again"}


def test_a_cursor_older_than_the_retention_has_expired(kantata):
    old = timezone_now() - dt.timedelta(days=10)
    ws = storage.record_create(
        system="kantata", object_type="workspaces", data={"title": "Old"}, now=old
    )
    storage.record_update(record=ws, changes={"title": "Older"}, now=old)
    cursor = SandboxEvent.objects.using(SANDBOX_DB).order_by("pk").first().pk
    storage.record_update(record=ws, changes={"title": "Now"})
    answer = kantata.get(f"{API}/change_events.json", params={"since": cursor})
    assert answer.status_code == 410
    assert error_of(answer)["type"] == "cursor_expired"
    fresh = kantata.get(f"{API}/change_events.json").json()
    assert len(fresh["change_events"]) == 1


# -- rate limit --------------------------------------------------------------------------------
def test_over_the_rate_limit_kantata_answers_429_without_retry_after(kantata):
    kantata.put("/_control/faults", json={"systems": {"kantata": {"rate_limit": 2}}})
    answers = [kantata.get(f"{API}/workspaces.json") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert "Retry-After" not in answers[-1].headers
    assert error_of(answers[-1])["type"] == "rate_limit"


def timezone_now() -> dt.datetime:
    from django.utils import timezone

    return timezone.now()


def story_post(kantata, **story):
    return kantata.post(f"{API}/stories.json", json={"story": story})


def test_stories_are_created_under_their_workspace_and_parent_and_found_by_reference(kantata):
    workspace = kantata.post(f"{API}/workspaces.json", json={"workspace": {"title": "W"}})
    workspace_id = workspace.json()["results"][0]["id"]
    phase = story_post(
        kantata, title="Delivery", workspace_id=workspace_id, external_reference="P-1.1"
    )
    phase_id = phase.json()["results"][0]["id"]
    child = story_post(
        kantata,
        title="Consulting",
        workspace_id=workspace_id,
        parent_id=phase_id,
        external_reference="P-1.1.1",
    )
    assert child.status_code == 200, child.text

    found = kantata.get(f"{API}/stories.json", params={"external_reference": "P-1.1.1"}).json()
    (story,) = found["stories"].values()
    assert (story["title"], story["parent_id"], story["workspace_id"]) == (
        "Consulting",
        phase_id,
        workspace_id,
    )
    story_id = found["results"][0]["id"]
    renamed = kantata.put(f"{API}/stories/{story_id}.json", json={"story": {"title": "Advice"}})
    assert renamed.status_code == 200
    assert kantata.get(f"{API}/stories/{story_id}.json").json()["stories"][story_id]["title"] == (
        "Advice"
    )


def test_a_story_without_its_workspace_or_under_another_workspaces_story_is_refused(kantata):
    first = kantata.post(f"{API}/workspaces.json", json={"workspace": {"title": "A"}})
    second = kantata.post(f"{API}/workspaces.json", json={"workspace": {"title": "B"}})
    a, b = (w.json()["results"][0]["id"] for w in (first, second))
    parent = story_post(kantata, title="Phase", workspace_id=a).json()["results"][0]["id"]

    assert story_post(kantata, title="Orphan").status_code == 422
    assert story_post(kantata, title="Lost", workspace_id="999999").status_code == 422
    assert story_post(kantata, title="Wrong", workspace_id=b, parent_id=parent).status_code == 422
    assert story_post(kantata, title="X", workspace_id=a, colour="red").status_code == 422
