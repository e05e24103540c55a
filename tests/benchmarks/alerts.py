"""Alerts benchmark: from the event (a critical AI flag stored) to the SMS accepted by Kannel and to
the fake SMSC receiving it, through Joliba's outbox and a real Celery worker; then alerts raised
during a gateway outage, drained when it returns. Named peer, same run: the same events sent
straight to Kannel's sendsms by the process that stores the flag, without the outbox.

    python tests/benchmarks/alerts.py [--quick] [--alerts N] [--outage N]

Full: 200 alerts (one every 0.1 s), then 1,000 raised while Kannel's smsbox is stopped.
--quick: 60 alerts, then 200 during the outage (< 2 minutes, most of it migrations).

What runs (started here, on free ports, stopped at the end): a throw-away PostgreSQL database on
DATABASE_URL's server (default postgres://postgres@127.0.0.1:5432/), Kannel from Debian's packages
(bearerbox, smsbox, fakesmsc: tests/kannel.py), Django's runserver taking Kannel's callbacks, one
Celery worker (solo pool) on CELERY_BROKER_URL (default redis://127.0.0.1:6379/6). The periodic
pass is sent to the worker every second, as celery beat would with ALERTS_TICK_SECONDS=1; a failed
gateway is probed after 1, 2, 4, 5, 5... s (ALERTS_RETRY_BASE_SECONDS=1,
ALERTS_GATEWAY_RETRY_MAX_SECONDS=5; 30 and 30 by default) so the drain is not mostly waiting for
the next probe; drain_s counts that wait (from the gateway back to the last SMS received).

The outage mix: one event in ten is a critical AI flag, three are STAT arrivals (urgent), six are
reports ready (routine), raised in random order. `order_violations` counts SMS received before a
more urgent one raised earlier or at the same time (0: most urgent first).

Prints progress on stderr, then a one-line summary and one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "platform"))

from tests.kannel import HAVE_KANNEL, WHY_NOT, Kannel, free_port  # noqa: E402

PEER_PHONE = "+22370009999"
ONCALL_PHONE = "+22370000001"
TECH_PHONE = "+22370000077"
TOKEN = "bench-token"


def say(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return round(values[lo] + (values[hi] - values[lo]) * (k - lo), 3)


class Watcher(threading.Thread):
    """Stamps each SMS the fake SMSC prints when it first appears (every 10 ms)."""

    def __init__(self, kannel: Kannel) -> None:
        super().__init__(daemon=True)
        self.kannel, self.stop = kannel, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.kannel.received()
            time.sleep(0.01)


def create_database(base_url: str) -> tuple[str, str]:
    import psycopg

    name = f"bench_alerts_{uuid.uuid4().hex[:8]}"
    parts = urlsplit(base_url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, urlunsplit(parts._replace(path=f"/{name}"))


def drop_database(base_url: str, name: str) -> None:
    import psycopg

    admin = urlunsplit(urlsplit(base_url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--alerts", type=int)
    parser.add_argument("--outage", type=int)
    parser.add_argument("--interval", type=float, default=0.1)
    args = parser.parse_args()
    n_alerts = args.alerts or (60 if args.quick else 200)
    n_outage = args.outage or (200 if args.quick else 1000)
    if not HAVE_KANNEL:
        print(json.dumps({"skipped": WHY_NOT}))
        return

    base_db = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    broker = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/6")
    db_name, db_url = create_database(base_db)
    work = Path(tempfile.mkdtemp(prefix="bench-alerts-"))
    web_port = free_port()
    web_url = f"http://127.0.0.1:{web_port}"
    queue = f"bench-alerts-{uuid.uuid4().hex[:8]}"
    kannel = Kannel(work, incoming_url=f"{web_url}/alerts/kannel/incoming/?token={TOKEN}")
    procs: list[subprocess.Popen] = []
    started = time.monotonic()
    try:
        kannel.start()
        env = {
            **os.environ,
            "DATABASE_URL": db_url,
            "CELERY_BROKER_URL": broker,
            "CELERY_TASK_DEFAULT_QUEUE": queue,
            "PYTHONPATH": str(REPO / "platform"),
            "DJANGO_SETTINGS_MODULE": "joliba.settings",
            "ALERTS_SMS_BACKEND": "kannel",
            "KANNEL_SENDSMS_URL": kannel.sendsms_url,
            "KANNEL_PASSWORD": kannel.password,
            "ALERTS_CALLBACK_URL": web_url,
            "ALERTS_PUBLIC_URL": "https://joliba.example.ml",
            "ALERTS_CALLBACK_TOKEN": TOKEN,
            "ALERTS_QUIET_HOURS": "",
            "ALERTS_RETRY_BASE_SECONDS": "1",
            "ALERTS_GATEWAY_RETRY_MAX_SECONDS": "5",
            "ALERTS_DRAIN_BATCH": "2000",
            "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
            "LOG_LEVEL": "WARNING",
        }
        os.environ.update(env)  # this process raises the events: the same settings as the worker
        manage = [sys.executable, str(REPO / "manage.py")]
        say("migrating a throw-away database")
        subprocess.run([*manage, "migrate", "--noinput", "-v0"], env=env, check=True, cwd=REPO, timeout=300)
        web_log = (work / "web.log").open("wb")
        procs.append(
            subprocess.Popen(
                [*manage, "runserver", "--noreload", f"127.0.0.1:{web_port}"],
                env=env,
                cwd=REPO,
                stdout=web_log,
                stderr=subprocess.STDOUT,
            )
        )
        from tests.helpers import start_worker

        procs.append(start_worker(queue, env, work / "worker.log"))
        import django

        django.setup()
        result = run(kannel, n_alerts=n_alerts, n_outage=n_outage, interval=args.interval)
        result["total_s"] = round(time.monotonic() - started, 1)
        result["quick"] = args.quick
        summary = (
            f"alerts: outbox p50 {result['sms_p50_s']} s p95 {result['sms_p95_s']} s (accepted p95 "
            f"{result['accepted_p95_s']} s) vs peer p50 {result['peer_sms_p50_s']} s; outage of "
            f"{n_outage}: drained in {result['drain_s']} s, lost {result['lost']}, duplicates "
            f"{result['duplicates']}, order violations {result['order_violations']} (peer lost "
            f"{result['peer_lost_in_outage']})"
        )
        print(summary)
        print(json.dumps(result))
    finally:
        for proc in procs[::-1]:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        kannel.stop()
        from django.db import connections

        connections.close_all()
        drop_database(base_db, db_name)


def run(kannel: Kannel, *, n_alerts: int, n_outage: int, interval: float) -> dict:
    import requests
    from django.db import transaction

    from accounts.models import Site, User
    from alerts.models import URGENCY_RANK, Alert, AlertAttempt, OnCallEntry
    from alerts.tasks import run_due_alerts
    from studies import lifecycle
    from tests.alerts_support import critical_case, new_study

    site = Site.objects.create(code="kayes", name="Hôpital de Kayes", region="Kayes")
    doctor = User.objects.create_user(username="oncall", role="radiologist", phone=ONCALL_PHONE)
    OnCallEntry.objects.create(user=doctor, role="radiologist", position=0)
    tech = User.objects.create_user(username="tech", role="technician", site=site, phone=TECH_PHONE)

    watcher = Watcher(kannel)
    watcher.start()
    ticking = threading.Event()

    def tick() -> None:  # celery beat's part: the periodic pass, sent to the worker every second
        while not ticking.is_set():
            run_due_alerts.delay()
            ticking.wait(1.0)

    threading.Thread(target=tick, daemon=True).start()

    def by_code(to: str) -> dict[str, list[float]]:
        got: dict[str, list[float]] = {}
        for r in kannel.received(to):
            head = r.text.split(":")[0].split()
            if head:
                got.setdefault(head[-1], []).append(r.seen_at)
        return got

    # 1. Latency through the outbox: the flag stored and the study queued, committed, at t0.
    say(f"latency: {n_alerts} critical flags, one every {interval} s")
    events: dict[str, tuple[float, int]] = {}
    for _ in range(n_alerts):
        t0 = time.time()
        study = critical_case(site)  # the flag stored and the study queued, one commit
        events[study.case_code] = (t0, study.pk)
        time.sleep(interval)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(by_code(ONCALL_PHONE)) < n_alerts:
        time.sleep(0.2)
    got = by_code(ONCALL_PHONE)
    latencies = [got[c][0] - t0 for c, (t0, _) in events.items() if c in got]
    accepted = []
    for t0, pk in events.values():
        attempt = AlertAttempt.objects.filter(alert__study_id=pk, outcome="accepted").order_by("pk").first()
        if attempt and attempt.finished_at:
            accepted.append(attempt.finished_at.timestamp() - t0)
    lost = sum(1 for c in events if c not in got)
    duplicates = sum(len(v) - 1 for c, v in got.items() if c in events)

    # 2. The peer: the same event, then straight to sendsms from this process (no outbox, no worker).
    say(f"peer: {n_alerts} SMS straight to Kannel's sendsms")
    peer_events: dict[str, float] = {}
    for _ in range(n_alerts):
        t0 = time.time()
        with transaction.atomic():  # an event committed, then the SMS sent by hand: no outbox row
            study = new_study(site, event="arrive")
        code = f"PEER{study.pk}"
        requests.get(
            kannel.sendsms_url,
            params={
                "username": "joliba",
                "password": kannel.password,
                "to": PEER_PHONE,
                "text": f"X {code}: peer",
            },
            timeout=10,
        )
        peer_events[code] = t0
        time.sleep(interval)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(by_code(PEER_PHONE)) < n_alerts:
        time.sleep(0.2)
    peer_got = by_code(PEER_PHONE)
    peer_latencies = [peer_got[c][0] - t0 for c, t0 in peer_events.items() if c in peer_got]

    # 3. Outage: smsbox stopped; events raised in random order of urgency; then it comes back.
    say(f"outage: {n_outage} events while Kannel's smsbox is down")
    kannel.forget()
    kannel.stop_smsbox()
    kinds = ["critical"] * 1 + ["urgent"] * 3 + ["routine"] * 6
    plan = [kinds[i % 10] for i in range(n_outage)]
    random.Random(9).shuffle(plan)
    raised: dict[str, tuple[int, float]] = {}  # code -> (urgency rank, raised at)
    peer_lost = 0
    rank = {k.value: v for k, v in URGENCY_RANK.items()}
    for i, kind in enumerate(plan):
        if kind == "critical":
            study = critical_case(site)
        elif kind == "urgent":
            study = new_study(site, priority="stat", event="arrive")
        else:
            study = new_study(site, uploader=tech)
            lifecycle.transition(study, "claim", actor=doctor)
            lifecycle.transition(study, "sign", actor=doctor)
        raised[study.case_code] = (rank[kind], time.time())
        if i < 50:  # the peer during the same outage: each send refused, nothing keeps it
            try:
                requests.get(kannel.sendsms_url, params={"to": PEER_PHONE, "text": "x"}, timeout=2)
            except requests.RequestException:
                peer_lost += 1
    time.sleep(2)
    pending = Alert.objects.filter(status="pending").count()
    say(f"  {pending} alerts waiting in the outbox; gateway back")
    back = time.time()
    kannel.start_smsbox()
    numbers = (ONCALL_PHONE, TECH_PHONE)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        got_outage = {**by_code(ONCALL_PHONE), **by_code(TECH_PHONE)}
        if len([c for c in raised if c in got_outage]) >= len(raised):
            break
        time.sleep(0.2)
    received = sorted(
        (t, code) for to in numbers for code, times in by_code(to).items() for t in times if code in raised
    )
    drain_s = round(received[-1][0] - back, 2) if received else None
    got_outage = {**by_code(ONCALL_PHONE), **by_code(TECH_PHONE)}
    outage_lost = sum(1 for c in raised if c not in got_outage)
    outage_dup = sum(len(v) - 1 for c, v in got_outage.items() if c in raised)
    violations = 0
    best_later = 99  # the most urgent rank received after the current one
    for _, code in reversed(received):
        r = raised[code][0]
        if r > best_later:  # this one went out before a more urgent one
            violations += 1
        best_later = min(best_later, r)
    ticking.set()
    watcher.stop.set()

    return {
        "alerts": n_alerts,
        "sms_p50_s": percentile(latencies, 50),
        "sms_p95_s": percentile(latencies, 95),
        "sms_max_s": round(max(latencies), 3) if latencies else None,
        "accepted_p50_s": percentile(accepted, 50),
        "accepted_p95_s": percentile(accepted, 95),
        "peer": "sendsms straight from the event's process, no outbox",
        "peer_sms_p50_s": percentile(peer_latencies, 50),
        "peer_sms_p95_s": percentile(peer_latencies, 95),
        "outage_alerts": n_outage,
        "drain_s": drain_s,
        "first_after_back_s": round(received[0][0] - back, 2) if received else None,
        "drain_per_s": round(len(received) / (received[-1][0] - received[0][0]), 1)
        if len(received) > 1
        else None,
        "order_violations": violations,
        "lost": lost + outage_lost,
        "duplicates": duplicates + outage_dup,
        "peer_lost_in_outage": f"{peer_lost}/50",
        "stats_latency_mean_s": round(statistics.mean(latencies), 3) if latencies else None,
    }


if __name__ == "__main__":
    main()
