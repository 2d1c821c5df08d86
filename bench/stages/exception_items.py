"""The portal bench's exception items (bench/portal_pages.py): N items COPY'd as the pipeline
would have raised them, from the posting rules' own codes, queues and messages, with history for
every tenth (set-up, not measured; what they look like: portal_pages.py's docstring)."""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from decimal import Decimal

DAYS = 60
GIANT_SHARE = 0.5  # of all items, under one root cause
TAIL_CAUSES = 400
HISTORY_EVERY = 10
USERS = 20
ENTITIES = ("LB-GB", "LB-US", "LB-DE", "")
ENTITY_WEIGHTS = (40, 30, 20, 10)


def causes_build(rng: random.Random) -> list[dict]:
    """Root causes with their share of the items: one giant, a Zipf tail over the rules' codes,
    and the pipeline's technical failures."""
    from sync.pipeline.exception_items import root_cause_signature
    from sync.pipeline.models.exception_items import Queue, Stage
    from sync.pipeline.rules import RULES

    def cause_value(field: str, k: int) -> dict:
        """The facts a rule's message names, for the k-th cause of that rule."""
        project = f"P-{10000 + k:05d}"
        return {
            "project_ref": f"ws-{k}",
            "project_code": project,
            "project_status": rng.choice(["closed", "on_hold"]),
            "task_ref": f"st-{k}",
            "task_code": f"{project}.{k % 7 + 1}",
            "worker_ref": f"u-{k}",
            "worker_number": f"E{k:06d}",
            "worker_status": rng.choice(["terminated", "suspended"]),
            "legal_entity": ["UK01", "DE01", "US01", "FR01", "NL01", "IE01", "ES01"][k % 7],
            "currency": ["CHF", "SEK", "NOK", "PLN", "DKK"][k % 5],
            "service_item": f"SVC-{k:03d}",
            "period_name": f"{['UK01', 'DE01', 'US01'][k % 3]} 2026-{k % 12 + 1:02d}",
            "customer_name": f"Customer {k} Ltd",
            "customer_status": "pending_approval",
        }

    causes = []
    giant_values = cause_value("legal_entity", 1)
    giant_rule = next(rule for rule, _ in RULES if rule.code == "LEGAL_ENTITY_UNMAPPED")
    causes.append({"rule": giant_rule, "values": giant_values, "weight": None})
    rules = [rule for rule, _ in RULES]
    tail = []
    for k in range(1, TAIL_CAUSES + 1):
        rule = rules[(k * 7) % len(rules)]
        tail.append({"rule": rule, "values": cause_value(rule.cause, k), "weight": 1 / k**1.1})
    causes += tail
    technical = [
        ("MALFORMED_PAYLOAD", Stage.PARSE, "The PSA sent a time entry Ledgerbridge cannot read"),
        ("DELIVERY_REJECTED", Stage.DELIVER, "The ERP refused the timeBill"),
    ]
    for code, stage, text in technical:
        causes.append(
            {
                "technical": (code, stage, text),
                "queue": Queue.INTEGRATION_OPS,
                "values": {},
                "weight": 0.03,
            }
        )
    for cause in causes:
        if "rule" in cause:
            rule = cause["rule"]
            cause.update(
                queue=rule.queue,
                code=rule.code,
                stage=Stage.VALIDATE,
                category="configuration" if rule.queue == Queue.MAPPING else "business",
                cause=str(cause["values"][rule.cause]),
                fix=rule.suggested_fix.format(**cause["values"]),
            )
        else:
            code, stage, _ = cause["technical"]
            cause.update(
                code=code,
                stage=stage,
                category="technical",
                cause=code,
                fix="Check the source record, then replay.",
            )
        cause["signature"] = root_cause_signature(
            queue=cause["queue"], code=cause["code"], cause=cause["cause"]
        )
    return causes


def _message(cause: dict, work_date: dt.date, external_id: str) -> str:
    if "rule" in cause:
        return cause["rule"].message.format(**cause["values"], work_date=work_date)
    return f"{cause['technical'][2]} {external_id}: field 'hours' is not a number."


def items_fill(n: int, *, seed: int = 15) -> dict:
    """COPY n exception items (see the module docstring), a "+" history row for every tenth,
    ANALYZE. Returns what was built."""
    import orjson
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.utils import timezone

    from sync.pipeline.exception_items import SLA_HOURS

    rng = random.Random(seed)
    finance = Group.objects.get(name="finance")
    users = []
    for i in range(USERS):
        user, _ = get_user_model().objects.get_or_create(username=f"bench-finance-{i}")
        user.groups.add(finance)
        users.append(user.pk)
    causes = causes_build(rng)
    giant, rest = causes[0], causes[1:]
    weights = [c["weight"] for c in rest]
    now = timezone.now()
    started = time.perf_counter()
    columns = (
        "queue",
        "stage",
        "code",
        "category",
        "message",
        "suggested_fix",
        "detail",
        "record_key",
        "payload",
        "money_at_risk",
        "currency",
        "correlation_id",
        "root_cause",
        "cause",
        "status",
        "reason",
        "occurrences",
        "first_failed_at",
        "last_failed_at",
        "sla_due_at",
        "closed_at",
        "assignee_id",
        "legal_entity",
    )
    cent = Decimal("0.01")
    giant_n = int(n * GIANT_SHARE)
    order = [giant] * giant_n + rng.choices(rest, weights=weights, k=n - giant_n)
    rng.shuffle(order)  # causes arrive interleaved over the 60 days, not one after another
    with (
        connection.cursor() as cursor,
        cursor.copy(f"COPY pipeline_exceptionitem ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for i, cause in enumerate(order):
            entity = "expense" if i % 10 == 9 else "time_entry"
            external_id = f"{'EX' if entity == 'expense' else 'TE'}-{i}"
            first = now - dt.timedelta(seconds=rng.random() * DAYS * 86400)
            work_date = (first - dt.timedelta(days=rng.randrange(1, 10))).date()
            hours = Decimal(rng.randint(1, 40)) / 4
            rate = Decimal(rng.choice([95, 120, 150, 180, 250, 400]))
            currency = rng.choices(("GBP", "EUR", "USD"), weights=(50, 30, 20))[0]
            amount = None if rng.random() < 0.15 else (hours * rate).quantize(cent)
            if amount is not None and entity == "expense":
                amount = Decimal(rng.randint(500, 5_000_000)) * cent
            roll = rng.random()
            status, reason, closed, assignee = "open", "", None, None
            if roll < 0.07:
                status, reason = "resolved", "Passed validation on replay."
            elif roll < 0.10:
                status, reason = "ignored", "Written off: booked in error."
            elif roll < 0.172:
                status, assignee = "in_progress", users[i % USERS]
            last = first + dt.timedelta(hours=rng.random() * 48)
            if status in ("resolved", "ignored"):
                closed = last + dt.timedelta(hours=rng.random() * 24)
            payload = {
                "id": external_id,
                "workspace_id": f"ws-{rng.randrange(2000)}",
                "user_id": f"u-{rng.randrange(5000)}",
                "date_performed": work_date.isoformat(),
                "time_in_minutes": int(hours * 60),
                "rate_in_cents": int(rate * 100),
                "currency": currency,
            }
            copy.write_row(
                (
                    cause["queue"],
                    cause["stage"],
                    cause["code"],
                    cause["category"],
                    _message(cause, work_date, external_id),
                    cause["fix"],
                    orjson.dumps({"rule": cause["code"]}).decode(),
                    f"psa:{entity}:{i}",
                    orjson.dumps(payload).decode(),
                    amount,
                    currency,
                    uuid.UUID(int=rng.getrandbits(128)).hex,
                    cause["signature"],
                    cause["cause"],
                    status,
                    reason,
                    1 + (rng.random() < 0.2) + (rng.random() < 0.05),
                    first,
                    last,
                    first + dt.timedelta(hours=SLA_HOURS.get(cause["queue"], 24)),
                    closed,
                    assignee,
                    "LB-NL" if cause is giant else rng.choices(ENTITIES, ENTITY_WEIGHTS)[0],
                )
            )
    items_seconds = time.perf_counter() - started
    history_columns = ", ".join(
        c
        for c in (
            "id",
            *columns,
            "inbox_item_id",
            "delivery_id",
            "run_id",
        )
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO pipeline_historicalexceptionitem ({history_columns}, history_actor, "  # noqa: S608 - fixed names
            "history_date, history_type) "
            f"SELECT {history_columns}, 'system:pipeline', first_failed_at, '+' "
            "FROM pipeline_exceptionitem WHERE id %% %s = 0",
            [HISTORY_EVERY],
        )
        # VACUUM too: autovacuum would set the visibility map within minutes of a bulk load, and
        # until it has, every index-only scan also visits the table.
        cursor.execute("VACUUM ANALYZE pipeline_exceptionitem")
        cursor.execute("VACUUM ANALYZE pipeline_historicalexceptionitem")
    return {
        "items": n,
        "seconds": time.perf_counter() - started,
        "items_seconds": items_seconds,
        "causes": len({cause["signature"] for cause in causes}),
        "giant": giant["signature"],
    }
