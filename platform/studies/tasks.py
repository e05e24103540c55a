from celery import shared_task
from django.conf import settings

from .services import prepare_study_for_reading, requeue_stalled_studies


@shared_task(acks_late=True)
def prepare_for_reading(study_id: int) -> None:
    prepare_study_for_reading(study_id)


@shared_task(ignore_result=True)
def requeue_stalled() -> None:
    requeue_stalled_studies(older_than_s=settings.STALLED_STUDY_SECONDS)
