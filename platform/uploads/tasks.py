"""Thin tasks: ids in, a service call, nothing else."""

from celery import shared_task


@shared_task(acks_late=True)
def finalise_upload(upload_id: str) -> None:
    from .services import finalise_upload as finalise

    finalise(upload_id)


@shared_task
def sweep_uploads() -> None:
    """Periodic: expire stale uploads, finish any a killed process left complete but unprocessed."""
    from .services import expire_stale_uploads, finalise_waiting

    expire_stale_uploads()
    finalise_waiting()
