"""The pull position moves from JSON in `PullWatermark.value` (255 characters, the cursor
dropped when it did not fit) to the columns of `PullPosition`. Reversible: going back writes
the old encoding, and a cursor too long for it is dropped as before (that pull restarts)."""

import json

import django.db.models.deletion
from django.db import migrations, models
from django.utils.dateparse import parse_datetime

OLD_MAX_LENGTH = 255


def position_from_value(value):
    """(since, cursor, reached, started_at) of a `PullWatermark.value`: the plain value of a
    complete pull, or the JSON {"since", "cursor", "mark", "started"} of one under way."""
    if value.startswith("{"):
        data = json.loads(value)
        started = data.get("started")
        return (
            data.get("since"),
            data.get("cursor"),
            data.get("mark"),
            parse_datetime(started) if started else None,
        )
    return (value or None, None, value or None, None)


def value_from_position(since, cursor, reached, started_at):
    """The `PullWatermark.value` of a position; None when its cursor is too long to keep."""
    if cursor is None:
        return since or ""
    value = json.dumps(
        {
            "since": since,
            "cursor": cursor,
            "mark": reached,
            "started": started_at.isoformat() if started_at else None,
        },
        separators=(",", ":"),
    )
    return value if len(value) <= OLD_MAX_LENGTH else None


def forwards(apps, schema_editor):
    PullWatermark = apps.get_model("pipeline", "PullWatermark")
    PullPosition = apps.get_model("pipeline", "PullPosition")
    rows = []
    for old in PullWatermark.objects.all().iterator():
        since, cursor, reached, started_at = position_from_value(old.value)
        rows.append(
            PullPosition(
                connection_id=old.connection_id,
                entity=old.entity,
                since=since,
                cursor=cursor,
                reached=reached,
                started_at=started_at,
            )
        )
    PullPosition.objects.bulk_create(rows, batch_size=1000)


def backwards(apps, schema_editor):
    PullWatermark = apps.get_model("pipeline", "PullWatermark")
    PullPosition = apps.get_model("pipeline", "PullPosition")
    rows = []
    for new in PullPosition.objects.all().iterator():
        value = value_from_position(new.since, new.cursor, new.reached, new.started_at)
        if value is None:  # the cursor does not fit: keep where that pull started
            value = value_from_position(new.since, None, None, None)
        rows.append(PullWatermark(connection_id=new.connection_id, entity=new.entity, value=value))
    PullWatermark.objects.bulk_create(rows, batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("pipeline", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="PullPosition",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("entity", models.CharField(max_length=48)),
                ("since", models.TextField(blank=True, null=True)),
                ("cursor", models.TextField(blank=True, null=True)),
                ("reached", models.TextField(blank=True, null=True)),
                ("started_at", models.DateTimeField(blank=True, null=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "connection",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, to="pipeline.connection"
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("connection", "entity"), name="pull_position_once"
                    )
                ],
            },
        ),
        migrations.RunPython(forwards, backwards),
        migrations.DeleteModel(name="PullWatermark"),
    ]
