"""Fixtures and hooks of the whole suite: real components, started only for the tests that need them.

- `orthanc_server` (session): one real Orthanc. A test gets it, and settings pointing at it, by
  asking for the fixture or by the `orthanc` marker; every other test's settings point at a closed
  port, so one that talks to the archive without saying so fails fast instead of passing by luck.
- `celery_worker` (session): one real `celery worker` process on the machine's broker (implies
  Orthanc). Tests that use it are marked `worker` automatically.
- Test images (tests/paths.py): without the shared folder, tests run on a portable set. A test
  that names a shared image the portable set lacks (a parameter, or a module constant its body
  uses) is skipped with that file named; one that reaches such an image another way carries the
  `testdata` marker (or calls testdata_file()). The session then ends with one line saying how
  many were skipped and where the images are expected.
- Personas: site_a, site_b, tech_a, tech_b, radiologist, radiologist_2, admin_user. The radiologists
  and the admin have a confirmed TOTP device (their enrolled phone): the browser's `log_in` enters
  the code it would show (tests.helpers.totp_code).
- Second factor: radiologists and admins open nothing patient-related until their session has
  passed it (accounts.middleware). `client.force_login(user)` is patched here to leave the session
  as a real sign-in with password and code does: OTP-verified with the user's TOTP device (one is
  given to a radiologist or admin made in a test without one; tests.helpers.mark_verified).
  `client.force_login(user, verified=False)` leaves it unverified, for the tests of that gate;
  `tests.helpers.login_verified(client, user)` does the same as the patched call.
- Cache: each test gets an empty in-process cache (the rate limits count there).

`make unit` runs what needs no service: `-m "not orthanc and not worker and not browser and not slow"`
(the test PostgreSQL is still used: creating it takes a few seconds).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from orthanc.server import OrthancProcess
from tests.helpers import (
    SESSION_QUEUES,
    clear_models,
    database_url,
    delete_test_queues,
    give_totp_device,
    start_worker,
    stop_worker,
)
from tests.paths import (
    HAVE_SHARED_TESTDATA,
    NOT_FOUND,
    PORTABLE_TESTDATA,
    REPO,
    WHERE_THEY_GO,
    build_portable_testdata,
)

# Playwright's sync API runs an event loop in the test thread; Django's ORM must still work.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

NO_ARCHIVE = "http://127.0.0.1:9"  # discard port: refused at once


def pytest_configure(config):
    if not HAVE_SHARED_TESTDATA:
        build_portable_testdata()
    _patch_force_login()


def _patch_force_login():
    """Client.force_login also passes the second factor (the module docstring says why)."""
    from django.test import Client

    from tests.helpers import mark_verified

    if getattr(Client.force_login, "joliba_second_factor", False):
        return
    plain = Client.force_login

    def force_login(self, user, backend=None, *, verified=True):
        plain(self, user, backend)
        if verified:
            mark_verified(self, user)

    force_login.joliba_second_factor = True
    Client.force_login = force_login


def pytest_collection_modifyitems(config, items):
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if "orthanc_server" in names:
            item.add_marker("orthanc")
        if "celery_worker" in names:
            item.add_marker("worker")
        if HAVE_SHARED_TESTDATA:
            continue  # a shared file missing then is a failure, never a skip
        if item.get_closest_marker("testdata"):
            item.add_marker(pytest.mark.skip(reason=f"needs the shared test images ({NOT_FOUND})"))
        elif missing := _missing_images(item):
            item.add_marker(
                pytest.mark.skip(reason=f"needs {missing[0].relative_to(PORTABLE_TESTDATA)} ({NOT_FOUND})")
            )


def _missing_images(item) -> list[Path]:
    """Images the portable set lacks that the test names itself: as a parameter, or as a module-level
    constant its body uses. (One reached through a helper or built inside the test is not seen:
    such a test says so with @pytest.mark.testdata or testdata_file().)"""
    values = list(getattr(getattr(item, "callspec", None), "params", {}).values())
    function = getattr(item, "function", None)
    if function is not None:
        names = _global_names(function.__code__)
        values += [function.__globals__[n] for n in names if n in function.__globals__]
    paths = []
    for value in values:
        for candidate in value if isinstance(value, list | tuple | set) else (value,):
            if isinstance(candidate, Path) and candidate.is_relative_to(PORTABLE_TESTDATA):
                paths.append(candidate)
    return [p for p in paths if not p.exists()]


def _global_names(code) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:  # lambdas and comprehensions are code objects of their own
        if hasattr(const, "co_names"):
            names |= _global_names(const)
    return names


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    excinfo = call.excinfo
    if (
        report.failed
        and excinfo is not None
        and excinfo.errisinstance(FileNotFoundError)
        and str(PORTABLE_TESTDATA) in str(getattr(excinfo.value, "filename", ""))
    ):
        report.sections.append(
            (
                "joliba test data",
                (
                    f"{excinfo.value.filename} is not in the portable set: this test needs the shared test "
                    "images; mark it @pytest.mark.testdata (tests/paths.py explains)."
                ),
            )
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """A test that used the session's worker ends once the worker is idle, before its fixtures
    are torn down: the database flush (TRUNCATE) of a transactional test otherwise deadlocks with
    a task the test started and no longer waits for (a rendition, a pre-read after the upload)."""
    worker = getattr(item, "funcargs", {}).get("celery_worker")
    if worker is not None:
        from tests.helpers import wait_worker_idle

        wait_worker_idle(worker)
    yield


@pytest.hookimpl(trylast=True)  # after the coverage table, just above the per-test reasons
def pytest_terminal_summary(terminalreporter):
    if HAVE_SHARED_TESTDATA:
        return
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if NOT_FOUND in str(r.longrepr)]
    terminalreporter.write_line(
        f"joliba: {len(skipped)} tests skipped, {NOT_FOUND}: {WHERE_THEY_GO}. The other tests ran on "
        f"the portable set ({PORTABLE_TESTDATA.relative_to(REPO)}/MANIFEST.md).",
        yellow=True,
        bold=True,
    )


@pytest.fixture(scope="session")
def orthanc_server(tmp_path_factory):
    # KAYES_CR is site_a's modality: declared, so it may C-STORE; any other AE is refused.
    modalities = {"kayes-cr": ("KAYES_CR", "127.0.0.1", 11112)}
    with OrthancProcess(tmp_path_factory.mktemp("orthanc"), stable_age_s=1, modalities=modalities) as server:
        yield server


UNCONSUMED_QUEUE = f"joliba-test-unconsumed-{uuid.uuid4().hex[:8]}"


def pytest_sessionfinish(session):
    """The session's queues (each uuid-named) leave the broker with it: RabbitMQ's quorum queues
    are durable, and every run would otherwise leave a few behind."""
    from django.conf import settings

    if settings.configured and settings.CELERY_BROKER_URL.startswith(("redis://", "amqp://")):
        try:
            delete_test_queues(SESSION_QUEUES | {UNCONSUMED_QUEUE})
        except Exception as error:  # noqa: BLE001 — a broker already gone must not fail the run
            print(f"joliba: could not delete the session's test queues: {error}")


@pytest.fixture(autouse=True)
def _test_settings(request, settings, tmp_path):
    """Each test's own spool; the session's Orthanc only for tests that use it (fixture or marker);
    the session's worker only sees the tasks of tests that use it: another test's tasks (enqueued
    on commit) go to a queue nobody reads, so a worker never writes while a test's tables are
    being flushed."""
    from joliba.celery import app

    settings.INGEST_SPOOL_DIR = tmp_path / "spool"
    # Personas are created for almost every test: a fast hash (the production hashers are slow on
    # purpose). Processes the tests start use their own settings, so they log in by token.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # An empty cache of this process for each test: rate-limit counts never leak between tests.
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": uuid.uuid4().hex}
    }
    queue = app.conf.task_default_queue
    if "celery_worker" not in request.fixturenames:
        app.conf.task_default_queue = UNCONSUMED_QUEUE
    else:  # the web side (live server, test client) serves the renditions the worker wrote
        settings.JOLIBA_RENDITIONS_ROOT = request.getfixturevalue("worker_renditions_dir")
    if request.node.get_closest_marker("orthanc") or "orthanc_server" in request.fixturenames:
        server = request.getfixturevalue("orthanc_server")
        settings.ORTHANC_URL = server.url
        settings.ORTHANC_USERNAME = server.username
        settings.ORTHANC_PASSWORD = server.password
    else:
        settings.ORTHANC_URL = NO_ARCHIVE
    yield
    app.conf.task_default_queue = queue


@pytest.fixture(scope="session")
def worker_spool_dir(tmp_path_factory) -> Path:
    """INGEST_SPOOL_DIR of the session worker; tests whose web side hands files to the worker
    (resumable uploads) point settings.INGEST_SPOOL_DIR here, as production shares a volume."""
    return tmp_path_factory.mktemp("worker-spool")


@pytest.fixture(scope="session")
def worker_models_dir(tmp_path_factory) -> Path:
    """JOLIBA_MODELS_DIR of the session worker: empty (no AI) unless a test puts a model there."""
    return tmp_path_factory.mktemp("worker-models")


@pytest.fixture
def worker_models(celery_worker, worker_models_dir, settings):
    """The session worker's model folder; emptied afterwards so other tests see no AI."""
    settings.JOLIBA_MODELS_DIR = worker_models_dir
    yield worker_models_dir
    clear_models(worker_models_dir)


@pytest.fixture(scope="session")
def worker_renditions_dir(tmp_path_factory) -> Path:
    """JOLIBA_RENDITIONS_ROOT of the session worker (the web side must read what it writes)."""
    return tmp_path_factory.mktemp("worker-renditions")


@pytest.fixture(scope="session")
def celery_worker(
    django_db_setup,
    django_db_blocker,
    orthanc_server,
    tmp_path_factory,
    worker_models_dir,
    worker_spool_dir,
    worker_renditions_dir,
):
    """A real `celery worker` process on the machine's broker, against the test database."""
    from django.conf import settings

    from joliba.celery import app

    if not settings.CELERY_BROKER_URL.startswith(("redis://", "amqp://")):
        pytest.skip("set CELERY_BROKER_URL to the machine's RabbitMQ (make test does) or Redis")
    queue = f"joliba-test-{uuid.uuid4().hex[:8]}"
    app.conf.task_default_queue = queue
    env = {
        **os.environ,
        "DATABASE_URL": database_url(settings.DATABASES["default"]),
        "ORTHANC_URL": orthanc_server.url,
        "ORTHANC_USERNAME": orthanc_server.username,
        "ORTHANC_PASSWORD": orthanc_server.password,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "INGEST_SPOOL_DIR": str(worker_spool_dir),
        "JOLIBA_MODELS_DIR": str(worker_models_dir),
        "JOLIBA_RENDITIONS_ROOT": str(worker_renditions_dir),
        "PYTHONPATH": str(REPO / "platform"),
    }
    proc = start_worker(queue, env, tmp_path_factory.mktemp("worker") / "worker.log")
    yield proc
    stop_worker(proc)


# Personas, named for who they are.
@pytest.fixture
def site_a(db):
    from accounts.models import Site

    return Site.objects.create(code="kayes", name="Hôpital de Kayes", region="Kayes", dicom_aet="KAYES_CR")


@pytest.fixture
def site_b(db):
    from accounts.models import Site

    return Site.objects.create(code="sikasso", name="Hôpital de Sikasso", region="Sikasso")


def _user(username, role, site=None):
    from accounts.models import User, read_everything

    user = User.objects.create_user(
        username=username, password="pw-" + username, role=role, site=site, first_name=username.title()
    )
    if role == "radiologist":  # without a profile a radiologist reads nothing (accounts.ReaderProfile)
        read_everything(user)
    if role in ("radiologist", "admin"):  # their enrolled phone (the second factor)
        give_totp_device(user)
    return user


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
