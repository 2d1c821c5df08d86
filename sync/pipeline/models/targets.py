"""What a target system already holds, by the key Ledgerbridge writes it under."""

from __future__ import annotations

from django.db import models


class TargetRecord(models.Model):
    """One record a target system holds under our key (`external_id`), and its id there.

    Learned from the target itself: pulled from its listing (the ERP's timeBills, history
    posted before Ledgerbridge included) or answered by a successful delivery. Time posting
    reads it to tell time already in the ERP from time still to post. It mirrors the target
    and is rewritten whenever the target says otherwise, so it keeps no history of its own:
    the audited link is the canonical record's ExternalRef.

    `source` and `seen_at` say how and when Ledgerbridge learned the current `target_id`; an
    unchanged answer rewrites nothing.
    """

    class Source(models.TextChoices):
        PULLED = "pulled", "Pulled from the target"
        DELIVERED = "delivered", "Delivered by Ledgerbridge"

    # A connection's records go with it: they describe that target and nothing else. No index
    # of its own: the unique constraint's index starts with it.
    connection = models.ForeignKey("pipeline.Connection", on_delete=models.CASCADE, db_index=False)
    record_type = models.CharField(max_length=48, help_text="The target's type, e.g. timeBill.")
    external_id = models.CharField(max_length=255, help_text="Our key, e.g. KT-TE-1234.")
    target_id = models.CharField(max_length=255, help_text="The target's own (internal) id.")
    source = models.CharField(max_length=16, choices=Source.choices)
    seen_at = models.DateTimeField()

    class Meta:
        constraints = [
            # Also the index of the look-up by (connection, record type, external ids).
            models.UniqueConstraint(
                fields=["connection", "record_type", "external_id"], name="targetrecord_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.record_type} {self.external_id} = {self.target_id}"
