"""A power cut mid-write: every process of the service SIGKILLed at once — gunicorn (master and
workers), the Celery worker, beat and Orthanc — while sites upload (one-shot API sendings and
resumable tus transfers) and a radiologist signs reports; then everything restarted. Nothing
the service acknowledged is lost: every upload answered 201 (or a final tus 204) is in the
database and in the archive, every report answered 200 is signed and intact, and no signing is
half-done. PostgreSQL is the machine's shared server, not killed here (its durability is its
own: WAL and fsync); a process kill keeps what reached the kernel, so this is not a test of a lost
page cache — the spool's bytes are fsynced before they are acknowledged for that case."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest
import requests
from pydicom.uid import generate_uid

from accounts.models import ReaderProfile
from ingest.models import FileVerdict
from orthanc.server import OrthancProcess
from reports.models import ReportVersion
from studies import lifecycle
from studies.lifecycle import Transition
from studies.models import Instance, Study
from tests.alerts_support import new_study
from tests.helpers import database_url, dicom_copy, in_archive, start_worker, token_for, wait_for
from tests.paths import CT_HEAD, REPO
from tests.test_scale import Web
from tests.test_uploads_server_kill import create, patch
from uploads.models import Transfer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.orthanc]


class Service:
    """The platform's processes on one Orthanc storage, killable all at once and restartable."""

    def __init__(self, settings, tmp_path) -> None:
        self.tmp = tmp_path
        self.orthanc = OrthancProcess(tmp_path / "orthanc", stable_age_s=1)
        (tmp_path / "orthanc").mkdir()
        prefix = f"joliba-cut-{uuid.uuid4().hex[:8]}-"
        self.queue = f"{prefix}celery"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "joliba.settings",
            "DATABASE_URL": database_url(settings.DATABASES["default"]),
            "ORTHANC_URL": self.orthanc.url,
            "ORTHANC_USERNAME": self.orthanc.username,
            "ORTHANC_PASSWORD": self.orthanc.password,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "CELERY_TASK_DEFAULT_QUEUE": self.queue,
            "INGEST_SPOOL_DIR": str(tmp_path / "spool"),
            "JOLIBA_RENDITIONS_ROOT": str(tmp_path / "renditions"),
            "JOLIBA_MODELS_DIR": str(tmp_path / "no-models"),
            "UPLOADS_SWEEP_SECONDS": "3",  # the sweep finishes transfers a kill left complete
            "ALERTS_SMS_BACKEND": "file",
            "ALERTS_SMS_FILE": str(tmp_path / "sms.txt"),
            "PYTHONPATH": str(REPO / "platform"),
        }
        self.env.pop("TEST_DATABASE_NAME", None)
        self.web: Web | None = None
        self.worker: subprocess.Popen | None = None
        self.beat: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        self.orthanc.start()
        self.worker = start_worker(self.queue, self.env, self.tmp / f"worker-{self.starts}.log")
        with (self.tmp / f"beat-{self.starts}.log").open("wb") as log:
            self.beat = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "joliba",
                    "beat",
                    "-s",
                    str(self.tmp / "beat-schedule"),
                ],
                env=self.env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.web = Web(self.env, self.tmp / f"web-{self.starts}.log", new_session=True)
        wait_for(self.web.ready, timeout=60)

    def cut_the_power(self) -> None:
        """SIGKILL to every process at once: no handler, no clean-up, no flush of our own."""
        assert self.web and self.worker and self.beat and self.orthanc._proc
        groups = [self.web.proc.pid, self.beat.pid, self.orthanc._proc.pid]  # each leads its group
        for pgid in groups:
            os.killpg(pgid, signal.SIGKILL)
        self.worker.send_signal(signal.SIGKILL)
        for proc in (self.web.proc, self.beat, self.worker, self.orthanc._proc):
            proc.wait(timeout=10)
        self.orthanc._proc = None

    def stop(self) -> None:
        if self.web:
            self.web.stop()
        for proc in (self.worker, self.beat):
            if proc and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=20)
        self.orthanc.stop()


def ct_file(tmp_path, i: int):
    return dicom_copy(
        CT_HEAD / f"{1 + i % 10:02d}.dcm",
        tmp_path / f"cut-{i}.dcm",
        StudyInstanceUID=generate_uid(),
        SeriesInstanceUID=generate_uid(),
        SOPInstanceUID=generate_uid(),
    )


def test_nothing_acknowledged_is_lost_when_every_process_is_killed_mid_write(
    settings, site_a, tech_a, radiologist, tmp_path
):
    import pydicom

    service = Service(settings, tmp_path)
    files = [ct_file(tmp_path, i) for i in range(24)]
    sop = {p: str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in files}
    # Cases in reading, for the radiologist to sign during the cut.
    ReaderProfile.objects.filter(user=radiologist).update(max_in_hand=20)  # eight cases in hand
    cases = []
    for _ in range(10):
        study = new_study(site_a, priority="urgent")
        lifecycle.transition(study, Transition.CLAIM, actor=radiologist)
        cases.append(study)
    tech, reader = token_for(tech_a), token_for(radiologist)
    acked_api: list[str] = []  # SOP UIDs the one-shot API answered 201 for
    acked_tus: list[tuple[str, str]] = []  # (transfer path, SOP UID) whose last PATCH got 204
    acked_signed: dict[int, str] = {}  # study pk → the conclusion the 200 answered for
    stop = threading.Event()

    def send_api(paths) -> None:
        for path in paths:
            if stop.is_set():
                return
            try:
                with path.open("rb") as f:
                    answer = requests.post(
                        f"{service.web.url}/api/v1/studies/upload/",
                        headers={"Authorization": f"Token {tech}"},
                        files={"files": (path.name, f, "application/dicom")},
                        data={"indication": "Traumatisme", "priority": "urgent"},
                        timeout=30,
                    )
            except requests.RequestException:
                return  # the power is off
            if answer.status_code == 201 and answer.json()["verdicts"][0]["outcome"] == "stored":
                acked_api.append(sop[path])

    def send_tus(paths) -> None:
        for path in paths:
            if stop.is_set():
                return
            data = path.read_bytes()
            try:
                where = create(service.web, tech, data, path.name)
                done = patch(service.web, tech, where, 0, data)
            except (requests.RequestException, AssertionError):
                return
            if done.status_code == 204 and int(done.headers["Upload-Offset"]) == len(data):
                acked_tus.append((where, sop[path]))
            time.sleep(0.3)

    def sign() -> None:
        for study in cases:
            if stop.is_set():
                return
            conclusion = f"Pas de lésion ({study.pk})."
            try:
                answer = requests.put(
                    f"{service.web.url}/api/v1/studies/{study.pk}/report/",
                    headers={"Authorization": f"Token {reader}"},
                    json={"findings": "Examen normal.", "conclusion": conclusion, "sign": True},
                    timeout=30,
                )
            except requests.RequestException:
                return
            if answer.status_code == 200 and answer.json().get("signed_at"):
                acked_signed[study.pk] = conclusion
            time.sleep(1.0)  # a radiologist's pace: the cut falls among the signatures

    try:
        service.start()
        threads = [
            threading.Thread(target=send_api, args=(files[:12],)),
            threading.Thread(target=send_tus, args=(files[12:],)),
            threading.Thread(target=sign),
        ]
        for thread in threads:
            thread.start()
        # Cut while all three are writing: some of each acknowledged, more in flight.
        wait_for(lambda: len(acked_api) >= 2 and len(acked_tus) >= 2 and len(acked_signed) >= 2, timeout=90)
        assert len(acked_signed) < len(cases) and len(acked_api) < 12, "the cut came after the writes"
        service.cut_the_power()
        stop.set()
        for thread in threads:
            thread.join(30)
        counts = (len(acked_api), len(acked_tus), len(acked_signed))

        service.start()  # the power is back: the same storage, database and queue
        # Resumable transfers acknowledged whole are finalised by the sweep or the worker.
        for where, _ in acked_tus:
            pk = where.rstrip("/").rsplit("/", 1)[1]
            upload = wait_for(
                lambda pk=pk: Transfer.objects.filter(pk=pk, state="finalised").first(), timeout=90
            )
            assert upload.outcome in ("stored", "duplicate"), (upload.code, upload.params)
        archive = service.orthanc
        for uid in [*acked_api, *(uid for _, uid in acked_tus)]:
            assert Instance.objects.filter(sop_instance_uid=uid).count() == 1, uid
            assert in_archive(archive, uid), f"acknowledged {uid} missing from the archive"
            assert FileVerdict.objects.filter(sop_instance_uid=uid, outcome="stored").count() == 1, uid
        for pk, conclusion in acked_signed.items():
            (version,) = ReportVersion.objects.filter(report__study_id=pk)
            assert conclusion in version.conclusion and version.author_id == radiologist.pk
            assert Study.objects.get(pk=pk).status == "reported"
        # Not acknowledged: done entirely or not at all, never half (signed ⇔ reported).
        for study in cases:
            signed = ReportVersion.objects.filter(report__study=study).exists()
            assert signed == (Study.objects.get(pk=study.pk).status == "reported"), study.pk
    finally:
        stop.set()
        service.stop()
    print(
        f"power cut: {counts[0]} API sendings, {counts[1]} tus transfers, {counts[2]} of {len(cases)} "
        "signatures acknowledged before the cut, all found after the restart"
    )
