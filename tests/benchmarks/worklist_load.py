"""Worklist load benchmark: many radiologists on the production app server, one big backlog.

    python tests/benchmarks/worklist_load.py [--quick] [--cases N] [--clients N] [--duration S]

A PostgreSQL database of its own (joliba_bench_worklist, on the server of DATABASE_URL) gets
N open cases bulk-made as the pipeline leaves them (history rows, current and superseded
pre-reads; mostly routine, some urgent and STAT, waits from seconds to days, 5 % in reading) plus
N/2 closed ones. gunicorn serves joliba.wsgi as in production (gthread, 2 workers) on a free
loopback port. Each client is one radiologist with a session, on a kept-alive connection: it
opens the worklist (page 1 mostly, sometimes page 2-3 or a filter), refreshes the list as
worklist.js does (If-None-Match), and claims one of the top cases it was shown (contention on
purpose), then releases it, with a think time between requests (--think, 5 s on average by
default: six times busier than the page's own 30 s refresh; 0 = closed loop, as fast as the
server answers). Before the load, one radiologist alone opens the worklist 15 times (what a
page costs when nobody else asks). The database is dropped afterwards unless --keep.

Afterwards the database is checked: every claim event must find the study free (no study ever
had two holders), each study's holder must be its last claimer, and the claims the clients saw
succeed must be the claim events recorded (none lost, none invented). The peer, in the same run:
the old way (every open case loaded and ranked in Python, ranking.order_cases) against the SQL
ranking, for the same radiologist, timed in this process on the same database.

Default: 10,000 cases, 50 clients, 60 s. --quick: 1,000 cases, 20 clients, 30 s. Prints a
one-line summary, then one JSON line.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import random
import re
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "platform"))
from tests.benchmarks.scratch_database import drop_database, recreate_database  # noqa: E402

DB_NAME = "joliba_bench_worklist"
CLAIM_LINK = re.compile(rb'formaction="/worklist/(\d+)/claim/"')


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return round(ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo), 1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- The database -------------------------------------------------------------------------------


def bench_database_url() -> str:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    if not base.startswith("postgres"):
        sys.exit("worklist_load needs PostgreSQL: set DATABASE_URL=postgres://user@host:port/any")
    return urlparse(base)._replace(path="/" + DB_NAME).geturl()


def populate(n_cases: int, n_clients: int) -> dict:
    """Migrate, then make the sites, the radiologists (one per client) with their sessions, the
    open backlog and some closed history."""
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)  # DEBUG off: served from the manifest

    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from accounts.models import Site, User, read_everything
    from tests.worklist_data import Spec, make_cases, random_specs

    sites = [Site.objects.create(code=f"site{i}", name=f"Hôpital {i}", region="Mali") for i in range(8)]
    doctors = [
        User.objects.create_user(username=f"dr{i}", password=None, role="radiologist", first_name=f"Dr{i}")
        for i in range(n_clients)
    ]
    for doctor in doctors:  # without a reading profile a radiologist reads nothing
        read_everything(doctor)
    now = timezone.now()
    t = time.perf_counter()
    for start in range(0, n_cases, 5000):
        chunk = random_specs(min(5000, n_cases - start), seed=start, sites=sites, radiologists=doctors)
        make_cases(chunk, now=now)
    closed = [Spec(status="reported", minutes_ago=3000 + i, site=sites[i % 8]) for i in range(n_cases // 2)]
    make_cases(closed, now=now)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # as autovacuum leaves a live database
    made_s = time.perf_counter() - t
    from tests.helpers import login_verified

    sessions = []
    for doctor in doctors:  # signed in as with password and TOTP code (the second factor is on)
        client = Client()
        login_verified(client, doctor)
        sessions.append(client.cookies["sessionid"].value)
    return {"sessions": sessions, "made_s": round(made_s, 1), "doctors": [d.pk for d in doctors]}


# --- The app server -----------------------------------------------------------------------------


def start_gunicorn(url: str, port: int, threads: int, workers: int, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DEBUG": "0",
        "PYTHONPATH": str(REPO / "platform"),
        "DJANGO_SETTINGS_MODULE": "joliba.settings",
    }
    command = [
        str(Path(sys.executable).parent / "gunicorn"), "joliba.wsgi", "-k", "gthread",
        "--threads", str(threads), "-w", str(workers), "-b", f"127.0.0.1:{port}",
        "--chdir", str(REPO / "platform"), "--keep-alive", "30", "--access-logfile", "-",
    ]  # fmt: skip
    with log.open("wb") as out:
        server = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/accounts/login/")
            if conn.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.3)
    server.kill()
    sys.exit(f"gunicorn did not start: {log.read_text()[-2000:]}")


# --- The clients ----------------------------------------------------------------------------------


class Radiologist(threading.Thread):
    def __init__(self, port: int, session: str, deadline: float, think: float, seed: int) -> None:
        super().__init__(daemon=True)
        self.port, self.deadline, self.think = port, deadline, think
        self.csrf = secrets.token_hex(16)  # a CSRF secret of our own, sent as cookie and field
        self.cookie = f"sessionid={session}; csrftoken={self.csrf}"
        self.rng = random.Random(seed)
        self.times: dict[str, list[float]] = defaultdict(list)
        self.claimed: list[int] = []  # claims the server said were ours
        self.refused = 0
        self.errors: list[str] = []
        self.not_modified = 0
        self.bytes_refresh: list[int] = []
        self.shown: list[int] = []
        self.etag = ""
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def request(self, kind: str, method: str, path: str, body: str | None = None, headers=None):
        headers = {"Cookie": self.cookie, "Accept-Encoding": "gzip", **(headers or {})}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        t = time.perf_counter()
        for attempt in (1, 2):  # a kept-alive connection the server closed: reconnect once
            try:
                self.conn.request(method, path, body=body, headers=headers)
                answer = self.conn.getresponse()
                data = answer.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                if attempt == 2:
                    raise
        self.times[kind].append((time.perf_counter() - t) * 1000)
        if answer.getheader("Content-Encoding") == "gzip":
            data = gzip.decompress(data)
        return answer, data

    def open_worklist(self) -> None:
        r = self.rng.random()
        query = "" if r < 0.7 else f"?page={self.rng.randint(2, 3)}" if r < 0.85 else "?priority=stat"
        answer, data = self.request("worklist", "GET", "/worklist/" + query)
        if answer.status != 200:
            self.errors.append(f"worklist {answer.status}")
            return
        if not query:
            self.shown = [int(pk) for pk in CLAIM_LINK.findall(data)][:5]

    def refresh(self) -> None:
        answer, data = self.request("refresh", "GET", "/worklist/rows/", headers={"If-None-Match": self.etag})
        if answer.status == 304:
            self.not_modified += 1
        elif answer.status == 200:
            self.etag = answer.getheader("ETag", "")
            self.bytes_refresh.append(int(answer.getheader("Content-Length") or len(data)))
        else:
            self.errors.append(f"refresh {answer.status}")

    def claim(self) -> None:
        if not self.shown:
            return self.open_worklist()
        pk = self.rng.choice(self.shown)
        body = f"csrfmiddlewaretoken={self.csrf}"
        answer, _ = self.request("claim", "POST", f"/worklist/{pk}/claim/", body)
        where = answer.getheader("Location", "")
        if answer.status == 302 and where.endswith(f"/worklist/{pk}/read/"):
            self.claimed.append(pk)
            # Read it a moment, then put it back, so the queue keeps moving.
            self.pause()
            answer, _ = self.request("release", "POST", f"/worklist/{pk}/release/", body)
            if answer.status != 302:
                self.errors.append(f"release {answer.status}")
        elif answer.status == 302:
            self.refused += 1  # taken by someone else in between: the page says so
        else:
            self.errors.append(f"claim {answer.status}")
        self.shown = []

    def pause(self) -> None:
        if self.think:
            time.sleep(self.rng.uniform(0.5, 1.5) * self.think)

    def run(self) -> None:
        self.pause()
        while time.monotonic() < self.deadline:
            r = self.rng.random()
            try:
                if r < 0.6:
                    self.open_worklist()
                elif r < 0.85:
                    self.refresh()
                else:
                    self.claim()
            except Exception as exc:  # noqa: BLE001 (a benchmark reports every failure, it never stops)
                self.errors.append(f"{type(exc).__name__}: {exc}")
            self.pause()


# --- Checks and the peer ----------------------------------------------------------------------------


def check_claims(clients: list[Radiologist], after_event: int) -> dict:
    """From the database: no claim of a study someone held; holders as the last claim says; the
    claims the clients were told they won are exactly the claim events recorded."""
    from studies.models import Status, Study, StudyEvent

    moves = StudyEvent.objects.filter(
        pk__gt=after_event, transition__in=("claim", "release", "reassign", "return", "sign")
    )
    by_study: dict[int, list] = defaultdict(list)
    for e in moves.order_by("at", "pk").values("study_id", "transition", "assignee_id", "actor_id"):
        by_study[e["study_id"]].append(e)
    double, inconsistent = 0, 0
    for study_id, events in by_study.items():
        before = StudyEvent.objects.filter(study_id=study_id, pk__lte=after_event)
        first = before.order_by("-at", "-pk").first()
        holder = first.assignee_id if first and first.to_status == Status.IN_READING else None
        for e in events:
            if e["transition"] == "claim":
                if holder is not None:
                    double += 1
                holder = e["assignee_id"]
            elif e["transition"] == "reassign":
                holder = e["assignee_id"]
            else:
                holder = None
        study = Study.objects.get(pk=study_id)
        if (study.status == Status.IN_READING) != (holder is not None) or (
            holder is not None and study.assigned_to_id != holder
        ):
            inconsistent += 1
    won = Counter(pk for c in clients for pk in c.claimed)
    recorded = Counter(moves.filter(transition="claim").values_list("study_id", flat=True))
    return {
        "double_claims": double,
        "inconsistent_holders": inconsistent,
        "claims_won": won.total(),
        "claim_events": recorded.total(),
        "claims_lost_or_invented": (won - recorded).total() + (recorded - won).total(),
    }


def time_peer(doctor_pk: int, runs: int) -> dict:
    """The same request, the old way and the new: the ranked page (SQL) against every open
    case loaded and ranked in Python (what the worklist did before)."""
    from accounts.models import User
    from worklist.selectors import worklist_page, worklist_ranked_in_python

    user = User.objects.get(pk=doctor_pk)

    def timed(fn) -> float:
        samples = []
        for _ in range(runs):
            t = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - t) * 1000)
        return round(statistics.median(samples), 1)

    from django.conf import settings

    cached = timed(lambda: worklist_page(user))  # the order shared between requests, as served
    settings.WORKLIST_RANK_CACHE_SECONDS = 0  # the ranking itself, every time
    sql = timed(lambda: worklist_page(user))
    python = timed(lambda: worklist_ranked_in_python(user)[:50])
    return {"name": "python_ranking (ranking.order_cases over all open cases)", "sql_page_ms": sql,
            "sql_page_order_cached_ms": cached, "python_ranking_ms": python,
            "ratio": round(python / sql, 1) if sql else None}  # fmt: skip


# --- Main -------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 cases, 20 clients, 30 s")
    parser.add_argument("--cases", type=int)
    parser.add_argument("--clients", type=int)
    parser.add_argument("--duration", type=float)
    parser.add_argument(
        "--think", type=float, default=5.0, help="mean seconds between a client's requests (0: closed loop)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database afterwards")
    parser.add_argument("--threads", type=int, default=8, help="gunicorn threads per worker")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    cases = args.cases or (1000 if args.quick else 10_000)
    n_clients = args.clients or (20 if args.quick else 50)
    duration = args.duration or (30.0 if args.quick else 60.0)

    url = bench_database_url()
    recreate_database(url)
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "joliba.settings"
    os.environ.setdefault("DEBUG", "0")
    made = populate(cases, n_clients)

    from django.db import connections

    from studies.models import Study, StudyEvent
    from worklist.selectors import WORKLIST_STATUSES

    open_cases = Study.objects.filter(status__in=WORKLIST_STATUSES).count()
    connections.close_all()
    port = free_port()
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"worklist_load_gunicorn_{port}.log"
    server = start_gunicorn(url, port, args.threads, args.workers, log)
    try:
        # One radiologist alone first: what a page costs when nobody else is asking.
        alone = Radiologist(port, made["sessions"][0], time.monotonic() + 3600, 0.0, seed=99)
        for _ in range(15):
            alone.open_worklist()
        alone_ms = alone.times["worklist"][5:]
        load_before = os.getloadavg()
        last_event = StudyEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        deadline = time.monotonic() + duration
        clients = [
            Radiologist(port, session, deadline, args.think, seed=i)
            for i, session in enumerate(made["sessions"])
        ]
        t0 = time.monotonic()
        for c in clients:
            c.start()
        for c in clients:
            c.join(timeout=duration + 120)
        elapsed = time.monotonic() - t0
        load_after = os.getloadavg()
        checks = check_claims(clients, last_event)
        peer = time_peer(made["doctors"][0], runs=5)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        connections.close_all()
        if not args.keep:
            drop_database(url)

    times: dict[str, list[float]] = defaultdict(list)
    for c in clients:
        for kind, values in c.times.items():
            times[kind] += values
    errors = [e for c in clients for e in c.errors]
    total = sum(len(v) for v in times.values())
    result: dict = {
        "cases": open_cases,
        "closed_cases": cases // 2,
        "clients": n_clients,
        "duration_s": round(elapsed, 1),
        "think_s": args.think,
        "server": f"gunicorn gthread, {args.workers} workers x {args.threads} threads",
        "requests": total,
        "requests_per_s": round(total / elapsed, 1),
        "worklist_alone_p50_ms": percentile(alone_ms, 50),
        "worklist_alone_p95_ms": percentile(alone_ms, 95),
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
    }
    for kind in ("worklist", "refresh", "claim", "release"):
        values = times.get(kind, [])
        result[f"{kind}_requests"] = len(values)
        for q in (50, 95, 99):
            result[f"{kind}_p{q}_ms"] = percentile(values, q)
    refresh_bytes = [b for c in clients for b in c.bytes_refresh]
    result["refresh_304"] = sum(c.not_modified for c in clients)
    result["refresh_max_bytes"] = max(refresh_bytes) if refresh_bytes else None
    result["claims_refused_taken"] = sum(c.refused for c in clients)
    result.update(checks)
    result["peer"] = peer
    result["loadavg_before"] = [round(x, 2) for x in load_before]
    result["loadavg_after"] = [round(x, 2) for x in load_after]
    result["cpus"] = os.cpu_count()
    result["setup_s"] = made["made_s"]
    result["target_worklist_p95_ms"] = 150
    result["meets_target"] = bool(result["worklist_p95_ms"] is not None and result["worklist_p95_ms"] <= 150)
    print(
        f"worklist_load: {open_cases} open cases, {n_clients} clients x {elapsed:.0f} s "
        f"(think {args.think} s), "
        f"{result['requests_per_s']} req/s; alone p50 {result['worklist_alone_p50_ms']} ms; "
        f"worklist p50/p95/p99 {result['worklist_p50_ms']}/"
        f"{result['worklist_p95_ms']}/{result['worklist_p99_ms']} ms; claim p95 {result['claim_p95_ms']} ms; "
        f"double claims {checks['double_claims']}; peer (Python ranking) {peer['python_ranking_ms']} ms vs "
        f"SQL {peer['sql_page_ms']} ms (x{peer['ratio']}); load {load_after[0]:.2f} on {os.cpu_count()} cpus"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
