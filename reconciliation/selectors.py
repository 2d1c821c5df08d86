"""Reading reconciliation runs (selectors)."""

from __future__ import annotations

from typing import Any

from reconciliation.models import ReconciliationRun


def run_report(*, run: ReconciliationRun) -> dict[str, Any]:
    """The run as JSON-ready values: its scope, totals per side, and every break (kind, pair,
    the external ids on each side, amount, currency, difference, whether and why explained).
    Two queries, whatever the number of breaks."""
    breaks = run.breaks.select_related("legal_entity", "project").order_by(
        "pair", "kind", "record_key"
    )
    return {
        "id": run.pk,
        "trigger": run.trigger,
        "status": run.status,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "scope": {
            "pairs": run.pairs,
            "period": run.period or None,
            "legal_entity": run.legal_entity.code if run.legal_entity else None,
            "project": run.project.code if run.project else None,
            "sync_run": run.sync_run_id,
        },
        "totals": run.totals,
        "break_counts": run.break_counts,
        "error": run.error or None,
        "breaks": [
            {
                "pair": b.pair,
                "kind": b.kind,
                "source_external_id": b.source_external_id or None,
                "target_external_ids": b.target_external_ids,
                "amount": None if b.amount is None else str(b.amount),
                "currency": b.currency or None,
                "difference": None if b.difference is None else str(b.difference),
                "period": b.period or None,
                "legal_entity": b.legal_entity.code if b.legal_entity else None,
                "project": b.project.code if b.project else None,
                "explained": b.explained,
                "explanation": b.explanation or None,
                "exception_item": b.exception_item_id,
                "detail": b.detail,
            }
            for b in breaks
        ],
    }
