"""A study sent with a manifest is « en cours d'arrivée » until its last instance is in the
archive: its site sees it with its progress, the worklist shows it, nobody can claim or sign it.
Runs on a CT slice that pydicom ships (no shared test data needed)."""

from __future__ import annotations

import base64
import hashlib
import io

import pydicom
import pytest
from django.urls import reverse
from pydicom import examples
from pydicom.uid import generate_uid

from reports.services import save_report
from studies import lifecycle
from studies.lifecycle import Transition
from studies.models import Status, Study
from tests.helpers import api_client

pytestmark = [pytest.mark.django_db, pytest.mark.orthanc]
TUS = {"HTTP_TUS_RESUMABLE": "1.0.0"}


def _slices(n: int) -> list[tuple[str, bytes]]:
    study_uid, series_uid = generate_uid(), generate_uid()
    out = []
    for i in range(n):
        ds = examples.ct.copy()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.InstanceNumber = i + 1
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        out.append((str(ds.SOPInstanceUID), buffer.getvalue()))
    return out


def _send(client, data: bytes, manifest: str) -> None:
    meta = ",".join(
        f"{k} {base64.b64encode(v.encode()).decode()}"
        for k, v in {
            "filename": "slice.dcm",
            "manifest": manifest,
            "sha256": hashlib.sha256(data).hexdigest(),
        }.items()
    )
    created = client.post(
        "/api/v1/uploads/", HTTP_UPLOAD_LENGTH=str(len(data)), HTTP_UPLOAD_METADATA=meta, **TUS
    )
    assert created.status_code == 201, created.content
    url = created["Location"]
    assert (
        client.generic(
            "PATCH", url, data, content_type="application/offset+octet-stream", HTTP_UPLOAD_OFFSET="0", **TUS
        ).status_code
        == 204
    )
    assert client.get(url).status_code == 200  # status request: finalises now (no worker here)


def test_a_half_sent_study_is_shown_but_cannot_be_claimed_or_signed(tech_a, radiologist, client):
    slices = _slices(2)
    tech = api_client(tech_a)
    study_uid = str(pydicom.dcmread(io.BytesIO(slices[0][1])).StudyInstanceUID)
    manifest = tech.post(
        "/api/v1/uploads/manifests/",
        {
            "priority": "stat",
            "indication": "Traumatisme crânien",
            "study_instance_uid": study_uid,
            "instances": [
                {"sop_instance_uid": uid, "sha256": hashlib.sha256(d).hexdigest(), "size": len(d)}
                for uid, d in slices
            ],
        },
        format="json",
    ).json()["id"]
    _send(tech, slices[0][1], manifest)

    study = Study.objects.get(study_instance_uid=study_uid)
    assert study.status == Status.ARRIVING and study.priority == "stat"
    assert study.arrival_progress == (1, 2)

    # The site sees it arriving, with its progress.
    client.force_login(tech_a)
    page = client.get(reverse("study_detail", args=[study.pk])).content.decode()
    assert "Examen en cours d'arrivée : 1 / 2 image(s)" in page

    # The radiologist sees it on the worklist, without a button to read it.
    client.force_login(radiologist)
    worklist = client.get(reverse("worklist")).content.decode()
    row = worklist.split(f'data-study="{study.pk}"')[1].split("</tr>")[0]
    assert "en cours d'arrivée" in row and reverse("claim", args=[study.pk]) not in row

    # Claiming is refused by every route, and so is signing.
    dr = api_client(radiologist)
    answer = dr.post(reverse("api_claim", args=[study.pk]))
    assert answer.status_code == 409 and answer.json()["code"] == "not_allowed_now"
    assert client.post(reverse("claim", args=[study.pk])).status_code == 302
    with pytest.raises(lifecycle.TransitionRefused):
        lifecycle.transition(study, Transition.CLAIM, actor=radiologist)
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        save_report(study=study, author=radiologist, findings="", conclusion="Normal", sign=True)
    assert Study.objects.get(pk=study.pk).status == Status.ARRIVING

    # The last slice completes it: now it can be claimed.
    _send(tech, slices[1][1], manifest)
    study.refresh_from_db()
    assert study.status == Status.RECEIVED and study.received_at is not None
    assert dr.post(reverse("api_claim", args=[study.pk])).status_code == 200
