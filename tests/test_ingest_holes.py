"""Holes in the record, closed: every file ends in a verdict that says what happened, and the
archive never keeps a file the platform does not point to."""

import pydicom
import pytest
from django.urls import reverse
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from ingest.changes_feed import follow_changes
from studies import lifecycle
from studies.models import Instance, Study
from tests.helpers import api_client, dicom_copy, in_archive
from tests.paths import CT_HEAD
from tests.test_uploads_tus import TUS, _create, _patch
from uploads import finalisation
from uploads.models import Transfer

pytestmark = pytest.mark.django_db


def send(client, *paths, priority="routine"):
    handles = [p.open("rb") for p in paths]
    try:
        answer = client.post(
            reverse("api_upload"),
            {"files": handles, "indication": "x", "priority": priority},
            format="multipart",
        )
    finally:
        for h in handles:
            h.close()
    assert answer.status_code == 201, answer.content[:300]
    return answer.json()["verdicts"]


def slice_of(tmp_path, name, number, study_uid, sop_uid=None):
    return dicom_copy(
        CT_HEAD / f"{number:02d}.dcm",
        tmp_path / name,
        StudyInstanceUID=study_uid,
        SOPInstanceUID=sop_uid or generate_uid(),
    )


def misdeclared_syntax(tmp_path):
    """Declares Explicit VR Little Endian, is encoded implicit: pydicom reads it (it guesses),
    Orthanc answers 400 — a file the checker accepts and the archive refuses."""
    ds = pydicom.dcmread(CT_HEAD / "14.dcm")
    ds.StudyInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    head = DicomBytesIO()
    head.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(head, ds.file_meta)
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, True
    write_dataset(body, ds)
    path = tmp_path / "misdeclared.dcm"
    path.write_bytes(head.getvalue() + body.getvalue())
    return path, ds


def test_a_new_image_for_a_reported_study_is_refused_by_upload(tech_a, radiologist, orthanc_server, tmp_path):
    study_uid = generate_uid()
    first = slice_of(tmp_path, "01.dcm", 1, study_uid)
    [verdict] = send(api_client(tech_a), first)
    study = Study.objects.get(pk=verdict["study"])
    lifecycle.transition(study, lifecycle.Transition.CLAIM, actor=radiologist)
    lifecycle.transition(study, lifecycle.Transition.SIGN, actor=radiologist)

    late = slice_of(tmp_path, "02.dcm", 2, study_uid)
    [refused, again] = send(api_client(tech_a), late, first)
    assert (refused["outcome"], refused["code"]) == ("refused", "study_closed")
    assert "nouvel examen" in refused["reason"]
    assert again["outcome"] == "duplicate"  # an image the study already has is no new image
    sop_uid = pydicom.dcmread(late, stop_before_pixels=True).SOPInstanceUID
    assert not in_archive(orthanc_server, str(sop_uid))  # refused before the archive saw it
    study.refresh_from_db()
    assert study.status == "reported" and study.instances.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_new_image_for_a_reported_study_by_the_archive_route_reopens_it(
    tech_a, radiologist, orthanc_server, tmp_path
):
    from tests.test_ingest_intent import start_feed_at_the_present

    study_uid = generate_uid()
    [verdict] = send(api_client(tech_a), slice_of(tmp_path, "01.dcm", 1, study_uid))
    study = Study.objects.get(pk=verdict["study"])
    lifecycle.transition(study, lifecycle.Transition.CLAIM, actor=radiologist)
    lifecycle.transition(study, lifecycle.Transition.SIGN, actor=radiologist)
    client = orthanc_server.client()
    start_feed_at_the_present(client)
    client.store_instance(slice_of(tmp_path, "02.dcm", 2, study_uid).read_bytes())  # a modality's push
    follow_changes(client)
    study.refresh_from_db()
    assert study.status == "received" and study.instances.count() == 2  # back to be read again


def test_a_file_reusing_another_studys_sop_uid_is_refused_before_the_archive(
    tech_a, orthanc_server, tmp_path
):
    sop_uid = generate_uid()
    send(api_client(tech_a), slice_of(tmp_path, "a.dcm", 3, generate_uid(), sop_uid))
    other_study = generate_uid()
    [verdict] = send(api_client(tech_a), slice_of(tmp_path, "b.dcm", 4, other_study, sop_uid))
    assert (verdict["outcome"], verdict["code"]) == ("refused", "sop_uid_conflict")
    assert verdict["reason"] and verdict["study"] is None
    assert not Study.objects.filter(study_instance_uid=other_study).exists()  # no empty study
    assert not in_archive(orthanc_server, other_study)  # and no orphan file in the archive
    assert Instance.objects.count() == 1


def test_a_file_the_archive_refuses_gets_a_verdict_not_archive_down(tech_a, orthanc_server, tmp_path):
    path, ds = misdeclared_syntax(tmp_path)
    [verdict] = send(api_client(tech_a), path)
    assert (verdict["outcome"], verdict["code"]) == ("refused", "archive_rejected")
    assert "archive" in verdict["reason"].lower()
    assert not Study.objects.filter(study_instance_uid=ds.StudyInstanceUID).exists()


def test_a_transfer_the_archive_refuses_is_finalised_not_retried_for_ever(tech_a, orthanc_server, tmp_path):
    path, ds = misdeclared_syntax(tmp_path)
    data = path.read_bytes()
    tech = api_client(tech_a)
    url = _create(tech, data)["Location"]
    assert _patch(tech, url, 0, data).status_code == 204
    status = tech.get(url).json()
    assert (status["state"], status["outcome"]) == ("finalised", "refused")
    assert status["code"] == "archive_rejected"
    assert finalisation.finalise_waiting() == 0  # nothing left for the sweep to retry
    assert Transfer.objects.get().state == "finalised"
    head = tech.head(url, **TUS)
    assert (head["Joliba-Outcome"], head["Joliba-Code"]) == ("refused", "archive_rejected")
