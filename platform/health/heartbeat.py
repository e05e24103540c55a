"""The worker's heartbeat: a daemon thread of the worker's main process writes its last-alive time
every HEALTH_WORKER_HEARTBEAT_SECONDS, started when the worker says it is ready.

A thread rather than Celery's own heartbeat (`heartbeat_sent`): that one runs in the worker's event
loop, which a solo pool blocks for the whole of a long task (an inference), so a busy worker would
look dead; and the tests' workers run `--without-heartbeat`. The thread dies with the process, so
a killed worker's row goes stale and /health/ready says so after HEALTH_WORKER_STALE_SECONDS.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import timedelta

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

log = logging.getLogger(__name__)
_stop = threading.Event()
_threads: list[threading.Thread] = []


def beat_name(hostname: str) -> str:
    """One row per worker process: two workers started with the same node name (the default
    `celery@host`) must not keep each other's row alive."""
    return f"worker:{hostname}:{os.getpid()}"


def record(name: str, queues: list[str] | None = None) -> None:
    from .models import Heartbeat

    defaults: dict[str, object] = {"at": timezone.now()}
    if queues is not None:
        defaults["queues"] = ",".join(sorted(queues))
    Heartbeat.objects.update_or_create(name=name, defaults=defaults)


def prune() -> None:
    """Rows of workers killed long ago (a killed worker cannot remove its own): gone after a day.
    Once per worker start, not on every beat."""
    from .models import Heartbeat

    Heartbeat.objects.filter(name__startswith="worker:", at__lt=timezone.now() - timedelta(days=1)).delete()


def _run(name: str, queues: list[str]) -> None:
    interval = float(settings.HEALTH_WORKER_HEARTBEAT_SECONDS)
    try:
        prune()
    except Exception:  # the database is down: the next start prunes
        log.warning("old worker heartbeats not pruned", exc_info=True)
    while not _stop.is_set():
        try:
            close_old_connections()
            record(name, queues)
        except Exception:  # the database is down: the check says so; keep trying
            log.warning("worker heartbeat not written", exc_info=True)
            connection.close()
        _stop.wait(interval)
    connection.close()


@worker_ready.connect
def start_heartbeat(sender=None, **kwargs) -> None:
    if float(settings.HEALTH_WORKER_HEARTBEAT_SECONDS) <= 0:  # switched off
        return
    hostname = getattr(sender, "hostname", None) or socket.gethostname()
    app = getattr(sender, "app", None)
    queues = list(app.amqp.queues.consume_from) if app is not None else []
    _stop.clear()
    thread = threading.Thread(
        target=_run, args=(beat_name(hostname), queues), name="joliba-heartbeat", daemon=True
    )
    thread.start()
    _threads.append(thread)


@worker_shutdown.connect
def stop_heartbeat(sender=None, **kwargs) -> None:
    _stop.set()
    for thread in _threads:  # its last write done before the row goes
        thread.join(timeout=5)
    try:  # a worker stopped on purpose leaves no live-looking row behind
        from .models import Heartbeat

        hostname = getattr(sender, "hostname", None) or socket.gethostname()
        Heartbeat.objects.filter(name=beat_name(hostname)).delete()
    except Exception:
        log.warning("worker heartbeat not removed", exc_info=True)
