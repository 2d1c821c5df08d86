"""The Kantata (Mavenlink) resources the sandbox knows and how they are stored.

`SandboxRecord` rows with system "kantata" and object_type = the resource's JSON key
("workspaces", "stories", "users", "assignments", "time_entries", "expenses"):
- `data` holds the attributes below by their Kantata names (ids of other records as strings,
  money in integer cents with `currency`, dates as "YYYY-MM-DD");
- `id`, `created_at`, `updated_at` come from columns and are rendered as strings/ISO 8601;
- `parent_id` is the numeric workspace id of stories, assignments, time entries and expenses;
- `status` is "approved" / "unapproved" for time entries and expenses (rendered as `approved`),
  the story `state`, or "" ;
- `external_id` is a workspace's `external_reference` (the key Ledgerbridge looks a workspace up
  by before creating one: Kantata honours no idempotency key).
"""

from __future__ import annotations

from dataclasses import dataclass

SYSTEM = "kantata"
DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 200
EVENT_RETENTION_DAYS = 7
CURRENCIES = ("EUR", "GBP", "USD", "CHF", "SEK", "NOK", "DKK", "PLN", "CAD", "AUD", "JPY", "SGD")


@dataclass(frozen=True)
class ResourceSpec:
    key: str  # JSON key and object_type: "time_entries"
    singular: str  # request body wrapper: "time_entry"
    model_name: str  # Kantata's class name in messages: "TimeEntry"
    workspace_scoped: bool = True
    approvable: bool = False
    json_filters: tuple[str, ...] = ()  # id-valued query filters matched against `data`


RESOURCES: dict[str, ResourceSpec] = {
    spec.key: spec
    for spec in (
        ResourceSpec("workspaces", "workspace", "Workspace", workspace_scoped=False),
        ResourceSpec("stories", "story", "Story", json_filters=("parent_id",)),
        ResourceSpec("users", "user", "User", workspace_scoped=False),
        ResourceSpec(
            "assignments", "assignment", "Assignment", json_filters=("story_id", "assignee_id")
        ),
        ResourceSpec(
            "time_entries",
            "time_entry",
            "TimeEntry",
            approvable=True,
            json_filters=("user_id", "story_id"),
        ),
        ResourceSpec("expenses", "expense", "Expense", approvable=True, json_filters=("user_id",)),
    )
}

# Writable workspace attributes and their JSON types ("date" is a YYYY-MM-DD string).
WORKSPACE_FIELDS: dict[str, str] = {
    "title": "string",
    "description": "string",
    "start_date": "date",
    "due_date": "date",
    "currency": "currency",
    "budgeted": "boolean",
    "price_in_cents": "cents",
    "archived": "boolean",
    "external_reference": "string",
    "legal_entity": "string",
    "client_name": "string",
}
WORKSPACE_REQUIRED = ("title",)
