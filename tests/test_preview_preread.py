"""The urgent case known from its preview: the agent's preview is pre-read as soon as it lands, the
study shows in the worklist « en cours d'arrivée » with its provisional score and the share of
its bytes in; it cannot be claimed until complete; the full images' pre-read replaces the score.
The preview passes the same scope checks as its original (a cat's radiograph is not scored) and
is kept apart from the study's images (not in the archive, not an instance)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pydicom
import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from alerts.models import Alert, Kind
from preread.models import PreRead, ProvisionalPreRead
from preread.services import prepare_study_for_reading
from reports.services import save_report
from siteagent.preview import make_preview
from studies.models import Status, Study
from tests.helpers import api_client, build_constant_model, clear_models, in_archive, new_chest
from tests.paths import testdata_file
from tests.preview_watch import arriving_row
from uploads.models import Preview, Transfer
from uploads.previews import score_provisionally

pytestmark = [pytest.mark.django_db, pytest.mark.orthanc]
TUS = {"HTTP_TUS_RESUMABLE": "1.0.0"}
CAT = "real_other/DX_veterinary_cat_thorax_deid-data/cat.dcm"


def _meta(**fields: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in fields.items())


def send(client, data: bytes, manifest: str, *, kind: str = "dicom") -> Transfer:
    """One tus transfer, finalised by its status request (no worker in these tests)."""
    created = client.post(
        "/api/v1/uploads/",
        HTTP_UPLOAD_LENGTH=str(len(data)),
        HTTP_UPLOAD_METADATA=_meta(
            filename=f"{kind}.dcm", manifest=manifest, kind=kind, sha256=hashlib.sha256(data).hexdigest()
        ),
        **TUS,
    )
    assert created.status_code == 201, created.content
    url = created["Location"]
    patched = client.generic(
        "PATCH", url, data, content_type="application/offset+octet-stream", HTTP_UPLOAD_OFFSET="0", **TUS
    )
    assert patched.status_code == 204, patched.content
    assert client.get(url).status_code == 200
    return Transfer.objects.get(pk=url.rstrip("/").rsplit("/", 1)[-1])


def announce(client, original: Path, *, priority: str) -> str:
    data = original.read_bytes()
    ds = pydicom.dcmread(original, stop_before_pixels=True)
    answer = client.post(
        "/api/v1/uploads/manifests/",
        {
            "priority": priority,
            "indication": "Dyspnée aiguë",
            "study_instance_uid": str(ds.StudyInstanceUID),
            "instances": [
                {
                    "sop_instance_uid": str(ds.SOPInstanceUID),
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "size": len(data),
                }
            ],
        },
        format="json",
    )
    assert answer.status_code in (200, 201), answer.content
    return answer.json()["id"]


def preview_bytes(original: Path, tmp_path: Path) -> bytes:
    return make_preview(original, tmp_path / f"{original.stem}-preview.dcm").read_bytes()


@pytest.fixture
def models(settings, tmp_path):
    settings.JOLIBA_MODELS_DIR = tmp_path / "models"
    settings.JOLIBA_MODELS_DIR.mkdir()
    return settings.JOLIBA_MODELS_DIR


def test_a_preview_is_scored_provisionally_then_the_full_images_replace_it(
    models, tech_a, radiologist, client, orthanc_server, tmp_path, django_capture_on_commit_callbacks
):
    build_constant_model(models, probabilities={"pneumothorax": 0.95})
    original = new_chest(tmp_path, "chest")
    tech = api_client(tech_a)
    manifest = announce(tech, original, priority="routine")
    waiting = new_chest(tmp_path, "waiting")  # a complete routine case with no AI, already in
    waiting_manifest = announce(tech, waiting, priority="routine")
    send(tech, waiting.read_bytes(), waiting_manifest)

    preview = preview_bytes(original, tmp_path)
    transfer = send(tech, preview, manifest, kind="preview")
    assert (transfer.outcome, transfer.code) == ("stored", "preview_kept")

    # The preview announced the study; it is kept apart: not an instance, not in the archive.
    study = Study.objects.get(study_instance_uid=str(pydicom.dcmread(original).StudyInstanceUID))
    assert study.status == Status.ARRIVING and study.instances.count() == 0
    kept = Preview.objects.get(transfer=transfer)
    assert kept.source_sop_instance_uid == str(pydicom.dcmread(original).SOPInstanceUID)
    assert not in_archive(
        orthanc_server, str(pydicom.dcmread(pydicom.filebase.DicomBytesIO(preview)).SOPInstanceUID)
    )

    client.force_login(tech_a)
    detail = client.get(reverse("study_detail", args=[study.pk])).content.decode()
    assert "Examen en cours d'arrivée : 0 / 1 image(s)" in detail  # the preview is not an image

    # The provisional pre-read (the worker's task body): scored, on the study's ranking facts.
    run = score_provisionally(kept.pk, study.pk)
    assert run is not None and run.status == "scored" and run.urgency is not None
    study.refresh_from_db()
    assert study.ai_urgency == pytest.approx(run.urgency) and study.ai_critical
    assert not PreRead.objects.filter(study=study).exists()  # provisional is not the pre-read

    # The radiologist sees it arriving with its provisional score and bytes, above the waiting case.
    client.force_login(radiologist)
    page = client.get(reverse("worklist")).content.decode()
    row = page.split(f'data-study="{study.pk}"')[1].split("</tr>")[0]
    assert "IA provisoire (aperçu)" in row and f"{run.urgency:.2f}" in row and "0 % reçu" in row
    assert "(provisoire) · priorité" in row  # the "why" line says what ranks it
    assert reverse("claim", args=[study.pk]) not in row
    assert arriving_row(client, study.pk) == {"provisional": f"{run.urgency:.2f}", "received": "0"}
    order = [int(x.split('"')[0]) for x in page.split('data-study="')[1:]]
    assert order.index(study.pk) < order.index(
        Study.objects.get(study_instance_uid=str(pydicom.dcmread(waiting).StudyInstanceUID)).pk
    )

    # Not claimable until complete, by any route; no AI-critical alert from a provisional score.
    answer = api_client(radiologist).post(reverse("api_claim", args=[study.pk]))
    assert answer.status_code == 409 and answer.json()["code"] == "not_allowed_now"
    assert not Alert.objects.filter(study=study, kind=Kind.AI_CRITICAL).exists()
    with pytest.raises(PermissionDenied):
        save_report(study=study, author=radiologist, findings="", conclusion="Pneumothorax", sign=True)

    # The full image lands: the study is complete with one image, the preview is not among them.
    clear_models(models)
    build_constant_model(models, probabilities={"pneumothorax": 0.02}, version="2.0.0")
    with django_capture_on_commit_callbacks(execute=True):  # what follows the commit: status_changed
        send(tech, original.read_bytes(), manifest)
    study.refresh_from_db()
    assert study.status == Status.RECEIVED
    assert study.instances.count() == 1
    assert study.instances.get().sop_instance_uid == str(pydicom.dcmread(original).SOPInstanceUID)
    assert len(orthanc_server.client().study_instances(study.orthanc_id)) == 1
    assert bytes(Preview.objects.get(pk=kept.pk).data) == b""  # its pixels go once the study is in

    # The pre-read of the full image replaces the provisional score (recomputed, not copied).
    prepare_study_for_reading(study.pk)
    study.refresh_from_db()
    final = PreRead.objects.get(study=study, is_current=True)
    assert final.status == "scored" and final.images.get().instance.study_id == study.pk
    assert study.ai_urgency == pytest.approx(final.urgency) and final.urgency < run.urgency
    assert not study.ai_critical
    row = (
        client.get(reverse("worklist"))
        .content.decode()
        .split(f'data-study="{study.pk}"')[1]
        .split("</tr>")[0]
    )
    assert "provisoire" not in row and "data-provisional" not in row
    assert ProvisionalPreRead.objects.filter(study=study).count() == 1  # kept as history
    assert api_client(radiologist).post(reverse("api_claim", args=[study.pk])).status_code == 200


@pytest.mark.testdata
def test_a_cat_radiographs_preview_gets_no_score_and_says_why(models, tech_a, radiologist, client, tmp_path):
    build_constant_model(
        models,
        probabilities={"pneumothorax": 0.95},
        manifest_overrides={"scope": {"modalities": ["DX", "CR"]}},
    )
    cat = testdata_file(CAT)
    preview = preview_bytes(cat, tmp_path)
    copied = pydicom.dcmread(pydicom.filebase.DicomBytesIO(preview))
    assert (
        copied.PatientSpeciesDescription == "Feline"
        and copied.SOPClassUID.name == "Secondary Capture Image Storage"
    )
    tech = api_client(tech_a)
    manifest = announce(tech, cat, priority="stat")
    transfer = send(tech, preview, manifest, kind="preview")
    study = Study.objects.get(study_instance_uid=str(copied.StudyInstanceUID))

    run = score_provisionally(Preview.objects.get(transfer=transfer).pk, study.pk)
    assert run is not None and run.status == "refused" and run.reason_code == "not_human"
    assert run.urgency is None
    study.refresh_from_db()
    assert study.ai_urgency is None and not study.ai_critical

    client.force_login(radiologist)
    row = (
        client.get(reverse("worklist"))
        .content.decode()
        .split(f'data-study="{study.pk}"')[1]
        .split("</tr>")[0]
    )
    assert "Aperçu non analysé" in row and "Examen vétérinaire (Feline)" in row
    assert "data-provisional" not in row


def test_a_preview_of_another_study_than_announced_is_refused(models, tech_a, tmp_path):
    original, other = new_chest(tmp_path, "a"), new_chest(tmp_path, "b")
    tech = api_client(tech_a)
    manifest = announce(tech, original, priority="routine")
    transfer = send(tech, preview_bytes(other, tmp_path), manifest, kind="preview")
    assert (transfer.outcome, transfer.code) == ("refused", "preview_other_study")
    assert not Preview.objects.exists() and not Study.objects.exists()


TIBIA = "real_other/CR_tibia_Fuji_WG04-RG3/RG3_UNCR.dcm"  # 6.2 MB raw, ≈ 830 kB as the agent sends it


@pytest.fixture
def shared_spool(celery_worker, worker_spool_dir, settings):
    settings.INGEST_SPOOL_DIR = worker_spool_dir
    return worker_spool_dir


@pytest.mark.testdata
@pytest.mark.django_db(transaction=True)
def test_a_stat_studys_preview_is_visible_while_the_rest_is_on_a_slow_link(
    live_server, shared_spool, worker_models, tech_a, radiologist, client, tmp_path
):
    from tests.helpers import token_for, wait_for
    from tests.preview_watch import wait_visible
    from tests.slowlink import SlowLink
    from tests.test_siteagent_slow_link import push, summary_of, target

    # A model that accepts any CR/DX (the tibia is an extremity) and sees a critical finding.
    build_constant_model(
        worker_models,
        probabilities={"pneumothorax": 0.95},
        manifest_overrides={"scope": {"modalities": ["CR"]}},
    )
    tibia = testdata_file(TIBIA)
    head = pydicom.dcmread(tibia, stop_before_pixels=True)
    uid, sop = str(head.StudyInstanceUID), str(head.SOPInstanceUID)
    client.force_login(radiologist)
    # 320 kbit/s, 300 ms RTT: the image takes ≈ 20 s, its 9 kB preview a fraction of a second
    # (room for the worker's pre-read of the preview on a loaded machine).
    with SlowLink(target(live_server), rate_bps=320_000, rtt_s=0.3) as link:
        agent = push(link.url, token_for(tech_a), tmp_path / "state", tibia, extra=["--priority", "stat"])
        seen = wait_visible(client, lambda: Study.objects.filter(study_instance_uid=uid).first(), timeout=60)
        assert seen is not None, "the arriving study never showed a provisional score"
        study = Study.objects.get(pk=seen.study_pk)
        # Visible with its score and its share while most of its bytes are still on the link.
        assert study.status == Status.ARRIVING and study.instances.count() == 0
        assert seen.provisional == pytest.approx(
            ProvisionalPreRead.objects.get(study=study).urgency, abs=0.005
        )
        assert seen.received_percent is not None and seen.received_percent < 100
        assert link.stats()["bytes_up"] < 830_000
        answer = api_client(radiologist).post(reverse("api_claim", args=[study.pk]))
        assert answer.status_code == 409 and answer.json()["code"] == "not_allowed_now"
        # A new model version meanwhile: the score of the full image must come from it.
        clear_models(worker_models)
        build_constant_model(
            worker_models,
            probabilities={"pneumothorax": 0.02},
            version="2.0.0",
            manifest_overrides={"scope": {"modalities": ["CR"]}},
        )
        summary = summary_of(agent)
    assert all(s["complete"] for s in summary["studies"]), summary
    wait_for(lambda: Study.objects.get(pk=study.pk).status == Status.QUEUED, timeout=60)
    study.refresh_from_db()
    final = PreRead.objects.get(study=study, is_current=True)
    assert final.status == "scored" and final.urgency < seen.provisional
    assert study.ai_urgency == pytest.approx(final.urgency) and not study.ai_critical
    # One image: the original; the preview is not among the study's images.
    assert list(study.instances.values_list("sop_instance_uid", flat=True)) == [sop]
    assert Preview.objects.filter(study_instance_uid=uid).count() == 1
    row = arriving_row(client, study.pk)
    assert row is not None and "provisional" not in row


def test_the_share_received_and_the_time_left_come_from_the_manifest_and_the_receive_rate(tech_a):
    from datetime import timedelta

    from django.utils import timezone

    from ingest.models import Submission
    from uploads.arrival import arrival_progress
    from uploads.models import StudyManifest

    submission = Submission.objects.create(site=tech_a.site, sender=tech_a, priority="stat")
    StudyManifest.objects.create(
        submission=submission,
        study_instance_uid="1.2.3",
        expected=[{"sop_instance_uid": "1.2.3.1", "sha256": "", "size": 600_000}] * 2,
    )
    now = timezone.now()

    def transfer(kind: str, length: int, offset: int, state: str = "receiving") -> None:
        t = Transfer.objects.create(
            submission=submission, kind=kind, length=length, offset=offset, state=state, expires_at=now
        )
        Transfer.objects.filter(pk=t.pk).update(created_at=now - timedelta(seconds=20), updated_at=now)

    transfer("preview", 9_000, 9_000, "finalised")  # not the study's bytes
    transfer("dicom", 600_000, 600_000, "finalised")
    transfer("dicom", 600_000, 200_000)
    transfer("dicom", 600_000, 500_000, "expired")  # thrown away: not counted
    progress = arrival_progress(["1.2.3", "9.9"], now=now)["1.2.3"]
    assert (progress.bytes_received, progress.bytes_total) == (800_000, 1_200_000)
    assert progress.share == pytest.approx(2 / 3)
    assert progress.rate_bps == pytest.approx(40_000)  # 800 kB in 20 s
    assert progress.eta_seconds == pytest.approx(10)  # 400 kB left at 40 kB/s
    assert "9.9" not in arrival_progress(["9.9"])
