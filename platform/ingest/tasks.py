from celery import shared_task

from .changes_feed import follow_changes


@shared_task(acks_late=True, ignore_result=True)
def follow_orthanc_changes() -> int:
    return follow_changes()
