"""The edge-case corpus through tus: same verdicts as the direct path.

Every file of the shared corpus is sent as its own resumable upload (create with its SHA-256,
one PATCH of the whole file) and gets the verdict tests/test_edge_cases.EXPECTED gives it through
the direct API. Uploads are finalised in-process by the status request (GET /api/v1/uploads/<id>/),
the same service call the Celery task makes: through the single worker, 80 files one by one would
not keep this test under a minute, and the worker path is covered by test_uploads_server_kill.
"""

import base64
import hashlib
import time
import zipfile

import pydicom
import pytest

from ingest.models import FileVerdict
from studies.models import Instance
from tests.helpers import api_client, ct_study_bytes
from tests.paths import EDGE_CASES, available
from tests.test_edge_cases import EXPECTED
from uploads.models import Transfer

pytestmark = [pytest.mark.django_db, pytest.mark.orthanc]
TUS = {"HTTP_TUS_RESUMABLE": "1.0.0"}


def _meta(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def send(client, name: str, data: bytes) -> dict:
    """One file through tus; every answer on the way is checked, none may be a 500."""
    created = client.post(
        "/api/v1/uploads/",
        HTTP_UPLOAD_LENGTH=str(len(data)),
        **TUS,
        HTTP_UPLOAD_METADATA=_meta(filename=name.rsplit("/", 1)[-1], sha256=hashlib.sha256(data).hexdigest()),
    )
    assert created.status_code == 201, (name, created.status_code, created.content[:300])
    url = created["Location"]
    patched = client.generic(
        "PATCH", url, data, content_type="application/offset+octet-stream", HTTP_UPLOAD_OFFSET="0", **TUS
    )
    assert patched.status_code == 204, (name, patched.status_code, patched.content[:300])
    assert patched["Upload-Offset"] == str(len(data))
    status = client.get(url)
    assert status.status_code == 200, (name, status.status_code, status.content[:300])
    return status.json()


def test_it_gives_every_edge_case_file_sent_through_tus_the_direct_paths_verdict(tech_a, orthanc_server):
    client = api_client(tech_a)
    started = time.monotonic()
    got, answers = {}, {}
    names = available(sorted(EXPECTED), EDGE_CASES)  # without the shared folder: the portable part
    for name in names:
        answer = send(client, name, (EDGE_CASES / name).read_bytes())
        answers[name] = answer
        assert answer["state"] == "finalised", (name, answer)
        if answer["outcome"] == "refused":
            assert answer["reason"], f"{name} refused without a reason"
            got[name] = answer["code"]
        else:
            assert answer["outcome"] in ("stored", "duplicate"), (name, answer)
            got[name] = "ok"
    elapsed = time.monotonic() - started
    want = {n: EXPECTED[n] for n in names}
    assert got == want, {n: (got[n], want[n]) for n in names if got[n] != want[n]}
    # One verdict per file, none dropped; accepted files are in the archive, each once.
    assert Transfer.objects.filter(state="finalised").count() == len(names)
    assert FileVerdict.objects.count() == len(names)
    archive = orthanc_server.client()
    for row in FileVerdict.objects.exclude(outcome="refused"):
        instance = Instance.objects.get(sop_instance_uid=row.sop_instance_uid)
        assert archive.instance_tags(instance.orthanc_id)["SOPInstanceUID"] == row.sop_instance_uid
    assert not FileVerdict.objects.filter(
        outcome="refused", sop_instance_uid__in=Instance.objects.values("sop_instance_uid")
    ).exists()
    assert elapsed < 90, elapsed


def _bundle(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return path.read_bytes()


def test_it_refuses_bundle_members_its_manifest_does_not_list(tech_a, tmp_path):
    client = api_client(tech_a)
    first, second, stranger = ct_study_bytes(tmp_path, (9, 10, 11))
    listed = {"09.dcm": first, "10.dcm": second}
    instances = []
    for data in listed.values():
        ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(data), stop_before_pixels=True)
        instances.append(
            {
                "sop_instance_uid": str(ds.SOPInstanceUID),
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
            }
        )
    manifest = client.post("/api/v1/uploads/manifests/", {"instances": instances}, format="json").json()
    bundle = _bundle(tmp_path / "lot.zip", {**listed, "intrus.dcm": stranger})
    created = client.post(
        "/api/v1/uploads/",
        HTTP_UPLOAD_LENGTH=str(len(bundle)),
        **TUS,
        HTTP_UPLOAD_METADATA=_meta(
            filename="lot.zip",
            kind="bundle",
            manifest=manifest["id"],
            sha256=hashlib.sha256(bundle).hexdigest(),
        ),
    )
    url = created["Location"]
    patched = client.generic(
        "PATCH", url, bundle, content_type="application/offset+octet-stream", HTTP_UPLOAD_OFFSET="0", **TUS
    )
    assert patched.status_code == 204
    status = client.get(url).json()
    assert status["state"] == "finalised" and status["outcome"] == "mixed", status
    verdicts = {
        v["filename"]: v
        for v in client.get(f"/api/v1/uploads/manifests/?id={manifest['id']}").json()["verdicts"]
    }
    assert set(verdicts) == {"09.dcm", "10.dcm", "intrus.dcm"}  # a verdict per member, none dropped
    assert verdicts["intrus.dcm"]["outcome"] == "refused"
    assert verdicts["intrus.dcm"]["code"] == "not_in_manifest"
    assert "manifeste" in verdicts["intrus.dcm"]["reason"]
    assert {verdicts[n]["outcome"] for n in listed} == {"stored"}
    stranger_uid = str(pydicom.dcmread(pydicom.filebase.DicomBytesIO(stranger)).SOPInstanceUID)
    assert not Instance.objects.filter(sop_instance_uid=stranger_uid).exists()  # never reached the archive
    assert Instance.objects.count() == 2
    assert client.get(f"/api/v1/uploads/manifests/?id={manifest['id']}").json()["complete"]


def test_it_refuses_a_bundle_that_is_only_strangers_or_empty_with_a_reason(tech_a, tmp_path):
    client = api_client(tech_a)
    data, other = ct_study_bytes(tmp_path, (12, 13))
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(data), stop_before_pixels=True)
    manifest = client.post(
        "/api/v1/uploads/manifests/",
        {
            "instances": [
                {
                    "sop_instance_uid": str(ds.SOPInstanceUID),
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "size": len(data),
                }
            ]
        },
        format="json",
    ).json()
    for members, code in (({"autre.dcm": other}, "not_in_manifest"), ({}, "bundle_empty")):
        bundle = _bundle(tmp_path / f"{code}.zip", members)
        url = client.post(
            "/api/v1/uploads/",
            HTTP_UPLOAD_LENGTH=str(len(bundle)),
            **TUS,
            HTTP_UPLOAD_METADATA=_meta(filename="lot.zip", kind="bundle", manifest=manifest["id"]),
        )["Location"]
        client.generic(
            "PATCH",
            url,
            bundle,
            content_type="application/offset+octet-stream",
            HTTP_UPLOAD_OFFSET="0",
            **TUS,
        )
        status = client.get(url).json()
        assert (status["outcome"], status["code"]) == ("refused", code), status
        assert status["reason"]
    assert not Instance.objects.exists()
    assert not client.get(f"/api/v1/uploads/manifests/?id={manifest['id']}").json()["complete"]
