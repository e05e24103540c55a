from celery import shared_task

from .heartbeat import record


@shared_task(ignore_result=True)
def beat_tick() -> None:
    """Scheduled by beat every HEALTH_BEAT_SECONDS: its run proves beat (and a worker) alive."""
    record("beat")
