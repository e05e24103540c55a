"""/metrics: who may read it, and the platform's figures against data made for the purpose
(docs/operations.md#metrics)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import delete_test_queues
from tests.worklist_data import Spec, make_cases

pytestmark = pytest.mark.django_db


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of an exposition (the official parser: it must parse)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def scrape(client, **extra) -> str:
    answer = client.get("/metrics", **extra)
    assert answer.status_code == 200, answer.status_code
    assert answer["Content-Type"].startswith("text/plain")
    return answer.content.decode()


def test_it_answers_loopback_and_the_token_and_nobody_else(client, settings):
    settings.METRICS_TOKEN = "s3cret-scraper-token"
    assert client.get("/metrics").status_code == 200  # the test client is 127.0.0.1
    assert client.get("/metrics", REMOTE_ADDR="192.168.1.20").status_code == 404  # the LAN: not by default
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 404  # through nginx
    through_nginx = {"HTTP_X_FORWARDED_FOR": "203.0.113.7", "REMOTE_ADDR": "172.18.0.5"}
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong", **through_nginx).status_code == 404
    ok = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scraper-token", **through_nginx)
    assert ok.status_code == 200
    settings.METRICS_ALLOWED_NETWORKS = []
    assert client.get("/metrics").status_code == 404


def test_the_platform_figures_match_the_rows_they_come_from(client, site_a, site_b, radiologist):
    from alerts.models import Alert
    from ingest.models import DailyUsage
    from preread.models import PreRead

    now = timezone.now()
    stat_late, stat_ok, urgent_late, routine_ok, _reported = make_cases(
        [
            Spec(priority="stat", minutes_ago=45, urgency=0.3),  # STAT SLA 30 min: late
            Spec(priority="stat", minutes_ago=10),
            Spec(priority="urgent", minutes_ago=200, urgency=0.3, status="received"),  # 120 min: late
            Spec(priority="routine", minutes_ago=100),
            Spec(priority="stat", minutes_ago=600, status="queued"),  # made reported below: not open
        ],
        now=now,
        default_site=site_a,
    )
    _reported.status = "reported"
    _reported.save(update_fields=["status"])
    # Pre-reads done 20 s and 400 s after the study was received (make_cases: received minutes_ago).
    for study, seconds in ((stat_late, 20), (urgent_late, 400)):
        received = study.events.get(to_status="received", from_status="arriving").at
        PreRead.objects.filter(study=study, is_current=True).update(
            finished_at=received + timedelta(seconds=seconds)
        )
    DailyUsage.objects.create(site=site_a, day=now.date() - timedelta(days=1), bytes=5_000_000)
    DailyUsage.objects.create(site=site_a, day=now.date(), bytes=1_500_000)
    for seconds, via in ((45, "sms"), (700, "link")):
        sent = now - timedelta(hours=1)
        Alert.objects.create(
            kind="ai_critical", category="critical", study=stat_late, chain=f"c-{seconds}",
            recipient=radiologist, address="+22370000001", channel="sms", dedupe_key=uuid.uuid4().hex,
            next_attempt_at=sent,
            status="sent", sent_at=sent, acked_at=sent + timedelta(seconds=seconds), ack_via=via,
        )  # fmt: skip

    got = samples(scrape(client))
    assert got[("joliba_sla_breaches", (("priority", "stat"),))] == 1
    assert got[("joliba_sla_breaches", (("priority", "urgent"),))] == 1
    assert got[("joliba_sla_breaches", (("priority", "routine"),))] == 0
    assert got[("joliba_site_received_bytes_total", (("site", "kayes"),))] == 6_500_000
    assert got[("joliba_site_received_bytes_total", (("site", "sikasso"),))] == 0
    scored = (("status", "scored"),)
    assert got[("joliba_preread_latency_seconds_count", scored)] == 2
    assert got[("joliba_preread_latency_seconds_sum", scored)] == pytest.approx(420)
    assert got[("joliba_preread_latency_seconds_bucket", (("le", "30.0"), *scored))] == 1
    assert got[("joliba_preread_latency_seconds_bucket", (("le", "300.0"), *scored))] == 1
    assert got[("joliba_preread_latency_seconds_bucket", (("le", "600.0"), *scored))] == 2
    sms = (("category", "critical"), ("channel", "sms"))
    assert got[("joliba_alert_ack_seconds_count", sms)] == 2
    assert got[("joliba_alert_ack_seconds_bucket", (*sms[:1], sms[1], ("le", "60.0")))] == 1
    assert got[("joliba_alert_ack_seconds_sum", sms)] == pytest.approx(745)
    assert got[("joliba_studies", (("status", "queued"),))] == 3
    assert got[("joliba_studies", (("status", "reported"),))] == 1
    for part in ("preread", "alerts", "bytes", "sla", "studies", "broker"):
        assert got[("joliba_metrics_up", (("part", part),))] == 1, part
    # django-prometheus: requests counted (this process's registry).
    assert any(name.startswith("django_http_requests_total_by_method") for name, _ in got)
    assert got[("joliba_orthanc_metrics_up", ())] == 0  # no archive in this test (a closed port)


def test_queue_depths_come_from_the_broker(client, settings):
    from joliba.celery import app

    if not settings.CELERY_BROKER_URL.startswith(("redis://", "amqp://")):
        pytest.skip("needs the machine's RabbitMQ or Redis")
    queue = f"joliba-metrics-{uuid.uuid4().hex[:8]}"
    settings.METRICS_EXTRA_QUEUES = [queue]
    try:
        for _ in range(3):
            app.send_task("health.tasks.beat_tick", queue=queue)
        got = samples(scrape(client))
        assert got[("joliba_queue_messages", (("queue", queue),))] == 3
        assert (("joliba_queue_messages", (("queue", settings.CELERY_TASK_DEFAULT_QUEUE),))) in got
    finally:
        delete_test_queues([queue])


def test_a_broker_that_is_down_leaves_the_other_figures(client, settings):
    settings.CELERY_BROKER_URL = "amqp://guest:guest@127.0.0.1:9//"  # the discard port: refused
    got = samples(scrape(client))
    assert got[("joliba_metrics_up", (("part", "broker"),))] == 0
    assert got[("joliba_metrics_up", (("part", "sla"),))] == 1


@pytest.mark.orthanc
def test_orthancs_own_metrics_are_appended(client):
    text = scrape(client)
    got = samples(text)  # the whole answer still parses
    assert got[("joliba_orthanc_metrics_up", ())] == 1
    assert any(name.startswith("orthanc_") for name, _ in got), text[-2000:]
