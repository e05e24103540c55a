"""Beyond one process of each kind (docs/deployment.md#several-hosts): two gunicorn (gthread) web
processes and two Celery workers on split queues — one for ingest, alerts and the default queue,
one for inference only, as a GPU host would run it — on one PostgreSQL database (this session's
test database), one RabbitMQ and one Orthanc. A STAT chest film is uploaded through the first web
process, pre-read on the inference worker, its report signed through the second web process, and
the alerts delivered by the other worker. The queues carry a per-test prefix
(CELERY_QUEUE_PREFIX), so sessions sharing the broker never meet."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from alerts.models import Alert
from orthanc.server import free_port
from preread.models import PreRead
from studies.models import Study
from tests.alerts_support import PHONES, on_call_chain
from tests.helpers import (
    build_constant_model,
    database_url,
    new_chest,
    start_worker,
    stop_worker,
    token_for,
    wait_for,
)
from tests.paths import REPO

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.orthanc]


class Web:
    """gunicorn with gthread workers, as deploy/ runs it, on a free port."""

    def __init__(self, env: dict[str, str], log: Path, *, new_session: bool = False) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "joliba.wsgi",
                    "--config=python:health.gunicorn_hooks",
                    f"--bind=127.0.0.1:{self.port}",
                    "--worker-class=gthread",
                    "--workers=2",
                    "--threads=4",
                    "--timeout=120",
                    "--access-logfile=-",
                ],  # fmt: skip
                env=env,
                cwd=REPO / "platform",
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=new_session,  # its own process group: killed whole (test_power_cut)
            )

    def ready(self) -> bool:
        assert self.proc.poll() is None, self.log.read_text()[-3000:]
        try:
            return requests.get(f"{self.url}/health/live", timeout=5).status_code == 200
        except requests.RequestException:  # refused, or the workers still loading the app
            return False

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def test_two_web_processes_and_two_workers_on_split_queues_carry_a_study_through(
    orthanc_server, settings, site_a, tech_a, radiologist, radiologist_2, admin_user, tmp_path
):
    on_call_chain(radiologist, radiologist_2, admin_user, emails=False)
    prefix = f"joliba-scale-{uuid.uuid4().hex[:8]}-"
    models = tmp_path / "models"
    build_constant_model(models, probabilities={"pneumothorax": 0.95})
    sms_file = tmp_path / "sms.txt"
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "joliba.settings",
        "DATABASE_URL": database_url(settings.DATABASES["default"]),  # the session's test database
        "ORTHANC_URL": orthanc_server.url,
        "ORTHANC_USERNAME": orthanc_server.username,
        "ORTHANC_PASSWORD": orthanc_server.password,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_SPLIT_QUEUES": "1",
        "CELERY_QUEUE_PREFIX": prefix,
        "CELERY_TASK_DEFAULT_QUEUE": f"{prefix}celery",
        "INGEST_SPOOL_DIR": str(tmp_path / "spool"),
        "JOLIBA_RENDITIONS_ROOT": str(tmp_path / "renditions"),
        "JOLIBA_MODELS_DIR": str(tmp_path / "no-models"),  # only the inference worker has the model
        "ALERTS_SMS_BACKEND": "file",
        "ALERTS_SMS_FILE": str(sms_file),
        "ALERTS_QUIET_HOURS": "",
        "ALERTS_PUBLIC_URL": "https://joliba.example.ml",
        "PYTHONPATH": str(REPO / "platform"),
    }
    env.pop("TEST_DATABASE_NAME", None)
    logs = {name: tmp_path / f"{name}.log" for name in ("ingest", "inference", "web1", "web2")}
    processes: list = []
    webs: list[Web] = []
    try:
        ingest = start_worker(f"{prefix}ingest,{prefix}alerts,{prefix}celery", env, logs["ingest"])
        processes.append(ingest)
        gpu = start_worker(f"{prefix}inference", {**env, "JOLIBA_MODELS_DIR": str(models)}, logs["inference"])
        processes.append(gpu)
        webs = [
            Web({**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}, logs["web1"]),
            Web(env, logs["web2"]),
        ]
        for web in webs:
            wait_for(web.ready, timeout=60)
        started = time.monotonic()

        # 1. The site sends a STAT chest film through the first web process.
        path = new_chest(tmp_path, "scale")
        with path.open("rb") as f:
            sent = requests.post(
                f"{webs[0].url}/api/v1/studies/upload/",
                headers={"Authorization": f"Token {token_for(tech_a)}"},
                files={"files": ("scale.dcm", f, "application/dicom")},
                data={"indication": "Dyspnée brutale", "priority": "stat"},
                timeout=60,
            )
        assert sent.status_code == 201, sent.text
        study = Study.objects.get(pk=sent.json()["verdicts"][0]["study"])

        # 2. Pre-read by the inference worker (the only one with the model), then queued.
        wait_for(lambda: Study.objects.get(pk=study.pk).status == "queued", timeout=90)
        run = PreRead.objects.get(study=study, is_current=True)
        assert run.status == "scored" and run.critical_flags == ["pneumothorax"]
        preread_done = time.monotonic()

        # 3. The radiologist claims and signs through the second web process.
        reader = {"Authorization": f"Token {token_for(radiologist)}"}
        claimed = requests.post(f"{webs[1].url}/api/v1/studies/{study.pk}/claim/", headers=reader, timeout=30)
        assert claimed.status_code == 200, claimed.text
        signed = requests.put(
            f"{webs[1].url}/api/v1/studies/{study.pk}/report/",
            headers=reader,
            json={"findings": "Pneumothorax droit.", "conclusion": "Pneumothorax droit.", "sign": True},
            timeout=30,
        )
        assert signed.status_code == 200, signed.text
        assert Study.objects.get(pk=study.pk).status == "reported"

        # 4. The alerts (STAT arrival, AI critical flag, report ready) delivered by the other worker.
        sent_alerts = wait_for(
            lambda: (
                (q := Alert.objects.filter(study=study, channel="sms", status="sent"))
                and {a.kind for a in q} >= {"stat_arrived", "ai_critical"}
                and list(q)
            ),
            timeout=60,
        )
        total = time.monotonic() - started
        assert PHONES["dr_a"] in sms_file.read_text()
        metrics = requests.get(f"{webs[0].url}/metrics", timeout=30)
        assert metrics.status_code == 200
    finally:
        for web in webs:
            web.stop()
        for proc in processes:
            stop_worker(proc)

    # Each task ran where its queue sent it.
    ingest_log, inference_log = logs["ingest"].read_text(), logs["inference"].read_text()
    assert "preread.tasks.prepare_for_reading[" in inference_log
    assert "preread.tasks.prepare_for_reading[" not in ingest_log
    assert "alerts.tasks.deliver_alert[" in ingest_log and "alerts.tasks.deliver_alert[" not in inference_log
    assert "viewer.tasks.make_renditions[" in ingest_log and "make_renditions[" not in inference_log
    # Each web process answered its part (gunicorn's access log).
    assert re.search(r'"POST /api/v1/studies/upload/ HTTP/1.1" 201', logs["web1"].read_text())
    web2 = logs["web2"].read_text()
    assert re.search(rf'"PUT /api/v1/studies/{study.pk}/report/ HTTP/1.1" 200', web2)
    assert "/upload/" not in web2
    # The first web process's request metrics come from both its gunicorn processes' files.
    assert "django_http_requests_total_by_method_total" in metrics.text
    assert len(list(metrics_dir.glob("*.db"))) >= 2
    assert 'joliba_queue_messages{queue="' + prefix + 'inference"}' in metrics.text
    print(
        f"scale: upload → pre-read done {preread_done - started:.1f} s, → signed and alerts sent "
        f"{total:.1f} s; {len(sent_alerts)} SMS"
    )
