"""Thin tasks: ids only; the rows are the record, the broker only a nudge."""

from __future__ import annotations

from typing import Any

from celery import shared_task


@shared_task(ignore_result=True)
def deliver_alert(alert_id: int) -> str:
    """Deliver one alert now (the fast path); the periodic pass catches anything this misses."""
    from .outbox import deliver

    return deliver(alert_id)


@shared_task(ignore_result=True)
def run_due_alerts() -> dict[str, Any]:
    from .service import run_due_alerts as run

    return run()
