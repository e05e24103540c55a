"""Alert emails through Django's SMTP backend to a real SMTP server in the test process (aiosmtpd):
HTML and plain text, French first, English for a recipient who chose it."""

from __future__ import annotations

import email
import email.policy

import pytest
from aiosmtpd.controller import Controller

from alerts import outbox
from alerts.models import Channel, NotificationSettings, Status
from studies import lifecycle
from studies.lifecycle import Transition
from tests.alerts_support import alerts_of, critical_preread, new_study, on_call_chain
from tests.kannel import free_port

pytestmark = pytest.mark.django_db


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.refuse: set[str] = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 Message accepted"


@pytest.fixture
def smtp(settings):
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.ALERTS_SMS_BACKEND = "file"
    settings.ALERTS_QUIET_HOURS = ""
    settings.ALERTS_PUBLIC_URL = "https://joliba.example.ml"
    yield inbox
    controller.stop()


def _parts(message):
    plain = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    return plain, html


def _deliver_emails(study):
    for alert in alerts_of(study, channel=Channel.EMAIL):
        assert outbox.deliver(alert.pk) == "sent"


def test_a_critical_alert_email_is_french_first_with_both_parts(
    smtp, site_a, radiologist, radiologist_2, admin_user
):
    on_call_chain(radiologist, radiologist_2, admin_user)
    study = new_study(site_a)
    critical_preread(study)
    lifecycle.transition(study, Transition.QUEUE)
    _deliver_emails(study)
    [message] = smtp.messages
    code = study.case_code
    assert message["To"] == "dr_a@example.org"
    assert message["Subject"].strip() == f"[Joliba] CRITIQUE {code} : signal de l'IA à vérifier"
    plain, html = _parts(message)
    assert "La pré-lecture IA signale pneumothorax" in plain and f"« OK {code} »" in plain
    assert "https://joliba.example.ml/a/" in plain and 'href="https://joliba.example.ml/a/' in html
    assert 'lang="fr"' in html and "DIARRA" not in plain + html
    sent = alerts_of(study, channel=Channel.EMAIL)[0]
    assert sent.gateway_id == message["Message-ID"] and sent.status == Status.SENT


def test_an_english_speaker_gets_english(smtp, site_a, radiologist, radiologist_2, admin_user):
    on_call_chain(radiologist, radiologist_2, admin_user)
    NotificationSettings.objects.create(user=radiologist, language="en")
    study = new_study(site_a, priority="stat")
    _deliver_emails(study)
    [message] = smtp.messages
    code = study.case_code
    assert message["Subject"].strip() == f"[Joliba] STAT {code}: study to read now"
    plain, html = _parts(message)
    assert f"A STAT CR study is arriving from site kayes: {code}." in plain
    assert f"Acknowledge by replying “OK {code}”" in plain and 'lang="en"' in html
    assert "examen" not in plain


def test_a_refused_address_fails_at_once_and_escalates(smtp, site_a, radiologist, radiologist_2, admin_user):
    on_call_chain(radiologist, radiologist_2, admin_user)
    smtp.refuse.add("dr_a@example.org")
    study = new_study(site_a)
    critical_preread(study)
    lifecycle.transition(study, Transition.QUEUE)
    alert = alerts_of(study, channel=Channel.EMAIL)[0]
    assert outbox.deliver(alert.pk) == "rejected"
    alert.refresh_from_db()
    assert alert.status == Status.FAILED and alert.reason_code == "address_refused"
    assert alert.escalate_at is not None and alert.escalate_at <= alert.failed_at


def test_an_smtp_server_down_is_a_gateway_outage(settings, site_a, radiologist, radiologist_2, admin_user):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nothing listens
    settings.ALERTS_QUIET_HOURS = ""
    on_call_chain(radiologist, radiologist_2, admin_user)
    study = new_study(site_a, priority="stat")
    alert = alerts_of(study, channel=Channel.EMAIL)[0]
    assert outbox.deliver(alert.pk) == "gateway_down"
    alert.refresh_from_db()
    assert alert.status == Status.PENDING and alert.attempts_made.get().error_code == "gateway_down"
    assert outbox.deliver(alert.pk) == "gateway_down" and alert.attempts_made.count() == 1  # waits on it
