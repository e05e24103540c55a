"""Brute force: 30 wrong passwords then the right one is refused on every way in (the login page,
the admin, the token endpoint), with a French page saying how long and whom to call; the same
user from another address still signs in (the lockout is keyed on user and address, so an
attacker cannot lock the on-call radiologist out); the address behind a proxy is the client's."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tests.auth_support import post_code, post_password, shows_code_step, signed_in_user_id
from tests.helpers import totp_code

pytestmark = pytest.mark.django_db

ATTACKER = {"REMOTE_ADDR": "198.51.100.7"}
OWN_DESK = {"REMOTE_ADDR": "10.20.0.15"}


def _hammer(client, username: str, tries: int = 30, **extra) -> list[int]:
    return [post_password(client, username, f"guess-{i}", **extra).status_code for i in range(tries)]


def test_the_login_page_locks_the_pair_out_and_says_how_long_in_french(client, settings, radiologist):
    settings.JOLIBA_SUPPORT_CONTACT = "la permanence Joliba au +223 20 22 00 00"
    codes = _hammer(client, "dr_a", **ATTACKER)
    assert codes[: settings.AXES_FAILURE_LIMIT - 1] == [200] * (settings.AXES_FAILURE_LIMIT - 1)
    assert set(codes[settings.AXES_FAILURE_LIMIT :]) == {429}
    right = post_password(client, "dr_a", "pw-dr_a", **ATTACKER)
    assert right.status_code == 429 and signed_in_user_id(client) is None
    assert not shows_code_step(right)
    page = right.content.decode()
    assert "Connexion bloquée" in page and "Réessayez dans 15 minutes" in page
    assert "la permanence Joliba au +223 20 22 00 00" in page
    assert right["Retry-After"] == str(15 * 60)


def test_the_same_radiologist_still_signs_in_from_her_own_desk(client, radiologist):
    _hammer(client, "dr_a", **ATTACKER)
    desk = Client()
    first = post_password(desk, "dr_a", "pw-dr_a", **OWN_DESK)
    assert shows_code_step(first)
    done = post_code(desk, totp_code(radiologist.totpdevice_set.get()), **OWN_DESK)
    assert done.status_code == 302 and signed_in_user_id(desk) == radiologist.pk


def test_another_user_from_the_attackers_address_is_not_locked(client, radiologist, tech_a):
    _hammer(client, "dr_a", **ATTACKER)
    answer = post_password(Client(), "tech_a", "pw-tech_a", **ATTACKER)
    assert answer.status_code == 302


def test_the_admin_login_is_the_platforms_and_the_lockout_holds_there(client, admin_user):
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    # The admin's own login form is not served: it sends to the platform's login (two steps).
    sent = client.post("/admin/login/", {"username": "admin_a", "password": "pw-admin_a"}, **ATTACKER)
    assert sent.status_code == 302 and sent["Location"].startswith(reverse("login"))
    assert signed_in_user_id(client) is None
    _hammer(client, "admin_a", **ATTACKER)
    right = post_password(client, "admin_a", "pw-admin_a", **ATTACKER)
    assert right.status_code == 429 and signed_in_user_id(client) is None
    assert client.get("/admin/", **ATTACKER).status_code == 302


def test_the_token_endpoint_locks_out_too(client, tech_a):
    """The site agent's technician account (the only one a password alone gets a token for)."""
    url = reverse("api_token")
    for i in range(30):
        client.post(url, {"username": "tech_a", "password": f"guess-{i}"}, **ATTACKER)
    right = client.post(url, {"username": "tech_a", "password": "pw-tech_a"}, **ATTACKER)
    assert right.status_code == 429 and right.json()["code"] == "locked_out"
    assert "token" not in right.json()
    elsewhere = client.post(url, {"username": "tech_a", "password": "pw-tech_a"}, **OWN_DESK)
    assert elsewhere.status_code == 201 and elsewhere.json()["token"]


def test_a_success_before_the_limit_resets_the_count(client, settings, tech_a):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        post_password(client, "tech_a", "nope", **OWN_DESK)
    assert post_password(client, "tech_a", "pw-tech_a", **OWN_DESK).status_code == 302
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        post_password(client, "tech_a", "nope", **OWN_DESK)
    assert post_password(client, "tech_a", "pw-tech_a", **OWN_DESK).status_code == 302


def test_behind_the_proxy_the_client_address_is_the_one_the_proxy_saw(client, settings, radiologist):
    """JOLIBA_PROXY_COUNT=0 (nginx alone in front, appending the address it saw): that address is
    the client's; addresses the client wrote in X-Forwarded-For itself are not believed, so
    rotating them spreads nothing. Unset (the default), the header is ignored."""
    from accounts.views import client_address

    class Request:
        def __init__(self, meta):
            self.META = meta

    settings.JOLIBA_PROXY_COUNT = 0
    via_nginx = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.7"}
    assert client_address(Request(via_nginx)) == "198.51.100.7"
    padded = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9, 198.51.100.7"}
    assert client_address(Request(padded)) == "127.0.0.1"
    # The attacker, through nginx, padding the header with a new address each time: one key.
    for i in range(30):
        extra = {**via_nginx, "HTTP_X_FORWARDED_FOR": f"203.0.113.{i}, 198.51.100.7"}
        post_password(client, "dr_a", f"guess-{i}", **extra)
    assert post_password(client, "dr_a", "pw-dr_a", **padded).status_code == 429
    # ... and without padding: locked on its real address.
    for i in range(30):
        post_password(client, "dr_a", f"guess-{i}", **via_nginx)
    assert post_password(client, "dr_a", "pw-dr_a", **via_nginx).status_code == 429
    desk = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "10.20.0.15"}
    assert shows_code_step(post_password(Client(), "dr_a", "pw-dr_a", **desk))

    settings.JOLIBA_PROXY_COUNT = None
    assert client_address(Request(via_nginx)) == "127.0.0.1"
