"""Password reset: the platform's own French pages, the mail through Django's SMTP backend to a real
SMTP server (aiosmtpd) with a link that works (and that nothing logs), rate limits per address and
per e-mail address; production settings refuse the console, file and in-memory mail backends."""

from __future__ import annotations

import email
import email.policy
import logging
import re

import pytest
from aiosmtpd.controller import Controller
from django.core import mail
from django.test import Client
from django.urls import reverse

from tests.auth_support import post_password, shows_code_step
from tests.kannel import free_port
from tests.settings_child import production_env, run_python

pytestmark = pytest.mark.django_db


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 Message accepted"


@pytest.fixture
def smtp(settings):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    yield inbox
    controller.stop()


@pytest.fixture
def reader(radiologist):
    radiologist.email = "dr.a@chu-bamako.example.ml"
    radiologist.save()
    return radiologist


def test_the_reset_mail_reaches_a_real_smtp_server_in_french_with_a_link_that_works(
    client, smtp, reader, caplog
):
    caplog.set_level(logging.DEBUG)
    form = client.get(reverse("password_reset"))
    assert form.status_code == 200 and "Mot de passe oublié" in form.content.decode()
    assert "Administration de Django" not in form.content.decode()  # not the admin skin
    sent = client.post(reverse("password_reset"), {"email": "dr.a@chu-bamako.example.ml"})
    assert sent.status_code == 302
    assert "Lien envoyé" in client.get(sent["Location"]).content.decode()
    [message] = smtp.messages
    assert message["To"] == "dr.a@chu-bamako.example.ml"
    assert message["Subject"] == "Joliba : choisir un nouveau mot de passe"
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert "Pour choisir un nouveau mot de passe, ouvrez ce lien" in body
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", body).group(1)
    # The token is in no log line of the platform (aiosmtpd, the test's mail server, logs as "mail.log").
    platform_log = [r.getMessage() for r in caplog.records if not r.name.startswith("mail.log")]
    assert platform_log and not [line for line in platform_log if link.split("/")[-2] in line]

    page = client.get(link, follow=True)
    assert page.status_code == 200 and "Nouveau mot de passe" in page.content.decode()
    set_url = page.redirect_chain[-1][0]
    done = client.post(
        set_url, {"new_password1": "Fleuve-Niger-2026!", "new_password2": "Fleuve-Niger-2026!"}, follow=True
    )
    assert "Votre nouveau mot de passe est enregistré" in done.content.decode()
    reader.refresh_from_db()
    assert reader.check_password("Fleuve-Niger-2026!")
    # The reset signs nobody in: the second factor is still asked at the next sign-in.
    assert shows_code_step(post_password(Client(), "dr_a", "Fleuve-Niger-2026!"))
    again = client.get(link, follow=True)  # a link serves once
    assert "n'est plus valable" in again.content.decode()


def test_the_reset_is_rate_limited_per_address_and_per_email(client, settings, reader, radiologist_2):
    settings.PASSWORD_RESET_RATE_PER_EMAIL = "3/h"
    settings.PASSWORD_RESET_RATE_PER_ADDRESS = "10/h"
    attacker = {"REMOTE_ADDR": "198.51.100.7"}
    codes = [
        client.post(reverse("password_reset"), {"email": reader.email}, **attacker).status_code
        for _ in range(30)
    ]
    assert codes[:3] == [302] * 3 and set(codes[3:]) == {429}
    assert len(mail.outbox) == 3  # her mailbox is not flooded
    refused = client.post(reverse("password_reset"), {"email": reader.email}, **attacker)
    assert "Trop de demandes" in refused.content.decode()
    # Per e-mail: from anywhere else too; per address: other e-mails from the attacker's address.
    assert Client().post(reverse("password_reset"), {"email": reader.email}).status_code == 429
    radiologist_2.email = "dr.b@chu-bamako.example.ml"
    radiologist_2.save()
    assert (
        client.post(reverse("password_reset"), {"email": radiologist_2.email}, **attacker).status_code == 429
    )
    assert Client().post(reverse("password_reset"), {"email": radiologist_2.email}).status_code == 302
    # The reset limit locks nobody out: her password still signs her in.
    assert shows_code_step(post_password(Client(), "dr_a", "pw-dr_a"))


def _production_mail_backend(**env: str | None):
    return run_python(
        "from django.conf import settings; print(settings.EMAIL_BACKEND)", production_env(**env)
    )


@pytest.mark.parametrize("backend", ["console", "filebased", "locmem", "dummy"])
def test_production_refuses_a_mail_backend_that_sends_nothing(backend):
    run = _production_mail_backend(EMAIL_BACKEND=f"django.core.mail.backends.{backend}.EmailBackend")
    assert run.returncode != 0
    assert "ImproperlyConfigured" in run.stderr and "Production sends real mail" in run.stderr


def test_production_sends_by_smtp_by_default():
    run = _production_mail_backend(EMAIL_BACKEND=None)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "django.core.mail.backends.smtp.EmailBackend"
