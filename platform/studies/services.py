"""What happens to a study as it moves along; views, API and tasks all come through here."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import DateTimeField, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import User

from .models import Status, Study

log = logging.getLogger(__name__)


def study_received(study: Study) -> None:
    """A study is in the archive: stamp it and prepare it for reading, off the request."""
    if study.received_at is None:
        study.move_to(Status.RECEIVED)
    from .tasks import prepare_for_reading

    transaction.on_commit(lambda: prepare_for_reading.delay(study.pk))


def requeue_stalled_studies(*, older_than_s: int) -> list[int]:
    """Enqueue again the studies still « reçu » after a while.

    The broker is not the record: a lost message (a broker restarted without persistence, a worker
    host gone) must not leave a study waiting forever. Preparing a study twice is harmless.
    """
    from .tasks import prepare_for_reading

    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    stalled = list(
        Study.objects.filter(status=Status.RECEIVED, received_at__lt=cutoff).values_list("pk", flat=True)
    )
    for pk in stalled:
        prepare_for_reading.delay(pk)
    if stalled:
        log.warning("re-queued %d studies still waiting in 'received'", len(stalled))
    return stalled


def prepare_study_for_reading(study_id: int) -> Study | None:
    """Pre-read a received study with the enabled AI models, then put it in the reading queue.

    Whatever the pre-read does (scores, refuses, fails, crashes), the study reaches the queue:
    AI must never stand between a patient and a radiologist. No model enabled: straight to the queue.
    """
    if Study.objects.filter(pk=study_id, status=Status.RECEIVED).exists():
        from preread.services import preread_study

        try:
            run = preread_study(study_id=study_id)
        except Exception:  # a bug there must not hold the study back; the log keeps the trace
            log.exception("pre-read of study %s crashed; queueing it without", study_id)
            run = None
    else:
        run = None
    with transaction.atomic():
        study = Study.objects.select_for_update().filter(pk=study_id).first()
        if study is None:
            return None
        if study.status in (Status.RECEIVED, Status.PRE_READ):
            if run is not None and run.status == "scored":
                study.move_to(Status.PRE_READ)
            study.move_to(Status.QUEUED)
        return study


def claim_study(*, study: Study, radiologist: User) -> bool:
    """Take a study for reading. Atomic: of two radiologists clicking at once, one wins."""
    if not radiologist.is_radiologist:
        return False
    taken = Study.objects.filter(
        Q(assigned_to__isnull=True) | Q(assigned_to=radiologist),
        pk=study.pk,
        status__in=[Status.RECEIVED, Status.PRE_READ, Status.QUEUED, Status.IN_READING],
    ).update(
        assigned_to=radiologist,
        status=Status.IN_READING,
        reading_started_at=Coalesce(
            "reading_started_at", Value(timezone.now(), output_field=DateTimeField())
        ),
    )
    study.refresh_from_db()
    return bool(taken)


def mark_delivered(study: Study) -> None:
    """The site has opened its signed report."""
    Study.objects.filter(pk=study.pk, status=Status.REPORTED).update(
        status=Status.DELIVERED, delivered_at=timezone.now()
    )
    study.refresh_from_db()
