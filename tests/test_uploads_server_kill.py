"""Server killed mid-ingest: after restart nothing acknowledged is lost, nothing stored twice.

Each test runs the platform as its own process (`manage.py runserver`) against the test database,
the session's Orthanc and the session's Celery worker, and SIGKILLs it at a chosen moment.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from base64 import b64encode
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pydicom
import pytest
import requests
from django.db import OperationalError, transaction
from pydicom.uid import generate_uid

from ingest.models import FileVerdict
from orthanc.server import free_port
from studies.models import Instance, Study
from tests.helpers import database_url, dicom_copy, token_for, wait_for
from tests.paths import CT_HEAD, REAL_OTHER, REPO
from uploads import finalisation, spool
from uploads.models import Transfer

pytestmark = pytest.mark.django_db(transaction=True)
TIBIA = REAL_OTHER / "CR_tibia_Fuji_WG04-RG3" / "RG3_UNCR.dcm"  # 6 MB, uncompressed


class Server:
    """`manage.py runserver` in its own process, killable with SIGKILL and restartable."""

    def __init__(self, env: dict, log_dir: Path) -> None:
        self.env, self.log_dir = env, log_dir
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, **overrides: str) -> Server:
        self.port, self.starts = free_port(), self.starts + 1
        log = (self.log_dir / f"server-{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "runserver",
                "--noreload",
                "--skip-checks",
                f"127.0.0.1:{self.port}",
            ],
            env={**self.env, **overrides},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )

        def ready() -> bool:
            assert self.proc.poll() is None, (self.log_dir / f"server-{self.starts}.log").read_text()[-2000:]
            try:
                return requests.options(f"{self.url}/api/v1/uploads/", timeout=2).status_code == 204
            except requests.ConnectionError:
                return False

        wait_for(ready, timeout=30)
        return self

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill()


@pytest.fixture
def server(celery_worker, worker_spool_dir, orthanc_server, settings, tmp_path):
    """The platform as a separate process sharing the worker's spool, queue and database."""
    from joliba.celery import app

    settings.INGEST_SPOOL_DIR = worker_spool_dir
    env = {
        **os.environ,
        "DATABASE_URL": database_url(settings.DATABASES["default"]),
        "ORTHANC_URL": orthanc_server.url,
        "ORTHANC_USERNAME": orthanc_server.username,
        "ORTHANC_PASSWORD": orthanc_server.password,
        "INGEST_SPOOL_DIR": str(worker_spool_dir),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_TASK_DEFAULT_QUEUE": app.conf.task_default_queue,
        "PYTHONPATH": str(REPO / "platform"),
    }
    env.pop("TEST_DATABASE_NAME", None)
    srv = Server(env, tmp_path)
    yield srv
    srv.stop()


@pytest.fixture
def dead_queue():
    """A queue no worker reads: a finalise task sent there is as good as lost with its broker."""
    from joliba.celery import app

    name = f"joliba-test-nobody-{uuid.uuid4().hex[:8]}"
    yield name
    with app.connection_for_write() as conn:
        try:
            conn.default_channel.queue_delete(name)
        except Exception:  # noqa: BLE001 — best effort: an orphan key in the test Redis is harmless
            pass


class HoldingOrthanc:
    """A pass-through proxy to Orthanc that, once armed, holds the answer to the next store.

    Orthanc has stored the instance; the platform has not heard so. Killing the platform then
    is the worst moment of finalisation, made deterministic.
    """

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.armed = False
        self.stored = threading.Event()
        self.release = threading.Event()
        self.answer: dict = {}
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() in ("authorization", "content-type", "accept")
                }
                got = requests.request(
                    self.command, proxy.target + self.path, data=body, headers=headers, timeout=60
                )
                if self.command == "POST" and self.path.rstrip("/") == "/instances" and proxy.armed:
                    proxy.armed = False
                    proxy.answer = got.json()
                    proxy.stored.set()
                    proxy.release.wait(60)
                try:
                    self.send_response(got.status_code)
                    self.send_header("Content-Type", got.headers.get("Content-Type", "application/json"))
                    self.send_header("Content-Length", str(len(got.content)))
                    self.end_headers()
                    self.wfile.write(got.content)
                except OSError:
                    pass  # the platform was killed while waiting

            do_GET = do_POST = do_PUT = do_DELETE = _forward

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def _meta(**values: str) -> str:
    return ",".join(f"{k} {b64encode(v.encode()).decode()}" for k, v in values.items())


def _headers(token: str, **extra: str) -> dict:
    return {"Tus-Resumable": "1.0.0", "Authorization": f"Token {token}", **extra}


def fresh_instance(src: Path, dst: Path) -> Path:
    """A copy with new UIDs: its own study in the session's Orthanc, untouched by other tests."""
    return dicom_copy(
        src,
        dst,
        StudyInstanceUID=generate_uid(),
        SeriesInstanceUID=generate_uid(),
        SOPInstanceUID=generate_uid(),
    )


def create(srv: Server, token: str, data: bytes, name: str, **meta: str) -> str:
    answer = requests.post(
        f"{srv.url}/api/v1/uploads/",
        timeout=10,
        headers=_headers(
            token,
            **{
                "Upload-Length": str(len(data)),
                "Upload-Metadata": _meta(filename=name, sha256=hashlib.sha256(data).hexdigest(), **meta),
            },
        ),
    )
    assert answer.status_code == 201, answer.text
    return "/api/v1/uploads/" + answer.headers["Location"].rstrip("/").rsplit("/", 1)[1] + "/"


def head_offset(srv: Server, token: str, path: str) -> int:
    answer = requests.head(srv.url + path, headers=_headers(token), timeout=10)
    assert answer.status_code == 200, answer.status_code
    return int(answer.headers["Upload-Offset"])


def patch(srv: Server, token: str, path: str, offset: int, body: bytes) -> requests.Response:
    return requests.patch(
        srv.url + path,
        data=body,
        timeout=60,
        headers=_headers(
            token, **{"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"}
        ),
    )


def assert_stored_once(orthanc_server, sop_uid: str, study_uid: str) -> None:
    """One Instance row, one verdict, one instance in the archive's study."""
    assert Instance.objects.filter(sop_instance_uid=sop_uid).count() == 1
    verdicts = FileVerdict.objects.filter(sop_instance_uid=sop_uid)
    assert [v.outcome for v in verdicts] == ["stored"]
    instance = Instance.objects.get(sop_instance_uid=sop_uid)
    assert instance.study.study_instance_uid == study_uid
    assert len(orthanc_server.client().study_instances(instance.study.orthanc_id)) == 1


def test_it_resumes_a_patch_cut_by_a_killed_server_from_an_acknowledged_offset(
    server, tech_a, orthanc_server, tmp_path
):
    source = fresh_instance(TIBIA, tmp_path / "tibia.dcm")
    data = source.read_bytes()
    ds = pydicom.dcmread(source, stop_before_pixels=True)
    token = token_for(tech_a)
    server.start()
    path = create(server, token, data, "tibia.dcm")
    upload_id = path.rstrip("/").rsplit("/", 1)[1]

    # A long PATCH announcing the whole file; the client sends 700 kB of it, then stalls.
    sent = 700_000
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.putrequest("PATCH", path)
    for key, value in _headers(
        token,
        **{
            "Upload-Offset": "0",
            "Content-Length": str(len(data)),
            "Content-Type": "application/offset+octet-stream",
        },
    ).items():
        conn.putheader(key, value)
    conn.endheaders()
    for start in range(0, sent, 50_000):
        conn.send(data[start : min(start + 50_000, sent)])
        time.sleep(0.01)

    # The server checkpoints a long PATCH: some offset is acknowledged while the request is open.
    def checkpointed() -> int:
        offset = head_offset(server, token, path)
        return offset if offset >= 2 * spool.CHECKPOINT else 0

    acknowledged = wait_for(checkpointed, timeout=20)
    server.kill()
    conn.close()
    part = spool.part_path(upload_id)
    assert part.stat().st_size > acknowledged  # bytes read after the last checkpoint: never acknowledged

    server.start()
    offset = head_offset(server, token, path)
    assert acknowledged <= offset <= sent
    assert part.read_bytes()[:offset] == data[:offset]  # everything acknowledged survived the kill
    assert Transfer.objects.get(pk=upload_id).state == "receiving"
    done = patch(server, token, path, offset, data[offset:])
    assert done.status_code == 204, done.text
    assert int(done.headers["Upload-Offset"]) == len(data)

    upload = wait_for(lambda: Transfer.objects.filter(pk=upload_id, state="finalised").first(), timeout=60)
    assert upload.outcome == "stored", (upload.code, upload.params)  # the whole-file SHA-256 matched
    assert_stored_once(orthanc_server, str(ds.SOPInstanceUID), str(ds.StudyInstanceUID))
    stored = orthanc_server.client().instance_file(Instance.objects.get().orthanc_id)
    original = pydicom.dcmread(source).PixelData
    assert pydicom.dcmread(pydicom.filebase.DicomBytesIO(stored)).PixelData == original
    assert not part.exists()  # disk given back


def test_it_finishes_an_upload_whose_server_died_right_after_the_last_acknowledgement(
    server, tech_a, orthanc_server, tmp_path, dead_queue
):
    """The last 204 went out, the finalise task never reaches a worker, the server dies.

    The restarted server's status request does the work; the lost task, if it ever comes back,
    finds nothing left to do.
    """
    source = fresh_instance(CT_HEAD / "07.dcm", tmp_path / "ct.dcm")
    data = source.read_bytes()
    ds = pydicom.dcmread(source, stop_before_pixels=True)
    token = token_for(tech_a)
    server.start(CELERY_TASK_DEFAULT_QUEUE=dead_queue)
    path = create(server, token, data, "ct.dcm")
    upload_id = path.rstrip("/").rsplit("/", 1)[1]
    done = patch(server, token, path, 0, data)
    assert done.status_code == 204 and int(done.headers["Upload-Offset"]) == len(data)
    server.kill()
    assert Transfer.objects.get(pk=upload_id).state == "complete"  # received, not yet processed
    assert spool.part_path(upload_id).stat().st_size == len(data)
    assert not Instance.objects.exists()

    server.start()
    status = requests.get(server.url + path, headers=_headers(token), timeout=60)
    assert status.status_code == 200
    assert status.json()["state"] == "finalised" and status.json()["outcome"] == "stored", status.json()
    assert_stored_once(orthanc_server, str(ds.SOPInstanceUID), str(ds.StudyInstanceUID))
    # The lost task, redelivered: a no-op.
    assert finalisation.finalise_transfer(upload_id) == finalisation.Finalised.NOTHING
    # A retried final PATCH (its 204 lost with the link) is answered, not refused or stored again.
    again = patch(server, token, path, len(data), b"")
    assert again.status_code == 204 and again.headers["Joliba-Outcome"] == "stored"
    assert FileVerdict.objects.count() == 1


def test_it_stores_an_instance_once_when_the_server_dies_mid_finalisation(
    server, tech_a, orthanc_server, tmp_path, dead_queue
):
    """Orthanc has stored the instance, the platform dies before recording it: the sweep finishes it.

    The proxy holds Orthanc's answer so the kill lands exactly between the archive's store and
    the database commit.
    """
    from uploads.tasks import sweep_transfers

    source = fresh_instance(CT_HEAD / "08.dcm", tmp_path / "ct.dcm")
    data = source.read_bytes()
    ds = pydicom.dcmread(source, stop_before_pixels=True)
    token = token_for(tech_a)
    proxy = HoldingOrthanc(orthanc_server.url)
    try:
        server.start(CELERY_TASK_DEFAULT_QUEUE=dead_queue, ORTHANC_URL=proxy.url)
        path = create(server, token, data, "ct.dcm")
        upload_id = path.rstrip("/").rsplit("/", 1)[1]
        assert patch(server, token, path, 0, data).status_code == 204
        proxy.armed = True
        # The status request finalises in the server process; it will never answer.
        asking = threading.Thread(
            target=lambda: _quietly(requests.get, server.url + path, headers=_headers(token), timeout=60)
        )
        asking.start()
        assert proxy.stored.wait(30), "the server never stored the instance"
        server.kill()
        asking.join(10)
    finally:
        proxy.close()
    orthanc_id = proxy.answer["ID"]
    assert orthanc_server.client().instance_tags(orthanc_id)["SOPInstanceUID"] == str(ds.SOPInstanceUID)
    # The database knows nothing of it yet: the finaliser's transaction died with the server.
    assert not Instance.objects.exists() and not FileVerdict.objects.exists()
    assert Transfer.objects.get(pk=upload_id).state == "complete"

    wait_for(lambda: _row_unlocked(upload_id), timeout=20)  # PostgreSQL noticed the dead connection
    sweep_transfers.delay()  # the periodic sweep, run by the session's worker
    upload = wait_for(lambda: Transfer.objects.filter(pk=upload_id, state="finalised").first(), timeout=60)
    assert upload.outcome == "stored", (upload.code, upload.params)
    assert_stored_once(orthanc_server, str(ds.SOPInstanceUID), str(ds.StudyInstanceUID))
    assert Instance.objects.get().orthanc_id == orthanc_id  # the archive's one copy
    assert not spool.part_path(upload_id).exists()


def test_a_server_killed_mid_finalisation_leaves_the_feed_a_study_with_its_site(
    server, tech_a, orthanc_server, tmp_path, dead_queue
):
    """The same SIGKILL between Orthanc's store and the commit; this time the changes feed meets
    the instance before anyone finalises the transfer again. The study is the technician's —
    site, sender, STAT, indication — not a siteless "archive" study they would get 404 on."""
    from ingest.changes_feed import follow_changes
    from tests.test_ingest_intent import start_feed_at_the_present
    from uploads.tasks import sweep_transfers

    source = fresh_instance(CT_HEAD / "09.dcm", tmp_path / "ct.dcm")
    data = source.read_bytes()
    ds = pydicom.dcmread(source, stop_before_pixels=True)
    token = token_for(tech_a)
    start_feed_at_the_present(orthanc_server.client())
    proxy = HoldingOrthanc(orthanc_server.url)
    try:
        server.start(CELERY_TASK_DEFAULT_QUEUE=dead_queue, ORTHANC_URL=proxy.url)
        path = create(server, token, data, "ct.dcm", priority="stat", indication="Polytraumatisé")
        upload_id = path.rstrip("/").rsplit("/", 1)[1]
        assert patch(server, token, path, 0, data).status_code == 204
        proxy.armed = True
        asking = threading.Thread(
            target=lambda: _quietly(requests.get, server.url + path, headers=_headers(token), timeout=60)
        )
        asking.start()
        assert proxy.stored.wait(30), "the server never stored the instance"
        server.kill()
        asking.join(10)
    finally:
        proxy.close()
    assert not Instance.objects.exists()

    follow_changes(orthanc_server.client())
    study = Study.objects.get(study_instance_uid=ds.StudyInstanceUID)
    assert (study.site_id, study.uploaded_by_id, study.source) == (tech_a.site_id, tech_a.pk, "upload")
    assert (study.priority, study.indication) == ("stat", "Polytraumatisé")

    wait_for(lambda: _row_unlocked(upload_id), timeout=20)
    sweep_transfers.delay()
    upload = wait_for(lambda: Transfer.objects.filter(pk=upload_id, state="finalised").first(), timeout=60)
    assert upload.outcome == "stored", (upload.code, upload.params)  # its own file, not a duplicate
    assert_stored_once(orthanc_server, str(ds.SOPInstanceUID), str(ds.StudyInstanceUID))
    # Complete once the worker has run the task the finalisation queued (asynchronous: on RabbitMQ
    # it may still be in flight when the transfer's row says finalised).
    wait_for(lambda: Study.objects.get(pk=study.pk).status != "arriving", timeout=30)


def _quietly(call, *args, **kwargs) -> None:
    try:
        call(*args, **kwargs)
    except requests.RequestException:
        pass


def _row_unlocked(upload_id: str) -> bool:
    try:
        with transaction.atomic():
            list(Transfer.objects.select_for_update(nowait=True).filter(pk=upload_id))
    except OperationalError:
        return False
    return True


def test_the_server_process_answers_tus_with_the_test_database(server, tech_a):
    """Guard for the harness itself: the subprocess sees this test's rows (else every test above lies)."""
    server.start()
    answer = requests.post(
        f"{server.url}/api/v1/uploads/",
        timeout=10,
        headers=_headers(
            token_for(tech_a), **{"Upload-Length": "10", "Upload-Metadata": _meta(filename="x.dcm")}
        ),
    )
    assert answer.status_code == 201, answer.text
    assert Transfer.objects.filter(submission__site=tech_a.site).count() == 1
