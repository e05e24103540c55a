"""Sessions: idle expiry (real seconds, a short age), the worklist's own refreshes keep nobody
signed in, an absolute maximum age; logout everywhere ends the user's other sessions (and is on
the record); a password change ends the others and keeps this one; Django's password validators
refuse a password equal to the user name."""

from __future__ import annotations

import inspect
import time

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from audit.api import record
from tests.auth_support import signed_in_user_id
from tests.helpers import login_verified

pytestmark = pytest.mark.django_db


def _signed_in(client) -> bool:
    return client.get(reverse("account")).status_code == 200


def test_an_idle_session_ends(client, settings, radiologist):
    settings.SESSION_COOKIE_AGE = 2
    login_verified(client, radiologist)
    assert _signed_in(client)
    time.sleep(2.5)
    answer = client.get(reverse("worklist"))
    assert answer.status_code == 302 and answer["Location"].startswith(reverse("login"))
    assert signed_in_user_id(client) is None


def test_working_keeps_the_session_and_the_worklist_refresh_does_not(client, settings, radiologist):
    settings.SESSION_COOKIE_AGE = 2
    login_verified(client, radiologist)
    for _ in range(5):  # 4 s of work, never 2 s idle
        time.sleep(0.8)
        assert _signed_in(client)
    for _ in range(4):  # the page left open: only its background refresh asks
        time.sleep(0.8)
        client.get(reverse("worklist_rows"))
    assert not _signed_in(client)


def test_no_session_outlives_the_maximum_age(client, settings, radiologist):
    settings.SESSION_COOKIE_AGE = 60
    settings.JOLIBA_SESSION_MAX_HOURS = 2 / 3600  # 2 s
    login_verified(client, radiologist)
    assert _signed_in(client)
    time.sleep(1.2)
    assert _signed_in(client)
    time.sleep(1.2)
    answer = client.get(reverse("account"))
    assert answer.status_code == 302 and "expired=1" in answer["Location"]
    assert answer["Clear-Site-Data"] == '"cache", "storage"'  # the images seen leave the browser too


def test_the_expired_session_login_page_says_why(client, settings, radiologist):
    page = client.get(reverse("login") + "?expired=1").content.decode()
    assert "sans activité" in page


def test_logout_everywhere_ends_every_session_of_the_user(client, radiologist, radiologist_2, monkeypatch):
    calls = []

    def spy(action, **kw):  # what accounts announces to the audit trail, sign-ins and sign-outs left out
        inspect.signature(record).bind(action, **kw)  # what the real one would accept
        if action.startswith("session."):
            calls.append((action, kw.get("obj")))

    monkeypatch.setattr("audit.receivers.record", spy)
    phone, colleague = Client(), Client()
    login_verified(client, radiologist)
    login_verified(phone, radiologist)
    login_verified(colleague, radiologist_2)
    assert _signed_in(phone)
    page = client.get(reverse("account")).content.decode()
    assert "Me déconnecter partout" in page
    answer = client.post(reverse("logout_everywhere"))
    assert answer.status_code == 302 and answer["Clear-Site-Data"] == '"cache", "storage"'
    assert not _signed_in(client) and not _signed_in(phone)
    assert _signed_in(colleague)  # someone else's sessions are theirs
    assert calls == [("session.logout_everywhere", radiologist)]
    assert "tous vos appareils" in client.get(answer["Location"]).content.decode()
    radiologist.refresh_from_db()
    login_verified(client, radiologist)  # signing in again works
    assert _signed_in(client)


def test_logout_everywhere_is_a_post(client, radiologist):
    login_verified(client, radiologist)
    assert client.get(reverse("logout_everywhere")).status_code == 405


def test_a_password_change_ends_the_other_sessions_and_keeps_this_one(client, radiologist):
    other = Client()
    login_verified(client, radiologist)
    login_verified(other, radiologist)
    answer = client.post(
        reverse("password_change"),
        {
            "old_password": "pw-dr_a",
            "new_password1": "Baobab-de-Kayes-2026",
            "new_password2": "Baobab-de-Kayes-2026",
        },
    )
    assert answer.status_code == 302
    assert _signed_in(client)
    assert not _signed_in(other)


def test_a_password_equal_to_the_user_name_is_refused(client, django_user_model, radiologist):
    user = django_user_model.objects.create_user(username="aminata.traore", role="radiologist")
    with pytest.raises(ValidationError) as refused:
        validate_password("aminata.traore", user)
    assert any(e.code == "password_too_similar" for e in refused.value.error_list)
    for weak, code in (("123456789012", "password_entirely_numeric"), ("azerty", "password_too_short")):
        with pytest.raises(ValidationError) as refused:
            validate_password(weak, user)
        assert code in {e.code for e in refused.value.error_list}
    # Through the page: the password stays the old one.
    login_verified(client, radiologist)
    answer = client.post(
        reverse("password_change"),
        {"old_password": "pw-dr_a", "new_password1": "dr_a", "new_password2": "dr_a"},
    )
    assert answer.status_code == 200
    assert "Le mot de passe est trop semblable au champ" in answer.content.decode()
    radiologist.refresh_from_db()
    assert radiologist.check_password("pw-dr_a")
