"""Real components for the whole session: one Orthanc, one Celery worker on Redis, PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from orthanc.server import OrthancProcess
from tests.paths import REPO

# Playwright's sync API runs an event loop in the test thread; Django's ORM must still work.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def orthanc_server(tmp_path_factory):
    # KAYES_CR is site_a's modality: declared, so it may C-STORE; any other AE is refused.
    modalities = {"kayes-cr": ("KAYES_CR", "127.0.0.1", 11112)}
    with OrthancProcess(tmp_path_factory.mktemp("orthanc"), stable_age_s=1, modalities=modalities) as server:
        yield server


@pytest.fixture(autouse=True)
def _use_session_orthanc(orthanc_server, settings, tmp_path):
    settings.ORTHANC_URL = orthanc_server.url
    settings.ORTHANC_USERNAME = orthanc_server.username
    settings.ORTHANC_PASSWORD = orthanc_server.password
    settings.INGEST_SPOOL_DIR = tmp_path / "spool"


def _database_url(db: dict) -> str:
    user = db.get("USER") or ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{db['NAME']}"


@pytest.fixture(scope="session")
def worker_spool_dir(tmp_path_factory) -> Path:
    """INGEST_SPOOL_DIR of the session worker; tests whose web side hands files to the worker
    (resumable uploads) point settings.INGEST_SPOOL_DIR here, as production shares a volume."""
    return tmp_path_factory.mktemp("worker-spool")


@pytest.fixture(scope="session")
def worker_models_dir(tmp_path_factory) -> Path:
    """JOLIBA_MODELS_DIR of the session worker: empty (no AI) unless a test puts a model there."""
    return tmp_path_factory.mktemp("worker-models")


@pytest.fixture(scope="session")
def celery_worker(
    django_db_setup, django_db_blocker, orthanc_server, tmp_path_factory, worker_models_dir,
    worker_spool_dir,
):
    """A real `celery worker` process on the machine's broker, against the test database."""
    from django.conf import settings

    from joliba.celery import app

    if not settings.CELERY_BROKER_URL.startswith(("redis://", "amqp://")):
        pytest.skip("set CELERY_BROKER_URL to the machine's Redis (make test does)")
    queue = f"joliba-test-{uuid.uuid4().hex[:8]}"
    app.conf.task_default_queue = queue
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(settings.DATABASES["default"]),
        "ORTHANC_URL": orthanc_server.url,
        "ORTHANC_USERNAME": orthanc_server.username,
        "ORTHANC_PASSWORD": orthanc_server.password,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "INGEST_SPOOL_DIR": str(worker_spool_dir),
        "JOLIBA_MODELS_DIR": str(worker_models_dir),
        "PYTHONPATH": str(REPO / "platform"),
    }
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "joliba", "worker", "-Q", queue, "--pool=solo",
         "--concurrency=1", "--without-heartbeat", "--without-gossip", "--without-mingle",
         "--loglevel=INFO"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
    )
    deadline = time.monotonic() + 60
    while b" ready." not in log_path.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"celery worker did not start: {log_path.read_text()[-2000:]}")
        time.sleep(0.2)
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def wait_for(predicate, timeout: float = 20, interval: float = 0.2):
    """Poll until predicate() is truthy; return its value or fail with the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


# Personas, named for who they are.
@pytest.fixture
def site_a(db):
    from accounts.models import Site

    return Site.objects.create(code="kayes", name="Hôpital de Kayes", region="Kayes",
                               dicom_aet="KAYES_CR")


@pytest.fixture
def site_b(db):
    from accounts.models import Site

    return Site.objects.create(code="sikasso", name="Hôpital de Sikasso", region="Sikasso")


def _user(username, role, site=None):
    from accounts.models import User

    return User.objects.create_user(username=username, password="pw-" + username, role=role,
                                    site=site, first_name=username.title())


@pytest.fixture
def tech_a(site_a):
    return _user("tech_a", "technician", site_a)


@pytest.fixture
def tech_b(site_b):
    return _user("tech_b", "technician", site_b)


@pytest.fixture
def radiologist(db):
    return _user("dr_a", "radiologist")


@pytest.fixture
def radiologist_2(db):
    return _user("dr_b", "radiologist")


@pytest.fixture
def admin_user(db):
    return _user("admin_a", "admin")


def api_client(user):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def dicom_copy(src: Path, dst: Path, **changes) -> Path:
    """A copy of a real DICOM with some tags changed (new UIDs make a new study)."""
    import pydicom

    ds = pydicom.dcmread(src)
    for key, value in changes.items():
        setattr(ds, key, value)
    ds.save_as(dst)
    return dst
