from celery import shared_task

from .services import preread_study


@shared_task(acks_late=True)
def rerun_preread(study_id: int) -> None:
    """Pre-read a study again with today's models (a new version adds a run; history is kept)."""
    preread_study(study_id=study_id, rerun=True)
