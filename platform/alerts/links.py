"""Short links in alerts: an acknowledgement link signed for one alert, or the case's page.

The acknowledgement link works without a session (an on-call phone at 3 a.m. is rarely signed in),
so it grants one thing only: acknowledging that alert, as its recipient, while the chain is open and
for ALERTS_ACK_LINK_DAYS. Opening it (GET) shows the case code and a button; only the POST
acknowledges (link previews and scanners fetch links). It shows no patient data; the case page
itself still needs a login.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from django.conf import settings
from django.urls import reverse


def _sign(alert_pk: int) -> str:
    mac = hmac.new(settings.SECRET_KEY.encode(), f"alerts.ack:{alert_pk}".encode(), hashlib.sha256).digest()
    return base64.b32encode(mac).decode()[:10].lower()  # 50 bits: a short link, and a guess is hopeless


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def ack_token(alert_pk: int) -> str:
    return f"{_b36(alert_pk)}.{_sign(alert_pk)}"


def alert_pk_from_token(token: str) -> int | None:
    head, _, sig = token.partition(".")
    try:
        pk = int(head, 36)
    except ValueError:
        return None
    return pk if hmac.compare_digest(_sign(pk), sig.lower()) else None


def ack_link(alert_pk: int) -> str:
    return settings.ALERTS_PUBLIC_URL.rstrip("/") + reverse("alerts:ack", args=[ack_token(alert_pk)])


def study_link(study_pk: int) -> str:
    return settings.ALERTS_PUBLIC_URL.rstrip("/") + reverse("study_detail", args=[study_pk])
