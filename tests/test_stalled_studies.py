"""A study whose 'prepare for reading' message was lost still reaches the queue."""

from datetime import timedelta

import pytest
from django.utils import timezone
from pydicom.uid import generate_uid

from preread.services import requeue_stalled_studies
from studies.lifecycle import Transition
from studies.models import Status, Study, StudyEvent
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_requeues_a_study_left_in_received_when_the_broker_lost_its_message(celery_worker, site_a):
    long_ago = timezone.now() - timedelta(hours=2)
    # Created straight in the database: no 'prepare for reading' message was ever sent for them.
    lost = Study.objects.create(
        orthanc_id="lost", study_instance_uid=generate_uid(), site=site_a, status=Status.RECEIVED
    )
    StudyEvent.objects.create(
        study=lost, transition=Transition.RECEIVE, to_status=Status.RECEIVED, at=long_ago
    )
    fresh = Study.objects.create(
        orthanc_id="fresh", study_instance_uid=generate_uid(), site=site_a, status=Status.RECEIVED
    )
    StudyEvent.objects.create(
        study=fresh, transition=Transition.RECEIVE, to_status=Status.RECEIVED, at=timezone.now()
    )
    assert requeue_stalled_studies(older_than_s=600) == [lost.pk]
    wait_for(lambda: Study.objects.get(pk=lost.pk).status == Status.QUEUED, timeout=30)
    assert Study.objects.get(pk=fresh.pk).status == Status.RECEIVED  # not its turn yet
