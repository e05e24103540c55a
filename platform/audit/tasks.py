"""Thin tasks: the audit spool's replay (Celery beat, CELERY_BEAT_SCHEDULE["audit-replay-spool"])."""

from celery import shared_task

from .spool import replay_spool


@shared_task(ignore_result=True)
def replay_audit_spool() -> int:
    """Rows the database refused at the time, into the table now (the database may be back)."""
    return replay_spool()
