"""The periodic pass and the few writes pages ask for (resend, phone confirmation)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User

from .escalation import escalate_overdue
from .models import Alert, Category, Channel, Kind, NotificationSettings, Status
from .outbox import drain, recover_interrupted, write_alerts
from .recipients import Recipient, normalise_phone
from .sla import check_sla

CONFIRMATION_VALID = timedelta(minutes=30)


def run_due_alerts() -> dict[str, Any]:
    """Everything timed, from rows: interrupted sends, escalations, SLA checks, then due sends."""
    now = timezone.now()
    recovered = recover_interrupted(now)
    escalated = escalate_overdue(now)
    sla = check_sla(now)
    sent = drain()
    return {"recovered": recovered, "escalated": escalated, "sla": sla, "drain": sent}


def resend(alert: Alert) -> bool:
    """An admin asks again for a failed (or cancelled) alert: back to the outbox, due now."""
    return bool(
        Alert.objects.filter(pk=alert.pk, status__in=[Status.FAILED, Status.CANCELLED])
        .exclude(channel=Channel.NONE)  # nobody to send it to: the on-call list needs fixing
        .update(
            status=Status.PENDING, next_attempt_at=timezone.now(), attempts=0, reason_code="resent", error=""
        )
    )


def _hash(code: str) -> str:
    return hashlib.sha256(f"{settings.SECRET_KEY}:{code}".encode()).hexdigest()


def send_phone_confirmation(user: User, phone: str) -> bool:
    """Store the new number (unconfirmed) and text it a 6-digit code; False if not a number."""
    number = normalise_phone(phone)
    if not number:
        return False
    code = f"{secrets.randbelow(10**6):06d}"
    now = timezone.now()
    with transaction.atomic():
        prefs, _ = NotificationSettings.objects.get_or_create(user=user)
        prefs.phone = number
        prefs.phone_confirmed_at = None
        prefs.confirm_code_hash = _hash(code)
        prefs.confirm_sent_at = now
        prefs.save()
        write_alerts(
            kind=Kind.PHONE_CONFIRMATION,
            category=Category.CRITICAL,  # a person waits for it on the page: never held by quiet hours
            chain=f"phone_confirmation:u{user.pk}:{int(now.timestamp())}",
            recipients=[
                Recipient(
                    key=f"user:{user.pk}", role="self", user=user, phone=number, language=prefs.language
                )
            ],
            params={"otp": code},
        )
    return True


def confirm_phone(user: User, code: str) -> bool:
    prefs = NotificationSettings.objects.filter(user=user).first()
    if prefs is None or not prefs.confirm_code_hash or not prefs.confirm_sent_at:
        return False
    if timezone.now() - prefs.confirm_sent_at > CONFIRMATION_VALID:
        return False
    if not secrets.compare_digest(prefs.confirm_code_hash, _hash(code.strip())):
        return False
    prefs.phone_confirmed_at = timezone.now()
    prefs.confirm_code_hash = ""
    prefs.save(update_fields=["phone_confirmed_at", "confirm_code_hash"])
    # The code is spent: no need to keep it in the outbox's parameters.
    Alert.objects.filter(recipient=user, kind=Kind.PHONE_CONFIRMATION, channel=Channel.SMS).exclude(
        status__in=[Status.PENDING, Status.SENDING]
    ).update(params={})
    return True
