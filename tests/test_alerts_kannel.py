"""Alerts through a real SMS gateway: Kannel from Debian's packages with its fake SMSC, a real
Celery worker, the platform's live server taking Kannel's callbacks (delivery reports, replies)."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid

import pytest

from alerts import service
from alerts.models import Alert, AlertAttempt, Channel, GatewayState, Status
from alerts.outbox import render_alert
from studies import lifecycle
from studies.lifecycle import Transition
from tests.alerts_support import PHONES, alerts_of, critical_case, new_study, on_call_chain
from tests.helpers import REPO, database_url, start_worker, stop_worker, wait_for
from tests.kannel import HAVE_KANNEL, WHY_NOT, Kannel

pytestmark = [
    pytest.mark.kannel,
    pytest.mark.worker,
    pytest.mark.skipif(not HAVE_KANNEL, reason=WHY_NOT),
    pytest.mark.django_db(transaction=True),
]

TOKEN = "kannel-callback-token"
ACK_SECONDS = 3.0  # critical alerts escalate after 3 s here (minutes in production)


@pytest.fixture(scope="session")
def kannel(live_server, tmp_path_factory):
    if not HAVE_KANNEL:
        pytest.skip(WHY_NOT)
    gateway = Kannel(
        tmp_path_factory.mktemp("kannel"),
        incoming_url=f"{live_server.url}/alerts/kannel/incoming/?token={TOKEN}",
    )
    gateway.start()
    yield gateway
    gateway.stop()


@pytest.fixture(autouse=True)
def _fresh_phones(kannel):
    kannel.forget()


def alert_env(kannel: Kannel, live_server, queue: str, **extra: str) -> dict[str, str]:
    """Settings of the worker (its environment) and of the test process (the same values)."""
    return {
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "ALERTS_SMS_BACKEND": "kannel",
        "KANNEL_SENDSMS_URL": kannel.sendsms_url,
        "KANNEL_PASSWORD": kannel.password,
        "ALERTS_CALLBACK_URL": live_server.url,
        "ALERTS_PUBLIC_URL": "https://joliba.example.ml",
        "ALERTS_CALLBACK_TOKEN": TOKEN,
        "ALERTS_ACK_MINUTES": json.dumps({"critical": ACK_SECONDS / 60, "urgent": 10, "significant": 60}),
        "ALERTS_RETRY_BASE_SECONDS": "0.2",
        "ALERTS_SEND_LEASE_SECONDS": "4",
        "ALERTS_QUIET_HOURS": "",
        **extra,
    }


def apply_to_settings(settings, env: dict[str, str]) -> None:
    settings.ALERTS_SMS_BACKEND = env["ALERTS_SMS_BACKEND"]
    settings.KANNEL_SENDSMS_URL = env["KANNEL_SENDSMS_URL"]
    settings.KANNEL_PASSWORD = env["KANNEL_PASSWORD"]
    settings.ALERTS_CALLBACK_URL = env["ALERTS_CALLBACK_URL"]
    settings.ALERTS_PUBLIC_URL = env["ALERTS_PUBLIC_URL"]
    settings.ALERTS_CALLBACK_TOKEN = TOKEN
    settings.ALERTS_ACK_MINUTES = json.loads(env["ALERTS_ACK_MINUTES"])
    settings.ALERTS_RETRY_BASE_SECONDS = float(env["ALERTS_RETRY_BASE_SECONDS"])
    settings.ALERTS_SEND_LEASE_SECONDS = float(env["ALERTS_SEND_LEASE_SECONDS"])
    settings.ALERTS_QUIET_HOURS = ""


def spawn_worker(settings, kannel, live_server, tmp_path, **extra: str):
    from joliba.celery import app

    queue = f"joliba-alerts-test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url(settings.DATABASES["default"]),
        "PYTHONPATH": str(REPO / "platform"),
        **alert_env(kannel, live_server, queue, **extra),
    }
    proc = start_worker(queue, env, tmp_path / f"worker-{queue}.log")
    app.conf.task_default_queue = queue  # the test's own tasks go to this worker (restored by conftest)
    apply_to_settings(settings, env)
    return proc


@pytest.fixture
def worker(settings, kannel, live_server, tmp_path):
    proc = spawn_worker(settings, kannel, live_server, tmp_path)
    yield proc
    stop_worker(proc)


@pytest.fixture
def chain(radiologist, radiologist_2, admin_user):
    on_call_chain(radiologist, radiologist_2, admin_user, emails=False)


def tick_until(predicate, timeout: float = 20):
    """Run the periodic pass (as beat would, every 0.3 s here) until predicate() holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        service.run_due_alerts()
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"not within {timeout}s")


def test_a_critical_preread_reaches_the_on_call_phone_and_a_reply_closes_the_loop(
    kannel, worker, site_a, chain, radiologist
):
    study = critical_case(site_a)  # the worker delivers it, no periodic pass needed
    [got] = wait_for(lambda: kannel.received(PHONES["dr_a"]), timeout=20)
    sms = alerts_of(study, channel=Channel.SMS)[0]
    code = study.case_code
    assert got.text == render_alert(sms).sms
    assert got.text.startswith(f"CRITIQUE {code}: l'IA signale pneumothorax (non validé)")
    assert f"OK {code} ou https://joliba.example.ml/a/" in got.text and got.coding == "text"
    assert "DIARRA" not in got.text

    # Kannel's delivery report reaches the platform: delivered, still not acknowledged.
    sms = wait_for(lambda: Alert.objects.filter(pk=sms.pk, delivered_at__isnull=False).first())
    assert sms.acked_at is None and sms.attempts_made.get().dlr_status == 1

    answer = kannel.reply_from_phone(PHONES["dr_a"], f"OK {code}")
    sms.refresh_from_db()
    assert sms.acked_by == radiologist and sms.ack_via == "sms"
    assert answer == f"Joliba: reception de {code} enregistree, merci."
    time.sleep(ACK_SECONDS + 0.5)
    service.run_due_alerts()
    assert kannel.received(PHONES["dr_b"]) == []  # acknowledged: nobody else is woken


def test_no_acknowledgement_escalates_on_time_even_with_the_broker_flushed(
    kannel, worker, site_a, chain, radiologist_2, admin_user
):
    from joliba.celery import app

    study = critical_case(site_a)
    wait_for(lambda: kannel.received(PHONES["dr_a"]), timeout=20)
    first = wait_for(
        lambda: Alert.objects.filter(study=study, channel=Channel.SMS, status=Status.SENT).first()
    )
    app.control.purge()  # the broker loses everything queued: the deadlines are rows

    [second] = tick_until(lambda: kannel.received(PHONES["dr_b"]), timeout=ACK_SECONDS + 10)
    late = second.seen_at - first.sent_at.timestamp()
    assert ACK_SECONDS <= late <= ACK_SECONDS + 4, late
    assert second.text.startswith(f"RELANCE CRITIQUE {study.case_code}")
    [third] = tick_until(lambda: kannel.received(PHONES["admin_a"]), timeout=ACK_SECONDS + 10)
    assert third.seen_at - second.seen_at >= ACK_SECONDS - 0.5
    tick_until(lambda: alerts_of(study, channel=Channel.PHONE), timeout=ACK_SECONDS + 10)
    [task] = alerts_of(study, channel=Channel.PHONE)
    assert task.address == PHONES["dr_a"] and task.status == Status.PENDING
    # The coordinator answers by SMS: the chain is closed, the phone task with it.
    kannel.reply_from_phone(PHONES["admin_a"], f"OK {study.case_code}")
    assert Alert.objects.get(pk=task.pk).status == Status.CANCELLED
    assert {a.acked_by for a in alerts_of(study) if a.acked_at} == {admin_user}


def test_a_worker_killed_after_the_handoff_loses_nothing_and_sends_nothing_twice(
    kannel, settings, live_server, tmp_path, site_a, chain
):
    # This worker sleeps between Kannel's "Accepted" and recording it: the test kills it there.
    proc = spawn_worker(settings, kannel, live_server, tmp_path, ALERTS_FAULT_PAUSE_AFTER_HANDOFF_S="30")
    settings.ALERTS_FAULT_PAUSE_AFTER_HANDOFF_S = 0
    try:
        study = critical_case(site_a)
        wait_for(lambda: kannel.received(PHONES["dr_a"]), timeout=20)
        sms = alerts_of(study, channel=Channel.SMS)[0]
        assert sms.status == Status.SENDING and sms.attempts_made.get().outcome == "in_flight"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        stop_worker(proc)
    survivor = spawn_worker(settings, kannel, live_server, tmp_path)  # the restarted worker
    try:
        sms = tick_until(lambda: Alert.objects.filter(pk=sms.pk, status=Status.SENT).first(), timeout=20)
        time.sleep(1)
        service.run_due_alerts()
    finally:
        stop_worker(survivor)
    assert len(kannel.received(PHONES["dr_a"])) == 1  # the phone got it once
    [attempt] = AlertAttempt.objects.filter(alert=sms)
    assert attempt.outcome == "accepted" and attempt.dlr_status is not None  # known from Kannel's report
    assert sms.escalate_at is not None  # and its acknowledgement deadline runs


def test_alerts_wait_for_a_gateway_that_is_down_then_go_most_urgent_first(
    kannel, worker, site_a, tech_a, chain, radiologist
):
    tech_a.phone = "+22370000077"
    tech_a.save()
    kannel.stop_smsbox()
    try:
        routine = new_study(site_a, uploader=tech_a)
        lifecycle.transition(routine, Transition.CLAIM, actor=radiologist)
        lifecycle.transition(routine, Transition.SIGN, actor=radiologist)  # report ready: routine
        stat = new_study(site_a, priority="stat")  # STAT arrived: urgent
        critical = critical_case(site_a)  # AI critical flag: critical
        tick_until(lambda: GatewayState.objects.filter(channel="sms", down_since__isnull=False).exists())
        for _ in range(5):
            service.run_due_alerts()
            time.sleep(0.3)
        waiting = Alert.objects.filter(channel=Channel.SMS)
        assert {a.status for a in waiting} == {Status.PENDING}
        assert AlertAttempt.objects.filter(outcome="failed", error_code="gateway_down").exists()
    finally:
        kannel.start_smsbox()
    tick_until(lambda: not Alert.objects.filter(channel=Channel.SMS).exclude(status=Status.SENT).exists())
    codes = [s.case_code for s in (critical, stat, routine)]
    got = wait_for(lambda: len(kannel.received()) >= 3 and kannel.received())
    order = [g.text.split(":")[0].split()[-1] for g in got]
    assert order == codes, [g.text for g in got]  # most urgent first, whatever order they were raised in
