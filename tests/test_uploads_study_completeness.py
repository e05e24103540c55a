"""A half-sent study can never be read: sent with a manifest, a study is `arriving` (with its
progress, n of the instances announced) until its manifest settles; every route — tus with a
manifest, a bundle, a photo, the plain form, the API — says when its study is complete."""

import hashlib
import io
import zipfile

import numpy as np
import pydicom
import pytest
from django.urls import reverse
from PIL import Image

from studies.access import may_claim
from studies.models import Study
from tests.helpers import api_client, ct_study_bytes
from tests.test_uploads_tus import _create, _patch

pytestmark = [pytest.mark.django_db, pytest.mark.orthanc]


def listed(data: bytes) -> dict:
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(data), stop_before_pixels=True)
    return {
        "sop_instance_uid": str(ds.SOPInstanceUID),
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
    }


def manifest(tech, **body) -> str:
    answer = tech.post(
        "/api/v1/uploads/manifests/", {"priority": "urgent", "indication": "Toux", **body}, format="json"
    )
    assert answer.status_code == 201, answer.content
    return answer.json()["id"]


def send(tech, data: bytes, **meta) -> dict:
    url = _create(tech, data, **meta)["Location"]
    assert _patch(tech, url, 0, data).status_code == 204
    return tech.get(url).json()


def the_study() -> Study:
    return Study.objects.get()


def assert_arriving(have: int, of: int, radiologist) -> None:
    study = the_study()
    assert study.status == "arriving" and study.arrival_progress == (have, of)
    assert not may_claim(radiologist, study)  # nobody reads half a study


def test_a_manifest_listing_its_instances_keeps_the_study_arriving_until_all_are_in(
    tech_a, radiologist, tmp_path
):
    tech = api_client(tech_a)
    files = ct_study_bytes(tmp_path, (1, 2, 3))
    mid = manifest(tech, instances=[listed(f) for f in files])
    for n, data in enumerate(files[:2], start=1):
        assert send(tech, data, manifest=mid)["outcome"] == "stored"
        assert_arriving(n, 3, radiologist)
    send(tech, files[2], manifest=mid)
    study = the_study()
    assert study.status == "received" and (study.priority, study.indication) == ("urgent", "Toux")
    assert may_claim(radiologist, study)


def test_a_manifest_counting_files_keeps_the_study_arriving_until_all_have_a_verdict(
    tech_a, radiologist, tmp_path
):
    """The page's manifests: a file count, no instance list (the browser does not read DICOM)."""
    tech = api_client(tech_a)
    files = ct_study_bytes(tmp_path, (4, 5))
    mid = manifest(tech, files=2, instances=[])
    send(tech, files[0], manifest=mid)
    assert_arriving(1, 2, radiologist)
    send(tech, files[1], manifest=mid)
    assert the_study().status == "received"


def test_a_bundle_of_part_of_a_study_leaves_it_arriving(tech_a, radiologist, tmp_path):
    tech = api_client(tech_a)
    files = ct_study_bytes(tmp_path, (6, 7, 8))
    mid = manifest(tech, instances=[listed(f) for f in files])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as bundle:
        bundle.writestr("06.dcm", files[0])
        bundle.writestr("07.dcm", files[1])
    assert send(tech, out.getvalue(), manifest=mid, kind="bundle", filename="lot.zip")["outcome"] == "stored"
    assert_arriving(2, 3, radiologist)
    send(tech, files[2], manifest=mid)
    assert the_study().status == "received"


def test_a_photo_with_its_manifest_is_received_once_its_verdict_is_in(tech_a, radiologist):
    tech = api_client(tech_a)
    out = io.BytesIO()
    Image.fromarray((np.arange(256 * 256) % 256).astype(np.uint8).reshape(256, 256)).save(out, format="PNG")
    mid = manifest(tech, files=1, instances=[])
    answer = send(
        tech,
        out.getvalue(),
        manifest=mid,
        kind="photo",
        filename="film.png",
        patient_name="DIARRA^Awa",
        modality="CR",
    )
    assert answer["outcome"] == "stored", answer
    study = the_study()
    assert study.status == "received" and study.expected_instances == 1


def test_a_transfer_without_manifest_is_a_whole_study(tech_a, tmp_path):
    [data] = ct_study_bytes(tmp_path, (9,))
    send(api_client(tech_a), data, priority="stat", indication="Chute")
    study = the_study()
    assert (study.status, study.priority, study.indication) == ("received", "stat", "Chute")
    assert study.expected_instances is None


def test_the_form_and_the_api_announce_their_study_once_every_file_has_a_verdict(tech_a, client, tmp_path):
    files = ct_study_bytes(tmp_path, (10, 11))
    handles = [io.BytesIO(f) for f in files]
    for i, h in enumerate(handles):
        h.name = f"{i}.dcm"
    answer = api_client(tech_a).post(
        reverse("api_upload"), {"files": handles, "indication": "x"}, format="multipart"
    )
    assert [v["outcome"] for v in answer.json()["verdicts"]] == ["stored", "stored"]
    assert the_study().status == "received" and the_study().instances.count() == 2
    events = list(the_study().events.values_list("transition", flat=True))
    assert events == ["arrive", "receive"]  # arriving while its files were stored, then complete

    Study.objects.all().delete()
    client.force_login(tech_a)
    more = ct_study_bytes(tmp_path, (12,))
    upload = io.BytesIO(more[0])
    upload.name = "12.dcm"
    sent = client.post(reverse("upload"), {"files": [upload], "indication": "x", "priority": "routine"})
    assert sent.status_code == 302
    assert list(the_study().events.values_list("transition", flat=True)) == ["arrive", "receive"]
