"""Thin tasks: ids in, a service call, nothing else."""

from celery import shared_task
from django.conf import settings

from .services import prepare_study_for_reading, preread_study, requeue_stalled_studies


@shared_task(acks_late=True)
def prepare_for_reading(study_id: int) -> None:
    prepare_study_for_reading(study_id)


@shared_task(acks_late=True)
def rerun_preread(study_id: int) -> None:
    """Pre-read a study again with today's models (a new version adds a run; history is kept)."""
    preread_study(study_id=study_id)


@shared_task(ignore_result=True)
def requeue_stalled() -> None:
    requeue_stalled_studies(older_than_s=settings.STALLED_STUDY_SECONDS)


@shared_task(acks_late=True)
def preread_preview(preview_id: int, study_id: int) -> None:
    """The provisional pre-read of a study still arriving, from one of its previews."""
    from .provisional import score_preview

    score_preview(preview_id=preview_id, study_id=study_id)
