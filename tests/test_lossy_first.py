"""Lossy first, lossless after: an urgent study may go ahead at the guideline ratio; its lossless
original follows and takes the stand-in's place at the centre (same site only); a report signed
while an image was lossy says so. Real Orthanc, real files."""

from __future__ import annotations

import shutil

import pydicom
import pytest
from django.urls import reverse

from ingest.models import FileVerdict
from reports.services import save_report
from siteagent.compression import SitePolicy, compress_stand_in, stand_in_uid
from siteagent.manifest import enqueue
from siteagent.queue import Queue
from studies import lifecycle
from studies.lifecycle import Transition
from studies.models import Instance, Status, Study
from studies.selectors import has_lossy_images
from tests.helpers import api_client, dicom_copy, in_archive, token_for, wait_for
from tests.paths import CT_HEAD, TIBIA
from tests.test_reports import pdf_text

LOSSY_NOTE_FR = "Signé sur des images comprimées avec perte"


def _send(user, path) -> dict:
    with open(path, "rb") as f:
        answer = api_client(user).post(
            reverse("api_upload"),
            {"files": [f], "indication": "Traumatisme", "priority": "urgent"},
            format="multipart",
        )
    assert answer.status_code == 201, answer.content
    return answer.json()["verdicts"][0]


def _manifests(queue: Queue) -> list[tuple[str, list[tuple[str, str]]]]:
    rows = queue.db.execute("SELECT id FROM manifests ORDER BY created, rowid").fetchall()
    return [
        (
            mid,
            queue.db.execute(
                "SELECT sop_uid, codec FROM instances WHERE manifest_id=? ORDER BY sop_uid", (mid,)
            ).fetchall(),
        )
        for (mid,) in rows
    ]


def test_an_urgent_study_is_queued_lossy_first_then_lossless(tmp_path):
    slices = sorted(CT_HEAD.glob("*.dcm"))[:2]
    originals = sorted(str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in slices)
    queue = Queue(tmp_path / "state")
    policy = SitePolicy(lossy_first="urgent")
    enqueue(queue, slices, policy=policy, priority="urgent", say=lambda _m: None)
    first, second = _manifests(queue)
    assert sorted(uid for uid, _ in first[1]) == sorted(stand_in_uid(u) for u in originals)
    assert {codec for _, codec in first[1]} == {"j2k-lossy"}
    assert [uid for uid, _ in second[1]] == originals and "j2k-lossy" not in {c for _, c in second[1]}
    # The previews go with the first manifest only; the queue would send the stand-ins first.
    kinds = dict(queue.db.execute("SELECT manifest_id, group_concat(kind) FROM items GROUP BY manifest_id"))
    assert "preview" in kinds[first[0]] and "preview" not in kinds[second[0]]
    # Run again (after a crash, say): nothing is queued twice.
    enqueue(queue, slices, policy=policy, priority="urgent", say=lambda _m: None)
    assert len(_manifests(queue)) == 2


def test_a_routine_study_goes_lossless_only_unless_the_site_says_always(tmp_path):
    slices = sorted(CT_HEAD.glob("*.dcm"))[:1]
    urgent_only = Queue(tmp_path / "a")
    enqueue(
        urgent_only, slices, policy=SitePolicy(lossy_first="urgent"), priority="routine", say=lambda _m: None
    )
    assert len(_manifests(urgent_only)) == 1
    always = Queue(tmp_path / "b")
    enqueue(always, slices, policy=SitePolicy(lossy_first="always"), priority="routine", say=lambda _m: None)
    assert len(_manifests(always)) == 2


@pytest.mark.django_db
@pytest.mark.orthanc
def test_the_original_replaces_its_stand_in_and_the_report_signed_on_it_says_so(
    tech_a, radiologist, client, orthanc_server, tmp_path, django_capture_on_commit_callbacks
):
    stand_in = compress_stand_in(TIBIA, tmp_path / "stand-in.dcm", SitePolicy())
    assert stand_in is not None
    original_uid = str(pydicom.dcmread(TIBIA, stop_before_pixels=True).SOPInstanceUID)
    assert stand_in.sop_instance_uid == stand_in_uid(original_uid)
    assert _send(tech_a, stand_in.path)["outcome"] == "stored"
    study = Study.objects.get()
    assert Instance.objects.get().lossy
    client.force_login(radiologist)
    assert "Compression avec perte" in client.get(reverse("study_detail", args=[study.pk])).content.decode()

    lifecycle.transition(study, Transition.CLAIM, actor=radiologist)
    report = save_report(
        study=study, author=radiologist, findings="Fracture du tibia.", conclusion="Fracture.", sign=True
    )
    assert report.latest.on_lossy_images
    for page in ("study_detail", "report"):
        assert LOSSY_NOTE_FR in client.get(reverse(page, args=[study.pk])).content.decode()
    assert LOSSY_NOTE_FR in pdf_text(client.get(reverse("report_pdf", args=[study.pk])).content)

    # The lossless original arrives after the report: it takes the stand-in's place.
    with django_capture_on_commit_callbacks(execute=True):
        assert _send(tech_a, TIBIA)["outcome"] == "stored"
    [instance] = Instance.objects.all()
    assert instance.sop_instance_uid == original_uid and not instance.lossy
    assert not in_archive(orthanc_server, stand_in.sop_instance_uid) and in_archive(
        orthanc_server, original_uid
    )
    study.refresh_from_db()
    assert study.status == Status.REPORTED  # not reopened: the report stands, and says lossy
    assert report.versions.count() == 1 and report.latest.on_lossy_images
    assert (
        "Compression avec perte" not in client.get(reverse("study_detail", args=[study.pk])).content.decode()
    )


@pytest.mark.django_db
@pytest.mark.orthanc
def test_only_the_same_sites_original_of_that_instance_replaces_a_stand_in(tech_a, tech_b, tmp_path):
    stand_in = compress_stand_in(TIBIA, tmp_path / "stand-in.dcm", SitePolicy())
    assert stand_in is not None
    assert _send(tech_a, stand_in.path)["outcome"] == "stored"
    # Another site, the very original: refused (the study is site A's), the stand-in stays.
    assert _send(tech_b, TIBIA)["code"] == "other_site"
    # The same site, another image of the study: an ordinary new image, the stand-in stays.
    other = dicom_copy(TIBIA, tmp_path / "other.dcm", SOPInstanceUID=pydicom.uid.generate_uid())
    assert _send(tech_a, other)["outcome"] == "stored"
    assert Instance.objects.filter(sop_instance_uid=stand_in.sop_instance_uid, lossy=True).exists()
    assert Instance.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.orthanc
def test_a_stand_in_that_comes_after_its_original_is_a_duplicate_and_leaves_the_archive(
    tech_a, orthanc_server, tmp_path, django_capture_on_commit_callbacks
):
    stand_in = compress_stand_in(TIBIA, tmp_path / "stand-in.dcm", SitePolicy())
    assert stand_in is not None
    assert _send(tech_a, TIBIA)["outcome"] == "stored"
    with django_capture_on_commit_callbacks(execute=True):
        assert _send(tech_a, stand_in.path)["outcome"] == "duplicate"
    [instance] = Instance.objects.all()
    assert not instance.lossy and not has_lossy_images(instance.study)
    assert not in_archive(orthanc_server, stand_in.sop_instance_uid)


@pytest.mark.django_db
@pytest.mark.orthanc
def test_a_report_signed_on_lossless_images_says_nothing_about_loss(tech_a, radiologist, client, tmp_path):
    shutil.copy(TIBIA, tmp_path / "t.dcm")
    assert _send(tech_a, tmp_path / "t.dcm")["outcome"] == "stored"
    study = Study.objects.get()
    lifecycle.transition(study, Transition.CLAIM, actor=radiologist)
    report = save_report(study=study, author=radiologist, conclusion="Normal.", sign=True)
    assert not report.latest.on_lossy_images
    client.force_login(radiologist)
    assert LOSSY_NOTE_FR not in pdf_text(client.get(reverse("report_pdf", args=[study.pk])).content)


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_the_agent_sends_the_stand_in_then_the_original_which_replaces_it(
    live_server, celery_worker, worker_spool_dir, settings, tech_a, orthanc_server, tmp_path
):
    from tests.test_siteagent_slow_link import assert_pixels_identical, push, summary_of

    settings.INGEST_SPOOL_DIR = worker_spool_dir
    original_uid = str(pydicom.dcmread(TIBIA, stop_before_pixels=True).SOPInstanceUID)
    summary = summary_of(
        push(
            live_server.url,
            token_for(tech_a),
            tmp_path / "state",
            TIBIA,
            extra=["--priority", "urgent", "--lossy-first", "urgent"],
        )
    )
    assert summary["pending_items"] == 0 and all(s["complete"] for s in summary["studies"]), summary
    study = Study.objects.get()
    uids = set(study.instances.values_list("sop_instance_uid", flat=True))
    assert original_uid in uids and stand_in_uid(original_uid) not in uids
    # The stand-in was sent first; stored, then replaced — or, when its finalisation came second,
    # reported a duplicate of the image the study already had in full.
    first = FileVerdict.objects.get(sop_instance_uid=stand_in_uid(original_uid))
    then = FileVerdict.objects.get(sop_instance_uid=original_uid)
    assert first.outcome in ("stored", "duplicate") and then.outcome == "stored"
    wait_for(lambda: not in_archive(orthanc_server, stand_in_uid(original_uid)), timeout=10)
    assert_pixels_identical(orthanc_server, study, [TIBIA])
    assert not has_lossy_images(study)  # the preview of an image the study has does not count
