"""Signing in through the real login wizard (django-two-factor-auth) with the Django test client."""

from __future__ import annotations

from django.urls import reverse

STEP = "login_view-current_step"  # the wizard's management field (prefix from the view's name)


def post_password(client, username: str, password: str, **extra):
    return client.post(
        reverse("login"), {STEP: "auth", "auth-username": username, "auth-password": password}, **extra
    )


def post_code(client, code: str, **extra):
    return client.post(reverse("login"), {STEP: "token", "token-otp_token": code}, **extra)


def post_backup_code(client, code: str, **extra):
    client.post(reverse("login"), {STEP: "token", "wizard_goto_step": "backup"}, **extra)
    return client.post(reverse("login"), {STEP: "backup", "backup-otp_token": code}, **extra)


def signed_in_user_id(client):
    from django.contrib.auth import SESSION_KEY

    value = client.session.get(SESSION_KEY)
    return int(value) if value is not None else None


def is_verified(client) -> bool:
    from django_otp import DEVICE_ID_SESSION_KEY

    return bool(client.session.get(DEVICE_ID_SESSION_KEY))


def shows_code_step(response) -> bool:
    return response.status_code == 200 and b'name="token-otp_token"' in response.content
