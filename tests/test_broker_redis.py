"""Redis stays a working broker for small installs: a worker on redis:// runs a real task published
by a process configured for Redis (docs/deployment.md#the-broker). The rest of the suite runs on
RabbitMQ with quorum queues, as production does; `TEST_REDIS_URL` names the Redis used here
(default: the machine's, database 0), and the test is skipped where none answers."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from tests.helpers import database_url, delete_test_queues, start_worker, stop_worker, wait_for
from tests.paths import REPO

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


@pytest.fixture
def redis_url(settings) -> str:
    url = os.environ.get("TEST_REDIS_URL") or (
        settings.CELERY_BROKER_URL
        if settings.CELERY_BROKER_URL.startswith("redis://")
        else "redis://127.0.0.1:6379/0"
    )
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        pytest.skip(f"no Redis at {url}: {error}")
    return url


def test_a_worker_on_redis_runs_a_task_published_with_the_redis_configuration(redis_url, settings, tmp_path):
    from health.models import Heartbeat

    queue = f"joliba-redis-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url(settings.DATABASES["default"]),
        "CELERY_BROKER_URL": redis_url,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "PYTHONPATH": str(REPO / "platform"),
    }
    env.pop("TEST_DATABASE_NAME", None)
    Heartbeat.objects.filter(name="beat").delete()
    log_path = tmp_path / "worker.log"
    worker = start_worker(queue, env, log_path)
    try:
        # The worker's own heartbeat: it runs against this test's database, on this queue.
        wait_for(
            lambda: Heartbeat.objects.filter(name__startswith="worker:", queues=queue).exists(), timeout=20
        )
        # Published by another process whose settings were computed for Redis: classic queues, no
        # quorum arguments, no routes (what a small install runs).
        publish = (
            "import django; django.setup()\n"
            "from django.conf import settings\n"
            "from joliba.celery import app\n"
            "assert not getattr(settings, 'CELERY_TASK_DEFAULT_QUEUE_TYPE', None), 'quorum on Redis'\n"
            "assert app.connection_for_write().transport.driver_type == 'redis'\n"
            "from health.tasks import beat_tick\n"
            "beat_tick.delay()\n"
        )
        subprocess.run(
            [sys.executable, "-c", publish],
            env={**env, "DJANGO_SETTINGS_MODULE": "joliba.settings"},
            cwd=REPO,
            check=True,
            timeout=60,
        )
        wait_for(lambda: Heartbeat.objects.filter(name="beat").exists(), timeout=20)
    finally:
        stop_worker(worker)
    log = log_path.read_text()
    assert "health.tasks.beat_tick" in log and "succeeded" in log, log[-2000:]
    assert ".> transport:   redis://" in log, log[:3000]  # the worker's banner: it ran on Redis


def test_its_queues_are_deleted_by_the_helper_the_session_uses(redis_url):
    """The session deletes its queues at the end (conftest.pytest_sessionfinish): on Redis too."""
    import redis

    queue = f"joliba-redis-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(redis_url)
    client.rpush(queue, b"{}")
    assert not delete_test_queues([queue], url=redis_url)
    assert not client.exists(queue)
