from celery import shared_task

from .services import prepare_study_for_reading


@shared_task(acks_late=True)
def prepare_for_reading(study_id: int) -> None:
    prepare_study_for_reading(study_id)
