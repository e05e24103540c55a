"""The tus endpoint, request by request: protocol, limits, access, finalisation, expiry."""

import base64
import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from studies.models import Instance, Study
from tests.helpers import api_client
from tests.paths import CT_HEAD
from uploads import spool, transfers
from uploads.models import Transfer

pytestmark = pytest.mark.django_db
TUS = {"HTTP_TUS_RESUMABLE": "1.0.0"}


def _meta(**values) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def _create(client, data: bytes, **meta):
    meta.setdefault("filename", "01.dcm")
    meta.setdefault("sha256", hashlib.sha256(data).hexdigest())
    return client.post(
        "/api/v1/uploads/", HTTP_UPLOAD_LENGTH=str(len(data)), HTTP_UPLOAD_METADATA=_meta(**meta), **TUS
    )


def _patch(client, url, offset, body, **extra):
    return client.generic(
        "PATCH",
        url,
        body,
        content_type="application/offset+octet-stream",
        HTTP_UPLOAD_OFFSET=str(offset),
        **TUS,
        **extra,
    )


def test_it_announces_tus_and_its_extensions(client):
    answer = client.options("/api/v1/uploads/")
    assert answer.status_code == 204
    assert answer["Tus-Version"] == "1.0.0"
    assert set(answer["Tus-Extension"].split(",")) == {
        "creation",
        "creation-with-upload",
        "checksum",
        "termination",
        "expiration",
    }
    assert "sha256" in answer["Tus-Checksum-Algorithm"]


def test_it_refuses_strangers_and_wrong_versions(client, tech_a, radiologist):
    data = b"x" * 10
    assert _create(client, data).status_code == 401
    assert (
        api_client(tech_a)
        .post("/api/v1/uploads/", HTTP_UPLOAD_LENGTH="10", HTTP_TUS_RESUMABLE="0.2.2")
        .status_code
        == 412
    )
    assert _create(api_client(radiologist), data).status_code == 403


@pytest.mark.orthanc
def test_it_receives_a_file_in_chunks_and_resumes_from_its_offset(
    tech_a, tech_b, django_capture_on_commit_callbacks
):
    data = (CT_HEAD / "01.dcm").read_bytes()
    tech = api_client(tech_a)
    created = _create(tech, data)
    assert created.status_code == 201, created.content
    url = created["Location"]
    assert created["Upload-Expires"]
    assert _patch(tech, url, 0, data[:100_000]).status_code == 204
    head = tech.head(url, **TUS)
    assert head.status_code == 200 and head["Upload-Offset"] == "100000"
    assert head["Upload-Length"] == str(len(data)) and head["Cache-Control"] == "no-store"
    # A stale offset is refused; the client must ask (HEAD) and resume.
    assert _patch(tech, url, 0, data[:10]).status_code == 409
    # Another site cannot see or touch it.
    assert api_client(tech_b).head(url, **TUS).status_code == 404
    assert _patch(api_client(tech_b), url, 100_000, data[100_000:]).status_code == 404
    done = _patch(tech, url, 100_000, data[100_000:])
    assert done.status_code == 204 and done["Upload-Offset"] == str(len(data))
    upload = Transfer.objects.get()
    assert upload.state == "complete"
    # Nobody (no worker in this test) finalised it: asking for its status does.
    with django_capture_on_commit_callbacks(execute=True):
        status = tech.get(url).json()
    assert status["state"] == "finalised" and status["outcome"] == "stored"
    assert Instance.objects.count() == 1
    assert not spool.part_path(upload.pk).exists()  # disk given back


def test_a_bad_chunk_checksum_leaves_the_offset_alone(tech_a):
    data = b"\0" * 1000
    tech = api_client(tech_a)
    url = _create(tech, data)["Location"]
    bad = base64.b64encode(hashlib.sha1(b"other").digest()).decode()
    assert _patch(tech, url, 0, data[:500], HTTP_UPLOAD_CHECKSUM=f"sha1 {bad}").status_code == 460
    assert tech.head(url, **TUS)["Upload-Offset"] == "0"
    good = base64.b64encode(hashlib.sha1(data[:500]).digest()).decode()
    assert _patch(tech, url, 0, data[:500], HTTP_UPLOAD_CHECKSUM=f"sha1 {good}").status_code == 204
    assert _patch(tech, url, 500, data[500:], HTTP_UPLOAD_CHECKSUM="crc32 AAAA").status_code == 400


def test_a_file_whose_sha256_differs_is_refused_with_a_reason(tech_a):
    data = (CT_HEAD / "02.dcm").read_bytes()
    tech = api_client(tech_a)
    url = _create(tech, data, sha256="0" * 64)["Location"]
    _patch(tech, url, 0, data)
    status = tech.get(url).json()
    assert status["outcome"] == "refused" and status["code"] == "sha256_mismatch"
    assert Instance.objects.count() == 0


@pytest.mark.orthanc
def test_the_same_instance_twice_is_stored_once_and_called_a_duplicate(tech_a):
    data = (CT_HEAD / "03.dcm").read_bytes()
    tech = api_client(tech_a)
    outcomes = []
    for _ in range(2):
        url = _create(tech, data)["Location"]
        _patch(tech, url, 0, data)
        outcomes.append(tech.get(url).json()["outcome"])
    assert outcomes == ["stored", "duplicate"]
    assert Instance.objects.count() == 1


def test_size_limit_and_site_quota(tech_a, settings):
    settings.UPLOADS_MAX_BYTES = 1000
    settings.UPLOADS_SITE_QUOTA_BYTES = 1500
    tech = api_client(tech_a)
    assert _create(tech, b"x" * 1001).status_code == 413
    first = _create(tech, b"x" * 900)
    assert first.status_code == 201
    # The quota counts bytes received (tests/test_upload_limits.py): 900 of them are in now.
    assert _patch(tech, first["Location"], 0, b"x" * 900).status_code == 204
    refused = _create(tech, b"x" * 700)
    assert refused.status_code == 413 and refused.json()["code"] == "quota"
    assert "Quota" in refused.json()["reason"]


def test_termination_and_expiry_reclaim_the_disk(tech_a):
    tech = api_client(tech_a)
    url = _create(tech, b"y" * 100)["Location"]
    _patch(tech, url, 0, b"y" * 50)
    first = Transfer.objects.get()
    assert tech.delete(url, **TUS).status_code == 204
    assert not spool.part_path(first.pk).exists()
    assert tech.head(url, **TUS).status_code == 410

    url = _create(tech, b"z" * 100)["Location"]
    _patch(tech, url, 0, b"z" * 50)
    stale = Transfer.objects.get(state="receiving")
    Transfer.objects.filter(pk=stale.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert transfers.expire_stale_transfers() == 1
    assert not spool.part_path(stale.pk).exists()
    assert tech.head(url, **TUS).status_code == 410
    assert _patch(tech, url, 50, b"z" * 50).status_code == 410


@pytest.mark.orthanc
def test_a_study_is_received_only_when_its_manifest_is_complete(tech_a):
    tech = api_client(tech_a)
    files = [(CT_HEAD / f"{i:02d}.dcm").read_bytes() for i in (4, 5)]
    import pydicom

    uids = [pydicom.dcmread(CT_HEAD / f"{i:02d}.dcm", stop_before_pixels=True) for i in (4, 5)]
    manifest = tech.post(
        "/api/v1/uploads/manifests/",
        {
            "priority": "stat",
            "indication": "Traumatisme crânien",
            "study_instance_uid": str(uids[0].StudyInstanceUID),
            "instances": [
                {
                    "sop_instance_uid": str(d.SOPInstanceUID),
                    "sha256": hashlib.sha256(f).hexdigest(),
                    "size": len(f),
                }
                for d, f in zip(uids, files, strict=True)
            ],
        },
        format="json",
    )
    assert manifest.status_code == 201, manifest.content
    mid = manifest.json()["id"]
    assert len(manifest.json()["missing"]) == 2
    url = _create(tech, files[0], manifest=mid)["Location"]
    _patch(tech, url, 0, files[0])
    tech.get(url)
    study = Study.objects.get()
    assert study.received_at is None and study.priority == "stat"
    state = tech.get(f"/api/v1/uploads/manifests/?id={mid}").json()
    assert not state["complete"] and len(state["missing"]) == 1
    url = _create(tech, files[1], manifest=mid)["Location"]
    _patch(tech, url, 0, files[1])
    assert tech.get(f"/api/v1/uploads/manifests/?id={mid}").json()["complete"]
    assert Study.objects.get().received_at is not None
    # Posting the same manifest id again returns it, it does not make another.
    again = tech.post("/api/v1/uploads/manifests/", {"id": mid, "instances": []}, format="json")
    assert again.status_code == 200 and again.json()["id"] == mid


def test_who_may_see_or_touch_a_transfer_is_decided_by_the_access_module(
    tech_a, tech_b, admin_user, radiologist
):
    tech = api_client(tech_a)
    data = b"z" * 100
    url = _create(tech, data)["Location"]
    mid = tech.post("/api/v1/uploads/manifests/", {"files": 1, "instances": []}, format="json").json()["id"]
    admin = api_client(admin_user)
    # An admin sees any site's sendings and their verdicts, but sends for none but their own.
    assert admin.get(url).status_code == 200
    assert admin.get(f"/api/v1/uploads/manifests/?id={mid}").status_code == 200
    assert admin.head(url, **TUS).status_code == 404
    assert _patch(admin, url, 0, data).status_code == 404
    # Another site, or a reader, learns nothing: 404, never 403.
    for other in (api_client(tech_b), api_client(radiologist)):
        assert other.get(url).status_code == 404
        assert other.head(url, **TUS).status_code == 404
        assert other.delete(url, **TUS).status_code == 404
        assert other.get(f"/api/v1/uploads/manifests/?id={mid}").status_code == 404
    assert tech.head(url, **TUS).status_code == 200


def _create_with(client, data: bytes, body: bytes, content_type="application/offset+octet-stream", **meta):
    meta.setdefault("filename", "01.dcm")
    meta.setdefault("sha256", hashlib.sha256(data).hexdigest())
    return client.generic(
        "POST",
        "/api/v1/uploads/",
        body,
        content_type=content_type,
        HTTP_UPLOAD_LENGTH=str(len(data)),
        HTTP_UPLOAD_METADATA=_meta(**meta),
        **TUS,
    )


@pytest.mark.orthanc
def test_creation_with_upload_takes_a_small_file_in_one_request(tech_a):
    data = (CT_HEAD / "08.dcm").read_bytes()
    tech = api_client(tech_a)
    created = _create_with(tech, data, data)
    assert created.status_code == 201, created.content
    assert created["Upload-Offset"] == str(len(data)) and created["Location"]
    assert tech.get(created["Location"]).json()["outcome"] == "stored"
    assert Instance.objects.count() == 1


def test_creation_with_upload_may_carry_the_first_part_only_and_checks_its_content_type(tech_a):
    data = bytes(range(256)) * 40
    tech = api_client(tech_a)
    created = _create_with(tech, data, data[:4000])
    assert created.status_code == 201 and created["Upload-Offset"] == "4000"
    url = created["Location"]
    assert _patch(tech, url, 4000, data[4000:]).status_code == 204
    assert tech.head(url, **TUS)["Upload-Offset"] == str(len(data))
    # Bytes in a creation must say what they are, as in a PATCH: nothing is created otherwise.
    before = Transfer.objects.count()
    assert _create_with(tech, data, data[:10], content_type="application/json").status_code == 415
    assert Transfer.objects.count() == before


def test_a_creation_whose_body_was_cut_expires_like_an_unused_one(tech_a, settings):
    """Its sender never learnt its address: it must not hold the site's room for a week."""
    import io

    data = b"q" * 5000
    tech = api_client(tech_a)
    request = {
        "PATH_INFO": "/api/v1/uploads/",
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": "application/offset+octet-stream",
        "CONTENT_LENGTH": str(len(data)),
        "wsgi.input": io.BytesIO(data[:3000]),  # the link dropped after 3000 bytes
        "HTTP_UPLOAD_LENGTH": str(len(data)),
        "HTTP_UPLOAD_METADATA": _meta(filename="x.dcm"),
        **TUS,
    }
    answer = tech.request(**request)
    assert answer.status_code == 201 and answer["Upload-Offset"] == "3000"
    transfer = Transfer.objects.get()
    left = transfer.expires_at - timezone.now()
    assert left <= timedelta(seconds=settings.UPLOADS_IDLE_CREATION_SECONDS + 5)


def _listing(tech, study_uid: str, paths) -> dict:
    import pydicom

    instances = []
    for path in paths:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        data = path.read_bytes()
        instances.append(
            {
                "sop_instance_uid": str(ds.SOPInstanceUID),
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
            }
        )
    answer = tech.post(
        "/api/v1/uploads/manifests/",
        {"study_instance_uid": study_uid, "instances": instances},
        format="json",
    )
    assert answer.status_code == 201, answer.content
    return answer.json()


@pytest.mark.orthanc
def test_a_manifest_answer_names_what_the_archive_has_of_this_sites_study_only(tech_a, tech_b):
    import pydicom

    first, second = CT_HEAD / "09.dcm", CT_HEAD / "10.dcm"
    ds = pydicom.dcmread(first, stop_before_pixels=True)
    study_uid, first_uid = str(ds.StudyInstanceUID), str(ds.SOPInstanceUID)
    tech = api_client(tech_a)
    url = _create(tech, first.read_bytes())["Location"]
    _patch(tech, url, 0, first.read_bytes())
    assert tech.get(url).json()["outcome"] == "stored"
    # The same site sends the study again: the instance it has is named, the other is missing.
    again = _listing(tech, study_uid, [first, second])
    assert again["have"] == [first_uid] and len(again["missing"]) == 1 and not again["complete"]
    # Another site listing the same UIDs learns nothing: as if the archive had none of them.
    other = _listing(api_client(tech_b), study_uid, [first, second])
    assert other["have"] == [] and len(other["missing"]) == 2
    # A listing of only what is there is complete at once: nothing will be sent for it.
    whole = _listing(tech, study_uid, [first])
    assert whole["have"] == [first_uid] and whole["complete"] is True
