"""Periodic work of assignment (beat: CELERY_BEAT_SCHEDULE["sweep-claims"]). Timers are rows:
a claim's start is its StudyEvent; this task reads them, never a countdown on a message."""

from __future__ import annotations

import logging

from celery import shared_task

from studies import lifecycle

from .push import assign_waiting_cases, push_mode

log = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def sweep_claims() -> dict[str, int]:
    """Claims held past ASSIGNMENT_CLAIM_TIMEOUT_MINUTES back to the queue; then, in push mode,
    every waiting case to a radiologist on shift."""
    expired = lifecycle.expire_overdue_claims()
    assigned = assign_waiting_cases() if push_mode() else []
    if expired or assigned:
        log.info("assignment sweep: %d claim(s) expired, %d case(s) assigned", len(expired), len(assigned))
    return {"expired": len(expired), "assigned": len(assigned)}


@shared_task(ignore_result=True)
def assign_waiting() -> int:
    """Push mode, at once when a case becomes claimable (the sweep catches anything missed)."""
    return len(assign_waiting_cases()) if push_mode() else 0
