"""« Non diagnostique, à refaire »: the radiologist reading a study sends it back to its site
with a reason; the site sees why; the repeated images bring it back to the worklist."""

from __future__ import annotations

import io

import pytest
from django.urls import reverse
from pydicom import examples
from pydicom.uid import generate_uid

from studies import lifecycle
from studies.lifecycle import Transition
from studies.models import Status, Study
from tests.helpers import api_client

pytestmark = [pytest.mark.django_db, pytest.mark.orthanc]


def _slice(study_uid: str) -> bytes:
    ds = examples.ct.copy()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _send(tech, data: bytes) -> Study:
    answer = api_client(tech).post(
        reverse("api_upload"),
        {"files": [io.BytesIO(data)], "indication": "Chute", "priority": "urgent"},
        format="multipart",
    )
    assert answer.status_code == 201, answer.content
    return Study.objects.get(pk=answer.json()["verdicts"][0]["study"])


def test_a_returned_study_tells_the_site_why_and_comes_back_when_repeated(tech_a, radiologist, client):
    study_uid = generate_uid()
    study = _send(tech_a, _slice(study_uid))
    lifecycle.transition(study, Transition.CLAIM, actor=radiologist)

    client.force_login(radiologist)
    page = client.get(reverse("read", args=[study.pk])).content.decode()
    assert 'name="reason"' in page and "Flou de mouvement" in page
    refused = client.post(reverse("return_study", args=[study.pk]), {"reason": ""})
    assert refused.status_code == 302 and Study.objects.get(pk=study.pk).status == Status.IN_READING
    client.post(reverse("return_study", args=[study.pk]), {"reason": "motion"})
    study.refresh_from_db()
    assert study.status == Status.RETURNED and study.assigned_to is None
    assert study.history[-1].reason_code == "motion" and study.history[-1].actor == radiologist

    client.force_login(tech_a)
    shown = client.get(reverse("study_detail", args=[study.pk])).content.decode()
    assert "Images non diagnostiques, examen à refaire : Flou de mouvement" in shown

    _send(tech_a, _slice(study_uid))  # the site repeats it: the same study, new images
    study.refresh_from_db()
    assert study.status in (Status.RECEIVED, Status.QUEUED) and study.instances.count() == 2
    assert [e.transition for e in study.history][-2:] == ["arrive", "receive"]


def test_the_api_needs_a_known_reason_and_only_the_reader_may_return(tech_a, radiologist, radiologist_2):
    study = _send(tech_a, _slice(generate_uid()))
    lifecycle.transition(study, Transition.CLAIM, actor=radiologist)
    url = reverse("api_return", args=[study.pk])
    assert api_client(radiologist).post(url, {"reason": "blurry"}, format="json").status_code == 400
    assert api_client(radiologist_2).post(url, {"reason": "motion"}, format="json").status_code == 403
    assert api_client(tech_a).post(url, {"reason": "motion"}, format="json").status_code == 403
    answer = api_client(radiologist).post(url, {"reason": "exposure"}, format="json")
    assert answer.status_code == 200 and answer.json()["status"] == "returned"
