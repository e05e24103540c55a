"""Thin tasks: ids in, a service call, nothing else."""

from celery import shared_task
from django.conf import settings

from . import shadow
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
def run_shadow_models(study_id: int) -> None:
    """The models under trial on a live case (preread.shadow): measured, never ranked."""
    shadow.run_shadow_models(study_id=study_id)
