"""Health endpoints (docs/operations.md) on real components: a dedicated Orthanc, a Celery worker
this test starts (so it can kill it), the machine's broker; each stopped component is reported
unhealthy within a measured bound, and a hung one does not make the endpoint hang."""

from __future__ import annotations

import signal
import time
import uuid

import pytest
from django.conf import settings as django_settings

from orthanc.server import OrthancProcess
from tests.helpers import start_worker, stop_worker, wait_for
from tests.ops_support import SilentPort, child_env, closed_port, manage

READY = "/health/ready"
BOUND_S = 10.0  # "unhealthy within seconds": the worker's stale bound is 6 s (settings.py)


def _ready(client) -> tuple[int, dict]:
    answer = client.get(READY)
    assert answer["Content-Type"] == "application/json"
    return answer.status_code, answer.json()


def _time_until_unhealthy(client, component: str) -> tuple[float, int, dict]:
    started = time.monotonic()
    while time.monotonic() - started < 30:
        status, body = _ready(client)
        if body["components"][component]["status"] == "unhealthy":
            return time.monotonic() - started, status, body
        time.sleep(0.25)
    raise AssertionError(f"{component} still healthy after 30 s")


def test_live_answers_without_touching_the_database(client):
    # No `db` fixture: pytest-django refuses any query, so a 200 proves the database is not used.
    answer = client.get("/health/live")
    assert answer.status_code == 200 and answer.content == b"ok\n"


@pytest.mark.django_db
def test_ready_shows_nothing_to_the_outside(client, settings):
    settings.HEALTH_REQUIRED = ["disk"]
    assert client.get(READY, REMOTE_ADDR="203.0.113.7").status_code == 404
    # Through the reverse proxy (a forwarding header) even a loopback peer is the outside.
    assert client.get(READY, HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 404
    assert client.get(READY, HTTP_X_FORWARDED_FOR="203.0.113.7").content == client.get("/nowhere").content
    settings.HEALTH_TOKEN = "s3cret-health-token-for-tests"
    outside = {"REMOTE_ADDR": "203.0.113.7", "HTTP_X_FORWARDED_FOR": "203.0.113.7"}
    assert client.get(READY, HTTP_AUTHORIZATION="Bearer wrong", **outside).status_code == 404
    answer = client.get(READY, HTTP_AUTHORIZATION="Bearer s3cret-health-token-for-tests", **outside)
    assert answer.status_code == 200, answer.content
    assert set(answer.json()["components"]) == {
        "database",
        "broker",
        "orthanc",
        "worker",
        "beat",
        "sms",
        "disk",
    }
    settings.HEALTH_ALLOWED_NETWORKS = []
    assert client.get(READY, REMOTE_ADDR="127.0.0.1").status_code == 404
    settings.HEALTH_TOKEN = ""
    settings.HEALTH_ALLOWED_NETWORKS = ["127.0.0.0/8", "10.0.0.0/8"]
    assert client.get(READY, REMOTE_ADDR="192.168.1.9").status_code == 404
    assert client.get(READY, REMOTE_ADDR="10.1.2.3").status_code == 200  # the monitoring host, on the LAN


@pytest.mark.django_db
def test_a_hung_orthanc_or_broker_does_not_make_the_endpoint_hang(client, settings):
    orthanc, broker = SilentPort(), SilentPort()
    try:
        settings.ORTHANC_URL = f"http://127.0.0.1:{orthanc.port}"
        settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{broker.port}/0"
        started = time.monotonic()
        status, body = _ready(client)
        took = time.monotonic() - started
    finally:
        orthanc.close()
        broker.close()
    assert status == 503
    assert body["components"]["orthanc"]["status"] == "unhealthy"
    assert body["components"]["broker"]["status"] == "unhealthy"
    assert body["components"]["database"]["status"] == "ok"
    assert took <= settings.HEALTH_CHECK_TIMEOUT_SECONDS + 1.0, took


@pytest.mark.django_db(transaction=True)
def test_stopped_orthanc_killed_worker_closed_broker_are_unhealthy_within_seconds(client, settings, tmp_path):
    if not django_settings.CELERY_BROKER_URL.startswith(("redis://", "amqp://")):
        pytest.skip("set CELERY_BROKER_URL to the machine's broker")
    from health.tasks import beat_tick

    orthanc = OrthancProcess(tmp_path / "orthanc").start()
    queue = f"joliba-health-{uuid.uuid4().hex[:8]}"
    worker = None
    try:
        settings.ORTHANC_URL, settings.ORTHANC_USERNAME = orthanc.url, orthanc.username
        settings.ORTHANC_PASSWORD = orthanc.password
        settings.HEALTH_WORKER_QUEUES = [queue]
        env = child_env(orthanc, CELERY_TASK_DEFAULT_QUEUE=queue, INGEST_SPOOL_DIR=str(tmp_path / "spool"))
        worker = start_worker(queue, env, tmp_path / "worker.log")
        beat_tick.apply_async(queue=queue)  # what beat sends every HEALTH_BEAT_SECONDS

        def all_healthy():
            status, body = _ready(client)
            return (status, body) if status == 200 else None

        status, body = wait_for(all_healthy, timeout=30)
        assert {n: c["status"] for n, c in body["components"].items()} == {
            "database": "ok", "broker": "ok", "orthanc": "ok", "worker": "ok", "beat": "ok",
            "sms": "not configured", "disk": "ok",
        }  # fmt: skip
        assert body["components"]["worker"]["queues"] == {queue: 1}
        # The command the compose/systemd healthchecks run says the same, by its exit code.
        done = manage(["health"], env)
        assert done.returncode == 0, done.stdout + done.stderr

        orthanc.stop()
        took, status, body = _time_until_unhealthy(client, "orthanc")
        print(f"orthanc stopped: unhealthy after {took:.2f} s")
        assert status == 503 and took <= BOUND_S
        done = manage(["health", "orthanc"], env)
        assert done.returncode == 1 and "orthanc" in done.stdout and "unhealthy" in done.stdout

        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        took, status, body = _time_until_unhealthy(client, "worker")
        print(f"worker killed: unhealthy after {took:.2f} s")
        assert status == 503 and took <= BOUND_S
        # No live worker for its queue (the suite's own worker, if one runs, serves another).
        assert body["components"]["worker"]["queues"] == {queue: 0}

        settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"
        took, status, body = _time_until_unhealthy(client, "broker")
        print(f"broker unreachable: unhealthy after {took:.2f} s")
        assert status == 503 and took <= BOUND_S
        assert body["components"]["database"]["status"] == "ok"  # the others are still told apart
    finally:
        if worker is not None and worker.poll() is None:
            stop_worker(worker)
        orthanc.stop()


@pytest.mark.django_db(transaction=True)
def test_a_worker_stopped_on_purpose_removes_its_heartbeat(tmp_path, orthanc_server, settings):
    if not django_settings.CELERY_BROKER_URL.startswith(("redis://", "amqp://")):
        pytest.skip("set CELERY_BROKER_URL to the machine's broker")
    from health.checks import check_worker
    from health.models import Heartbeat

    queue = f"joliba-health-{uuid.uuid4().hex[:8]}"
    env = child_env(orthanc_server, CELERY_TASK_DEFAULT_QUEUE=queue, INGEST_SPOOL_DIR=str(tmp_path / "spool"))
    worker = start_worker(queue, env, tmp_path / "worker.log")
    try:
        row = wait_for(lambda: Heartbeat.objects.filter(queues=queue).first(), timeout=20)
        assert row.name.startswith("worker:")
    finally:
        stop_worker(worker)  # SIGTERM: a warm shutdown
    assert not Heartbeat.objects.filter(name=row.name).exists()
    settings.HEALTH_WORKER_QUEUES = [queue]
    state, detail = check_worker()
    assert state == "unhealthy" and detail["queues"] == {queue: 0}
