"""The alerts outbox on the database: rows written with their event, one per person and channel,
delivered once, escalated from rows, acknowledged by link or SMS reply (Kannel's own tests are in
test_alerts_kannel.py; email through a real SMTP server in test_alerts_email.py)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from alerts import acknowledgement, messages, outbox, service
from alerts.escalation import escalate_overdue
from alerts.gsm import encode_for_sms, segments, transliterate
from alerts.links import ack_token
from alerts.models import Alert, AlertAttempt, Channel, NotificationSettings, SiteAlertSettings, Status
from alerts.quiet import hold_until
from studies import lifecycle
from studies.lifecycle import Transition
from tests.alerts_support import PHONES, alerts_of, critical_preread, new_study, on_call_chain

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _alert_settings(settings, tmp_path):
    settings.ALERTS_SMS_BACKEND = "file"
    settings.ALERTS_SMS_FILE = tmp_path / "sms.txt"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.ALERTS_QUIET_HOURS = ""
    settings.ALERTS_PUBLIC_URL = "https://joliba.example.ml"


@pytest.fixture
def chain(radiologist, radiologist_2, admin_user):
    on_call_chain(radiologist, radiologist_2, admin_user)


def sms_sent(settings) -> list[dict]:
    path = settings.ALERTS_SMS_FILE
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# --- Texts -------------------------------------------------------------------------------------


def test_it_transliterates_only_what_gsm7_lacks():
    assert transliterate("Côte d'Ivoire, fenêtre, élève, à côté, çà, cœur") == (
        "Cote d'Ivoire, fenetre, élève, à coté, cà, coeur"
    )
    assert encode_for_sms("Prêt « à lire »") == ('Pret "à lire"', "gsm7")
    assert encode_for_sms("تنبيه")[1] == "ucs2"  # no GSM-7 spelling: UCS-2, only then
    assert segments("a" * 160) == 1 and segments("a" * 161) == 2 and segments("€" * 80) == 1


@pytest.mark.parametrize("lang", ["fr", "en"])
@pytest.mark.parametrize("kind", sorted(messages.TEXTS))
@pytest.mark.parametrize("step", [0, 2])
def test_every_alert_fits_one_gsm7_sms_in_both_languages(kind, lang, step):
    params = {
        "code": "TOMBOUCTOU-123456",  # the longest case code a site may have
        "modality": "CT",
        "site": "tombouctou",
        "flags": [{"fr": "pneumothorax sous tension", "en": "tension pneumothorax"}] * 3,
        "acr": "significant",
        "reason": {"fr": "Exposition inadaptée (image trop claire ou trop sombre)", "en": "Exposure"},
        "minutes": 12,
        "otp": "123456",
    }
    link = "https://joliba.example.ml/a/3f.k7qx2m9pab/"
    for needs_ack in (True, False):
        text = messages.render(
            kind=kind, language=lang, params=params, link=link, needs_ack=needs_ack, step=step
        )
        assert text.encoding == "gsm7" and segments(text.sms) == 1, (len(text.sms), text.sms)
        assert text.sms.endswith(link)  # the link survives any cut
        if needs_ack:
            assert "OK TOMBOUCTOU-123456" in text.sms


# --- The outbox ----------------------------------------------------------------------------------


def test_a_critical_preread_writes_alerts_in_the_queue_transaction(site_a, chain, radiologist):
    study = new_study(site_a)
    critical_preread(study)
    lifecycle.transition(study, Transition.QUEUE)
    rows = alerts_of(study)
    assert [(a.recipient, a.channel, a.category, a.needs_ack) for a in rows] == [
        (radiologist, Channel.EMAIL, "critical", True),
        (radiologist, Channel.SMS, "critical", True),
    ]
    assert rows[0].event == study.events.last() and rows[1].address == PHONES["dr_a"]
    assert "DIARRA" not in json.dumps(rows[1].params) and "PID-777" not in json.dumps(rows[1].params)


def test_alert_rows_roll_back_with_the_event(site_a, chain):
    study = new_study(site_a)
    critical_preread(study)
    with pytest.raises(RuntimeError), transaction.atomic():
        lifecycle.transition(study, Transition.QUEUE)
        assert alerts_of(study)  # written inside the transaction...
        raise RuntimeError("the caller's transaction fails after the move")
    assert alerts_of(study) == []  # ...and gone with it
    study.refresh_from_db()
    assert study.status == "received"


def test_an_event_never_alerts_one_person_twice_on_one_channel(site_a, chain):
    study = new_study(site_a)
    critical_preread(study)
    lifecycle.transition(study, Transition.QUEUE)
    event = study.events.last()
    from alerts.triggers import ai_critical

    ai_critical(study, event)  # the same event again (a redelivered signal, a bug)
    assert len(alerts_of(study)) == 2


def test_no_flag_no_alert_and_a_stat_study_alerts_once(site_a, chain):
    plain = new_study(site_a)
    lifecycle.transition(plain, Transition.QUEUE)
    assert alerts_of(plain) == []
    stat = new_study(site_a, priority="stat", event=Transition.ARRIVE)
    lifecycle.transition(stat, Transition.RECEIVE)  # complete: not a second arrival
    assert {a.kind for a in alerts_of(stat)} == {"stat_arrived"} and len(alerts_of(stat)) == 2


def test_delivery_records_each_attempt_and_sends_once(site_a, chain, settings):
    study = new_study(site_a)
    critical_preread(study)
    lifecycle.transition(study, Transition.QUEUE)
    sms = alerts_of(study, channel=Channel.SMS)[0]
    assert outbox.deliver(sms.pk) == "sent"
    assert outbox.deliver(sms.pk) == "not_due"  # a redelivered task: nothing more
    sms.refresh_from_db()
    assert sms.status == Status.SENT and sms.escalate_at == sms.sent_at + timedelta(minutes=15)
    [attempt] = sms.attempts_made.all()
    assert attempt.outcome == "accepted" and attempt.gateway_id == f"file-a{attempt.pk}"
    [sent] = sms_sent(settings)
    assert sent["to"] == PHONES["dr_a"] and sent["text"].startswith(
        f"CRITIQUE {study.case_code}: l'IA signale"
    )
    assert "DIARRA" not in sent["text"]


def test_an_interrupted_send_is_resent_only_when_the_gateway_never_reported_it(site_a, chain, settings):
    study = new_study(site_a)
    critical_preread(study)
    lifecycle.transition(study, Transition.QUEUE)
    sms = alerts_of(study, channel=Channel.SMS)[0]
    # A worker claimed it, handed it over and died before recording: the row says "sending".
    past = timezone.now() - timedelta(minutes=5)
    Alert.objects.filter(pk=sms.pk).update(status=Status.SENDING, attempts=1, lease_until=past)
    reported = AlertAttempt.objects.create(alert=sms, started_at=past, backend="kannel")
    outbox.record_delivery_report(reference=f"a{reported.pk}", report_type=8)  # the SMSC took it
    assert outbox.recover_interrupted() == 1
    sms.refresh_from_db()
    assert sms.status == Status.SENT and sms_sent(settings) == []  # not sent again
    # The same with no report at all: it may never have left, so it goes again.
    email = alerts_of(study, channel=Channel.EMAIL)[0]
    Alert.objects.filter(pk=email.pk).update(status=Status.SENDING, attempts=1, lease_until=past)
    AlertAttempt.objects.create(alert=email, started_at=past, backend="email")
    outbox.recover_interrupted()
    email.refresh_from_db()
    assert email.status == Status.PENDING and email.attempts_made.first().outcome == "unknown"
    assert outbox.deliver(email.pk) == "sent"


def test_unacknowledged_alerts_escalate_then_a_phone_task(site_a, chain, radiologist_2, admin_user, settings):
    study = new_study(site_a)
    critical_preread(study)
    lifecycle.transition(study, Transition.QUEUE)
    service.run_due_alerts()
    assert service.run_due_alerts()["escalated"] == 0  # not yet due
    later = timezone.now() + timedelta(minutes=16)
    for expected in (radiologist_2, admin_user):
        assert escalate_overdue(later) == 1
        newest = alerts_of(study)[-1]
        assert newest.recipient == expected and newest.step >= 1
        service.run_due_alerts()
        later += timedelta(minutes=16)
    assert outbox_phone_tasks(study) == []
    escalate_overdue(later)
    [task] = outbox_phone_tasks(study)
    assert task.address == PHONES["dr_a"]
    texts = [s["text"] for s in sms_sent(settings)]
    assert len(texts) == 3 and texts[1].startswith("RELANCE CRITIQUE")


def outbox_phone_tasks(study):
    return alerts_of(study, channel=Channel.PHONE)


def test_the_link_acknowledges_on_post_only_and_stops_the_chain(site_a, chain, client, radiologist):
    study = new_study(site_a)
    critical_preread(study)
    lifecycle.transition(study, Transition.QUEUE)
    service.run_due_alerts()
    sms = alerts_of(study, channel=Channel.SMS)[0]
    url = reverse("alerts:ack", args=[ack_token(sms.pk)])
    page = client.get(url)
    assert page.status_code == 200 and study.case_code in page.content.decode()
    assert "DIARRA" not in page.content.decode()
    assert not Alert.objects.filter(acked_at__isnull=False).exists()  # a link preview acknowledges nothing
    client.post(url)
    sms.refresh_from_db()
    assert sms.acked_by == radiologist and sms.ack_via == "link"
    assert escalate_overdue(timezone.now() + timedelta(hours=2)) == 0
    assert client.get(reverse("alerts:ack", args=[ack_token(sms.pk)[:-1] + "x"])).status_code == 404


def test_an_sms_reply_acknowledges_only_from_the_number_alerted(site_a, chain, client, radiologist):
    study = new_study(site_a)
    critical_preread(study)
    lifecycle.transition(study, Transition.QUEUE)
    service.run_due_alerts()
    code = study.case_code
    incoming = reverse("alerts:kannel_incoming")
    stranger = client.get(incoming, {"from": "+22379999999", "text": f"OK {code}"})
    assert stranger.status_code == 200 and "inconnu" in stranger.content.decode()
    sms = alerts_of(study, channel=Channel.SMS)[0]
    attempt = sms.attempts_made.get()
    client.get(reverse("alerts:kannel_dlr"), {"ref": f"a{attempt.pk}", "type": "1", "smsc_id": "x1"})
    sms.refresh_from_db()
    assert sms.delivered_at and not sms.acked_at  # delivered is not acknowledged
    reply = client.get(incoming, {"from": "0022370000001", "text": f"ok {code.lower()}"})
    sms.refresh_from_db()
    assert sms.acked_by == radiologist and sms.ack_via == "sms" and code in reply.content.decode()
    again = acknowledgement.acknowledge_by_sms(sender=PHONES["dr_a"], text=f"OK {code}")
    assert again[0] == "already"


def test_kannel_callbacks_need_the_shared_token(client, settings):
    settings.ALERTS_CALLBACK_TOKEN = "s3cret"
    assert client.get(reverse("alerts:kannel_incoming"), {"from": "1", "text": "OK X"}).status_code == 403
    assert (
        client.get(reverse("alerts:kannel_dlr"), {"ref": "a1", "type": "1", "token": "s3cret"}).status_code
        == 200
    )


def test_quiet_hours_hold_routine_alerts_never_critical(settings):
    settings.ALERTS_QUIET_HOURS = "21:00-07:00"
    night = timezone.make_aware(timezone.datetime(2026, 3, 2, 23, 30))
    held = hold_until((None, None), night)
    assert timezone.localtime(held).hour == 7 and held > night
    day = timezone.make_aware(timezone.datetime(2026, 3, 2, 10, 0))
    assert hold_until((None, None), day) == day
    own = (timezone.datetime(2026, 1, 1, 12).time(), timezone.datetime(2026, 1, 1, 14).time())
    assert timezone.localtime(hold_until(own, day.replace(hour=13))).hour == 14


def test_report_ready_goes_to_the_sender_unless_switched_off(site_a, tech_a, radiologist):
    tech_a.email = "tech@example.org"
    tech_a.save()

    def signed_study():
        study = new_study(site_a, uploader=tech_a)
        lifecycle.transition(study, Transition.CLAIM, actor=radiologist)
        return lifecycle.transition(study, Transition.SIGN, actor=radiologist)

    on = signed_study()
    assert [(a.kind, a.recipient, a.category) for a in alerts_of(on)] == [("report_ready", tech_a, "routine")]
    NotificationSettings.objects.create(user=tech_a, report_ready=False)
    assert alerts_of(signed_study()) == []
    NotificationSettings.objects.filter(user=tech_a).update(report_ready=True)
    SiteAlertSettings.objects.create(site=site_a, report_ready=False)
    assert alerts_of(signed_study()) == []


def test_a_returned_study_tells_its_site(site_a, tech_a, radiologist):
    site_a.phone, site_a.email = "21 00 00 00", "radio@kayes.example.org"
    site_a.save()
    tech_a.email = "tech@example.org"
    tech_a.save()
    study = new_study(site_a, uploader=tech_a)
    lifecycle.transition(study, Transition.CLAIM, actor=radiologist)
    lifecycle.transition(study, Transition.RETURN, actor=radiologist, reason_code="motion")
    rows = alerts_of(study)
    assert {(a.recipient_role, a.channel, a.address) for a in rows} == {
        ("technician", "email", "tech@example.org"),
        ("site", "sms", PHONES["site"]),
        ("site", "email", "radio@kayes.example.org"),
    }
    text = outbox.render_alert(rows[0])
    assert "Flou de mouvement" in text.lead and not rows[0].needs_ack


def test_a_case_near_its_sla_with_nobody_on_it_alerts_the_on_call(site_a, chain, radiologist, settings):
    settings.WORKLIST_SLA_MINUTES = {"urgent": 20}
    settings.ALERTS_SLA_WARNING_MINUTES = 15
    study = new_study(site_a, priority="urgent")
    lifecycle.transition(study, Transition.QUEUE)
    assert service.run_due_alerts()["sla"] == 0  # 20 minutes left
    soon = timezone.now() + timedelta(minutes=6)
    from alerts.sla import check_sla

    assert check_sla(soon) == 1 and check_sla(soon) == 0
    [email, sms] = alerts_of(study)
    assert sms.kind == "sla_breach" and sms.recipient == radiologist and sms.params["minutes"] in (13, 14)
    held = new_study(site_a, priority="urgent")
    lifecycle.transition(held, Transition.CLAIM, actor=radiologist)
    assert check_sla(soon + timedelta(hours=1)) == 0  # someone is on it


def test_a_phone_number_is_used_once_confirmed_by_sms(client, radiologist, settings):
    client.force_login(radiologist)
    url = reverse("alerts:settings")
    client.post(url, {"action": "phone", "phone": "70 00 00 05"})
    prefs = NotificationSettings.objects.get(user=radiologist)
    assert prefs.phone == "+22370000005" and prefs.phone_confirmed_at is None
    confirmation = Alert.objects.get(kind="phone_confirmation")
    outbox.deliver(confirmation.pk)
    [sent] = sms_sent(settings)
    otp = sent["text"].split()[-1].rstrip(".")
    assert sent["to"] == "+22370000005" and otp.isdigit()
    assert (
        client.post(url, {"action": "confirm", "code": "000000" if otp != "000000" else "111111"}).status_code
        == 200
    )
    client.post(url, {"action": "confirm", "code": otp})
    prefs.refresh_from_db()
    assert prefs.phone_confirmed_at is not None


def test_the_board_and_duty_pages_are_for_admins_and_people_on_duty(
    client, tech_a, admin_user, site_a, chain
):
    client.force_login(tech_a)
    assert client.get(reverse("alerts:board")).status_code == 404
    assert client.get(reverse("alerts:duty")).status_code == 404
    client.force_login(admin_user)
    study = new_study(site_a)
    critical_preread(study)
    lifecycle.transition(study, Transition.QUEUE)
    sms = alerts_of(study, channel=Channel.SMS)[0]
    Alert.objects.filter(pk=sms.pk).update(status=Status.FAILED, reason_code="gateway_refused")
    page = client.get(reverse("alerts:board")).content.decode()
    assert study.case_code in page and "gateway_refused" in page
    client.post(reverse("alerts:resend", args=[sms.pk]))
    sms.refresh_from_db()
    assert sms.status == Status.PENDING and sms.reason_code == "resent"


def test_ok_replies_are_read_the_way_people_type_them():
    for text, code in [
        ("OK J7F3", "J7F3"),
        ("ok kayes-1234", "KAYES-1234"),
        ("OK: KAYES 1234.", "KAYES-1234"),
    ]:
        match = acknowledgement.OK_REPLY.match(text)
        assert match and acknowledgement.re.sub(r"[\s\-]+", "-", match.group(1).upper()) == code
    assert acknowledgement.OK_REPLY.match("Bonjour, OK pour demain") is None


@pytest.mark.parametrize(("acr", "category"), [("immediate", "critical"), ("significant", "significant")])
def test_a_report_signed_with_a_critical_finding_alerts_the_site_by_acr_category(
    site_a, radiologist, admin_user, radiologist_2, acr, category
):
    from reports.services import save_report

    on_call_chain(radiologist, radiologist_2, admin_user)
    site_a.phone = "21 00 00 00"
    site_a.save()
    study = new_study(site_a)
    lifecycle.transition(study, Transition.CLAIM, actor=radiologist)
    save_report(study=study, author=radiologist, conclusion="Pneumothorax", critical_category=acr, sign=True)
    [alert] = alerts_of(study, kind="critical_finding")
    assert (alert.address, alert.category, alert.needs_ack) == (PHONES["site"], category, True)
    assert escalate_overdue(timezone.now() + timedelta(days=3)) == 0  # not sent yet: no deadline
    outbox.deliver(alert.pk)
    escalate_overdue(timezone.now() + timedelta(days=3))
    assert alerts_of(study, kind="critical_finding")[-1].recipient == admin_user  # then the coordinator


def test_an_amendment_that_adds_a_critical_finding_alerts_the_site(
    site_a, radiologist, admin_user, radiologist_2
):
    from reports.models import VersionKind
    from reports.services import amend_report, save_report

    on_call_chain(radiologist, radiologist_2, admin_user)
    study = new_study(site_a)
    lifecycle.transition(study, Transition.CLAIM, actor=radiologist)
    save_report(study=study, author=radiologist, conclusion="RAS", sign=True)
    assert alerts_of(study, kind="critical_finding") == []
    amend_report(
        study=study,
        author=radiologist,
        kind=VersionKind.AMENDMENT,
        reason="Relecture : pneumothorax vu",
        sections={"conclusion": "Pneumothorax"},
        critical_category="immediate",
    )
    raised = alerts_of(study, kind="critical_finding")
    assert raised and {(a.category, a.needs_ack) for a in raised} == {("critical", True)}


def test_the_study_page_tag_shows_the_chain(site_a, chain, radiologist, rf, tech_a, admin_user):
    from django.template import Context, Template

    study = new_study(site_a)
    critical_preread(study)
    lifecycle.transition(study, Transition.QUEUE)
    service.run_due_alerts()
    sms = alerts_of(study, channel=Channel.SMS)[0]
    acknowledgement.acknowledge(sms, by=radiologist, via="sms")
    template = Template("{% load alerts_tags %}{% alert_chain study %}")
    for_tech = template.render(Context({"study": study, "user": tech_a}))
    assert "Dr_A" in for_tech and "Réponse SMS" in for_tech and PHONES["dr_a"] not in for_tech
    assert PHONES["dr_a"] in template.render(Context({"study": study, "user": admin_user}))


def test_routine_alerts_wait_out_quiet_hours_critical_ones_do_not(
    site_a, tech_a, radiologist, chain, settings
):  # noqa: E501
    now = timezone.localtime()
    start, end = (now - timedelta(hours=1)).strftime("%H:%M"), (now + timedelta(hours=1)).strftime("%H:%M")
    settings.ALERTS_QUIET_HOURS = f"{start}-{end}"  # quiet now
    tech_a.phone = "+22370000077"
    tech_a.save()
    study = new_study(site_a, uploader=tech_a)
    lifecycle.transition(study, Transition.CLAIM, actor=radiologist)
    lifecycle.transition(study, Transition.SIGN, actor=radiologist)
    [ready] = alerts_of(study)
    assert ready.next_attempt_at > timezone.now() + timedelta(minutes=50)
    assert outbox.deliver(ready.pk) == "not_due" and service.run_due_alerts()["drain"] == {}
    urgent = new_study(site_a)
    critical_preread(urgent)
    lifecycle.transition(urgent, Transition.QUEUE)
    assert all(a.next_attempt_at <= timezone.now() for a in alerts_of(urgent))


def test_with_nobody_on_call_the_admins_are_told(site_a, admin_user):
    admin_user.phone = "+22370000009"
    admin_user.save()
    study = new_study(site_a)
    critical_preread(study)
    lifecycle.transition(study, Transition.QUEUE)
    assert [(a.recipient, a.recipient_role) for a in alerts_of(study)] == [(admin_user, "coordinator")]


def test_a_critical_alert_nobody_on_the_chain_can_receive_is_on_the_board(
    client, site_a, chain, radiologist, radiologist_2, admin_user
):
    """Everyone on call lost their number and email (an unreachable person is skipped, the next
    one told: test_with_nobody_on_call_the_admins_are_told). The alert is not silently unsent: a
    failed row says why, on the board, with no resend button (there is nobody to send it to)."""
    for user in (radiologist, radiologist_2, admin_user):
        user.phone, user.email = "", ""
        user.save()
    study = new_study(site_a)
    critical_preread(study)
    lifecycle.transition(study, Transition.QUEUE)
    [row] = alerts_of(study)
    assert (row.recipient, row.channel, row.status, row.reason_code, row.category) == (
        None,
        Channel.NONE,
        Status.FAILED,
        "no_recipient",
        "critical",
    )
    assert service.resend(row) is False
    client.force_login(admin_user)
    page = client.get(reverse("alerts:board")).content.decode()
    assert study.case_code in page and "no_recipient" in page and "Aucun moyen de joindre" in page
    assert reverse("alerts:resend", args=[row.pk]) not in page
    # The escalation pass looks for someone further on, finds nobody, and writes nothing twice.
    assert escalate_overdue(timezone.now()) == 1
    assert escalate_overdue(timezone.now()) == 0
    assert alerts_of(study) == [row]
    # Once a number is back on the list, the next urgent case reaches it.
    radiologist.phone = PHONES["dr_a"]
    radiologist.save()
    again = new_study(site_a)
    critical_preread(again)
    lifecycle.transition(again, Transition.QUEUE)
    assert [(a.recipient, a.channel) for a in alerts_of(again)] == [(radiologist, Channel.SMS)]


def test_an_urgent_alert_with_nobody_at_all_to_tell_is_written_as_such(site_a):
    study = new_study(site_a, priority="stat", event=Transition.ARRIVE)
    [row] = alerts_of(study)
    assert (row.kind, row.recipient, row.channel, row.reason_code) == (
        "stat_arrived",
        None,
        Channel.NONE,
        "no_recipient",
    )
    routine = new_study(site_a)
    lifecycle.transition(routine, Transition.QUEUE)
    assert alerts_of(routine) == []  # nothing urgent happened: nothing to record


def test_the_phone_task_is_on_the_duty_page_and_closes_the_chain(
    site_a, chain, client, radiologist_2, admin_user
):
    study = new_study(site_a)
    critical_preread(study)
    lifecycle.transition(study, Transition.QUEUE)
    service.run_due_alerts()
    later = timezone.now()
    for _ in range(3):  # dr_b, the coordinator, then the phone task
        later += timedelta(minutes=16)
        escalate_overdue(later)
        service.run_due_alerts()
    [task] = alerts_of(study, channel=Channel.PHONE)
    client.force_login(radiologist_2)  # on the on-call list: on duty
    page = client.get(reverse("alerts:duty")).content.decode()
    assert f'href="tel:{PHONES["dr_a"]}"' in page and study.case_code in page
    client.post(reverse("alerts:phone_done", args=[task.pk]))
    task.refresh_from_db()
    assert task.status == Status.DONE and task.acked_by == radiologist_2 and task.ack_via == "phone"
    assert study.case_code not in client.get(reverse("alerts:duty")).content.decode()


def test_the_radiologist_on_shift_is_called_first(site_a, chain, radiologist, radiologist_2):
    from assignment.models import Shift

    now = timezone.now()
    Shift.objects.create(
        radiologist=radiologist_2, starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=1)
    )
    from alerts.recipients import on_call_radiologists

    assert on_call_radiologists() == [radiologist_2, radiologist]
    study = new_study(site_a)
    critical_preread(study)
    lifecycle.transition(study, Transition.QUEUE)
    assert {a.recipient for a in alerts_of(study)} == {radiologist_2}


def test_the_quickstarts_demo_chain_receives_a_stat_case(db):
    """The demo users are on call (seed_alerts_demo), so a STAT study tells someone there too."""
    import os

    from django.core.management import call_command

    from accounts.models import Site

    call_command("seed_demo", stdout=open(os.devnull, "w"))
    call_command("seed_alerts_demo")
    study = new_study(Site.objects.get(code="kayes"), priority="stat")
    [first, *_] = alerts_of(study, kind="stat_arrived")
    assert first.recipient.username == "dr.traore" and first.address in (
        "+22370000001",
        "dr.traore@joliba.example",
    )
