"""Thin tasks: ids in, a service call, the retry policy. The database is the record of pending
work (a COMPLETE transfer); a retry here only makes it sooner than the periodic sweep."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from ingest.quota import forget_lapsed_holds
from ingest.services import forget_old_intents

from . import finalisation, transfers  # transfers imports this module too (to enqueue)

KEEP_INTENTS = timedelta(days=30)


@shared_task(bind=True, acks_late=True, max_retries=None)
def finalise_transfer(self, transfer_id: str) -> None:
    result = finalisation.finalise_transfer(transfer_id)
    if result == finalisation.Finalised.BUSY and self.request.retries < settings.UPLOADS_BUSY_RETRIES:
        # Someone holds the row (another finaliser, most likely): never drop it, look again soon.
        raise self.retry(countdown=settings.UPLOADS_BUSY_RETRY_SECONDS)
    if result == finalisation.Finalised.ARCHIVE_DOWN:
        raise self.retry(countdown=min(600, 15 * 2 ** min(self.request.retries, 6)))


@shared_task
def sweep_transfers() -> None:
    """Periodic: expire stale transfers, finish any a killed process left complete but unprocessed."""
    transfers.expire_stale_transfers()
    finalisation.finalise_waiting()
    forget_old_intents(older_than=KEEP_INTENTS)
    forget_lapsed_holds()  # quota holds of requests whose process died


@shared_task(acks_late=True)
def preread_preview(preview_id: int, study_id: int) -> None:
    """The provisional pre-read of a study still arriving, from one of its previews."""
    from .previews import score_provisionally

    score_provisionally(preview_id, study_id)
