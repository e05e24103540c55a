"""The readiness checks: one function per component, each bounded by HEALTH_CHECK_TIMEOUT_SECONDS.

Every check runs in its own daemon thread and `run_checks` waits for all of them at most the
timeout (plus a little): a component that hangs (a half-open socket, a locked database) is
reported "timeout", never waited for. A check returns (state, detail) where state is "ok",
"unhealthy" or "not configured"; details say what failed (host, age, free bytes), never
patient data.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import requests
from django.conf import settings
from django.db import connection
from django.utils import timezone

OK, UNHEALTHY, NOT_CONFIGURED = "ok", "unhealthy", "not configured"
Result = tuple[str, dict[str, Any]]


def _timeout() -> float:
    return float(settings.HEALTH_CHECK_TIMEOUT_SECONDS)


def check_database() -> Result:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return OK, {}
    finally:
        connection.close()  # this thread's own connection


def check_broker() -> Result:
    from joliba.celery import app

    if settings.CELERY_BROKER_URL.startswith("filesystem://"):  # the quickstart: a folder
        folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]
        writable = os.access(str(folder), os.W_OK)
        return (OK if writable else UNHEALTHY), {"transport": "filesystem"}
    with app.connection_for_write(url=settings.CELERY_BROKER_URL, connect_timeout=_timeout()) as conn:
        conn.ensure_connection(max_retries=0, timeout=_timeout())
        conn.default_channel.close()  # redis: its PING; amqp: a channel opened, then closed
        return OK, {"transport": str(conn.transport_cls)}


def check_orthanc() -> Result:
    answer = requests.get(
        f"{settings.ORTHANC_URL.rstrip('/')}/system",
        auth=(settings.ORTHANC_USERNAME, settings.ORTHANC_PASSWORD),
        timeout=_timeout(),
    )
    if answer.status_code != 200:
        return UNHEALTHY, {"status": answer.status_code}
    return OK, {"version": answer.json().get("Version", "")}


def _age(name_filter: dict[str, Any]) -> float | None:
    from .models import Heartbeat

    try:
        latest = Heartbeat.objects.filter(**name_filter).order_by("-at").values_list("at", flat=True).first()
    finally:
        connection.close()
    return None if latest is None else (timezone.now() - latest).total_seconds()


def check_worker() -> Result:
    """Healthy when every queue of HEALTH_WORKER_QUEUES has a worker whose heartbeat is fresh."""
    from .models import Heartbeat

    stale = float(settings.HEALTH_WORKER_STALE_SECONDS)
    since = timezone.now() - timedelta(seconds=stale)
    try:
        alive = list(
            Heartbeat.objects.filter(name__startswith="worker:", at__gte=since).values_list(
                "queues", flat=True
            )
        )
    finally:
        connection.close()
    age = _age({"name__startswith": "worker:"})
    per_queue = {q: sum(q in queues.split(",") for queues in alive) for q in settings.HEALTH_WORKER_QUEUES}
    detail = {
        "alive": len(alive),
        "queues": per_queue,
        "last_seen_seconds": None if age is None else round(age, 1),
        "stale_after": stale,
    }
    return (OK if alive and all(per_queue.values()) else UNHEALTHY), detail


def check_beat() -> Result:
    stale = float(settings.HEALTH_BEAT_STALE_SECONDS)
    age = _age({"name": "beat"})
    detail = {"last_tick_seconds": None if age is None else round(age, 1), "stale_after": stale}
    return (OK if age is not None and age <= stale else UNHEALTHY), detail


def check_sms() -> Result:
    if settings.ALERTS_SMS_BACKEND != "kannel":
        return NOT_CONFIGURED, {"backend": settings.ALERTS_SMS_BACKEND}
    url = settings.HEALTH_KANNEL_STATUS_URL or settings.KANNEL_SENDSMS_URL
    # Kannel's status page (bearerbox admin port) answers 200; smsbox's sendsms without parameters
    # answers a 4xx refusal: either way an HTTP answer means the gateway is up.
    answer = requests.get(url, timeout=_timeout())
    up = answer.status_code == 200 if settings.HEALTH_KANNEL_STATUS_URL else answer.status_code < 500
    return (OK if up else UNHEALTHY), {"status": answer.status_code}


def check_disk() -> Result:
    usage = shutil.disk_usage(settings.DATA_DIR)
    minimum = int(settings.HEALTH_MIN_FREE_BYTES)
    detail = {"free_bytes": usage.free, "total_bytes": usage.total, "min_free_bytes": minimum}
    return (OK if usage.free >= minimum else UNHEALTHY), detail


CHECKS: dict[str, Callable[[], Result]] = {
    "database": check_database,
    "broker": check_broker,
    "orthanc": check_orthanc,
    "worker": check_worker,
    "beat": check_beat,
    "sms": check_sms,
    "disk": check_disk,
}


def run_checks(names: list[str] | None = None) -> dict[str, Any]:
    """Every check at once, in parallel; the whole answer within the timeout (+0.5 s)."""
    names = names or list(CHECKS)
    results: dict[str, dict[str, Any]] = {}
    started = time.monotonic()

    def run(name: str) -> None:
        t0 = time.monotonic()
        try:
            state, detail = CHECKS[name]()
        except Exception as exc:  # any failure of a check is that component's verdict
            state, detail = UNHEALTHY, {"error": type(exc).__name__}
        results[name] = {"status": state, "seconds": round(time.monotonic() - t0, 3), **detail}

    threads = {name: threading.Thread(target=run, args=(name,), daemon=True) for name in names}
    for thread in threads.values():
        thread.start()
    deadline = started + _timeout() + 0.5
    for thread in threads.values():
        thread.join(max(0.0, deadline - time.monotonic()))
    components = {
        name: dict(results.get(name) or {"status": UNHEALTHY, "error": "timeout"}) for name in names
    }
    required = set(settings.HEALTH_REQUIRED)
    healthy = all(c["status"] != UNHEALTHY for n, c in components.items() if n in required)
    return {
        "status": "ok" if healthy else "unhealthy",
        "seconds": round(time.monotonic() - started, 3),
        "components": components,
    }
