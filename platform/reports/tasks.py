"""Thin tasks: ids in, a service call, the retry policy."""

from celery import shared_task

from orthanc.client import OrthancError

from .export import deliver_export, deliver_pending_exports


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=5)
def export_report_version(self, export_id: int) -> None:
    """Store a signed version in Orthanc; retried with backoff, then left to the sweep."""
    try:
        deliver_export(export_id)
    except OrthancError as exc:
        raise self.retry(exc=exc, countdown=min(600, 15 * 2**self.request.retries)) from None


@shared_task(ignore_result=True)
def export_pending_reports() -> None:
    deliver_pending_exports()
