"""Closing the loop: an acknowledgement by link, by SMS reply « OK <code> », or by the duty page.

A delivery report says a phone received the message; only a person's answer acknowledges it.
"""

from __future__ import annotations

import re

from django.db import transaction
from django.utils import timezone

from accounts.models import User

from .models import AckVia, Alert, Channel, Status
from .recipients import normalise_phone

# "OK KAYES-1234", "ok kayes-1234", "OK: KAYES 1234" (Study.case_code).
OK_REPLY = re.compile(r"^\s*OK\s*[:\-]?\s*([A-Za-z0-9]+(?:[\s\-]+[0-9]+)?)\s*[.!]?\s*$", re.IGNORECASE)

REPLIES = {
    "acknowledged": {
        "fr": "Joliba: reception de {code} enregistree, merci.",
        "en": "Joliba: {code} acknowledged, thank you.",
    },
    "already": {
        "fr": "Joliba: {code} etait deja acquitte.",
        "en": "Joliba: {code} was already acknowledged.",
    },
    "unknown": {
        "fr": "Joliba: code inconnu pour ce numero. Repondez OK suivi du code de l'alerte.",
        "en": "Joliba: unknown code for this number. Reply OK followed by the alert's code.",
    },
}


def acknowledge(alert: Alert, *, by: User | None, via: str) -> str:
    """Acknowledge the alert's chain (whoever on it answers closes it): "acknowledged" or "already"."""
    now = timezone.now()
    with transaction.atomic():
        rows = list(Alert.objects.select_for_update().filter(chain=alert.chain).order_by("pk"))
        if any(r.acked_at for r in rows):
            return "already"
        changes: dict = {"acked_at": now, "acked_by": by, "ack_via": via}
        if alert.channel == Channel.PHONE:
            changes["status"] = Status.DONE
        Alert.objects.filter(pk=alert.pk).update(**changes)
        Alert.objects.filter(chain=alert.chain).update(escalate_at=None)
        Alert.objects.filter(chain=alert.chain, status=Status.PENDING).exclude(pk=alert.pk).update(
            status=Status.CANCELLED, reason_code="acknowledged"
        )
    return "acknowledged"


def is_open(alert: Alert) -> bool:
    return not Alert.objects.filter(chain=alert.chain, acked_at__isnull=False).exists()


def acknowledge_by_sms(*, sender: str, text: str) -> tuple[str, str]:
    """An SMS received by the gateway: (verdict, the reply to send back)."""
    phone = normalise_phone(sender)
    match = OK_REPLY.match(text or "")
    candidates = Alert.objects.none()
    if match and phone:
        code = re.sub(r"[\s\-]+", "-", match.group(1).upper())
        candidates = Alert.objects.filter(
            channel=Channel.SMS, needs_ack=True, address=phone, params__code=code
        ).order_by("-created_at", "-pk")
    alert = next((a for a in candidates if is_open(a)), None) or candidates.first()
    if alert is None:
        return "unknown", REPLIES["unknown"]["fr"]
    verdict = acknowledge(alert, by=alert.recipient, via=AckVia.SMS)
    lang = "en" if alert.language.startswith("en") else "fr"
    return verdict, REPLIES[verdict][lang].format(code=alert.params.get("code", ""))
