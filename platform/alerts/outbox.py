"""The outbox: write alerts with their cause, hand them to gateways, record every attempt.

Durability, in three rules:
- an alert row is written in the transaction of the event that causes it (alerts.triggers);
- a send is claimed by a conditional UPDATE (pending → sending, with a lease) before the gateway
  sees it, so a task delivered twice or a periodic pass racing the task sends it once;
- a send whose worker died (lease expired, attempt still in flight) is resent only if the gateway
  never reported it: Kannel calls our dlr-url with the attempt's reference as soon as the SMSC took
  the message, whether or not the worker lived to record the answer (docs/alerts.md says exactly
  when a duplicate remains possible).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Case, F, IntegerField, Q, Value, When
from django.template.loader import render_to_string
from django.utils import timezone

from studies.models import Study, StudyEvent

from . import messages
from .backends import GatewayDown, Handed, Rejected, sms_backend
from .links import ack_link, study_link
from .models import URGENCY_RANK, Alert, AlertAttempt, Category, Channel, GatewayState, Outcome, Status
from .quiet import hold_until
from .recipients import Recipient

log = logging.getLogger(__name__)

URGENCY_ORDER = Case(
    *[When(category=c.value, then=Value(rank)) for c, rank in URGENCY_RANK.items()],
    output_field=IntegerField(),
)
NEVER_HELD = (Category.CRITICAL, Category.URGENT)  # quiet hours hold only the others


def ack_minutes(category: str) -> float | None:
    minutes = settings.ALERTS_ACK_MINUTES.get(category)
    return float(minutes) if minutes is not None else None


def write_alerts(
    *,
    kind: str,
    category: str,
    chain: str,
    recipients: Iterable[Recipient],
    study: Study | None = None,
    event: StudyEvent | None = None,
    step: int = 0,
    params: dict[str, Any] | None = None,
    needs_ack: bool = False,
) -> list[int]:
    """Write one row per recipient and channel (a row already there for that key is kept as is);
    returns the new rows' keys, enqueued for delivery once the transaction commits."""
    now = timezone.now()
    rows = []
    recipients = list(recipients)
    for r in recipients:
        start = now if category in NEVER_HELD else hold_until(r.quiet, now)
        for channel, address in r.addresses():
            rows.append(
                Alert(
                    kind=kind,
                    category=category,
                    study=study,
                    event=event,
                    chain=chain,
                    step=step,
                    recipient=r.user,
                    address=address,
                    recipient_role=r.role,
                    language=r.language,
                    channel=channel,
                    dedupe_key=f"{chain}:{r.key}:{channel}",
                    params=params or {},
                    needs_ack=needs_ack,
                    next_attempt_at=start,
                )
            )
    if needs_ack or category in NEVER_HELD:
        rows += _unreachable(
            kind=kind,
            category=category,
            chain=chain,
            recipients=recipients,
            study=study,
            event=event,
            step=step,
            params=params or {},
            needs_ack=needs_ack,
            reached_anyone=bool(rows),
            now=now,
        )
    if not rows:
        return []
    keys = [a.dedupe_key for a in rows]
    with transaction.atomic():
        before = set(Alert.objects.filter(dedupe_key__in=keys).values_list("pk", flat=True))
        Alert.objects.bulk_create(rows, ignore_conflicts=True)  # ON CONFLICT DO NOTHING: the dedupe key
        unreachable = set(
            Alert.objects.filter(dedupe_key__in=keys, channel=Channel.NONE).values_list("pk", flat=True)
        )
        created = [
            pk
            for pk, due in Alert.objects.filter(dedupe_key__in=keys).values_list("pk", "next_attempt_at")
            if pk not in before and due <= now and pk not in unreachable
        ]
    transaction.on_commit(lambda: _enqueue(created))
    return created


def _unreachable(
    *,
    recipients: list[Recipient],
    step: int,
    needs_ack: bool,
    reached_anyone: bool,
    now: datetime,
    **fields: Any,
) -> list[Alert]:
    """A failed row for each person this urgent alert could not reach (none at all: one row for
    the empty list), shown on the board. When nobody of this step was reached, the first step's
    row is due for escalation at once: the next person of the chain is told in the next pass (a
    later step is written by that pass itself, which has already moved on)."""
    people: list[Recipient | None] = [r for r in recipients if not r.addresses()]
    if not recipients:
        people = [None]
    escalate = needs_ack and not reached_anyone and step == 0
    return [
        Alert(
            **fields,
            step=step,
            recipient=r.user if r else None,
            address="",
            recipient_role=r.role if r else "",
            language=r.language if r else "fr",
            channel=Channel.NONE,
            dedupe_key=f"{fields['chain']}:{r.key if r else 'nobody'}:none"[:200],
            needs_ack=needs_ack,
            status=Status.FAILED,
            reason_code="no_address" if r else "no_recipient",
            failed_at=now,
            next_attempt_at=now,
            escalate_at=now if escalate else None,
            escalated_at=None if escalate or step == 0 else now,
        )
        for r in people
    ]


def write_phone_task(*, alert: Alert, phone: str) -> int | None:
    """The last step of a chain: a person on duty phones this number (shown on the duty page)."""
    task = Alert(
        kind=alert.kind,
        category=alert.category,
        study_id=alert.study_id,
        event_id=alert.event_id,
        chain=alert.chain,
        step=alert.step + 1,
        recipient=None,
        address=phone,
        recipient_role="phone_task",
        language="fr",
        channel=Channel.PHONE,
        dedupe_key=f"{alert.chain}:phone:{phone}",
        params=alert.params,
        needs_ack=True,
        next_attempt_at=timezone.now(),
    )
    Alert.objects.bulk_create([task], ignore_conflicts=True)
    return Alert.objects.filter(dedupe_key=task.dedupe_key).values_list("pk", flat=True).first()


def _enqueue(pks: list[int]) -> None:
    from .tasks import deliver_alert

    for pk in pks:
        try:
            deliver_alert.delay(pk)
        except Exception:  # the broker down changes nothing: the periodic pass finds the row
            log.warning("alert %s: broker unreachable, left for the periodic pass", pk)
            return


# --- Delivery ------------------------------------------------------------------------------------


def _gateway_channel(alert: Alert) -> str:
    return alert.channel


def gateway_is_down(channel: str, now: datetime | None = None) -> bool:
    state = GatewayState.objects.filter(channel=channel).first()
    return bool(state and state.retry_at and state.retry_at > (now or timezone.now()))


def _mark_gateway(channel: str, *, down: bool, error: str = "") -> None:
    now = timezone.now()
    if not down:
        GatewayState.objects.filter(channel=channel).exclude(down_since=None).update(
            down_since=None, retry_at=None, failures=0, last_error=""
        )
        return
    state, _ = GatewayState.objects.get_or_create(channel=channel)
    state.failures += 1
    state.down_since = state.down_since or now
    # Probing is one request: a gateway back must not wait long for critical alerts to flow again.
    wait = min(
        settings.ALERTS_RETRY_BASE_SECONDS * 2 ** min(state.failures - 1, 10),
        settings.ALERTS_GATEWAY_RETRY_MAX_SECONDS,
    )
    state.retry_at = now + timedelta(seconds=wait)
    state.last_error = error[:300]
    state.save()


def _retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=min(settings.ALERTS_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0), 3600.0))


def chain_closed(chain: str) -> bool:
    return Alert.objects.filter(chain=chain, acked_at__isnull=False).exists()


def deliver(alert_id: int, *, probe: bool = False, known_up: bool = False) -> str:
    """Hand one due alert to its gateway and record the outcome; returns what happened (a code).

    Must run outside a transaction (each step commits): a worker dying anywhere leaves rows that
    say how far it got.
    """
    now = timezone.now()
    alert = Alert.objects.filter(pk=alert_id).first()
    if alert is None or alert.channel == Channel.PHONE:
        return "nothing_to_send"
    if alert.status == Status.PENDING and alert.needs_ack and chain_closed(alert.chain):
        Alert.objects.filter(pk=alert.pk, status=Status.PENDING).update(
            status=Status.CANCELLED, reason_code="acknowledged_before_sending", escalate_at=None
        )
        return "cancelled"
    channel = _gateway_channel(alert)
    state = None if known_up else GatewayState.objects.filter(channel=channel).first()
    if not probe and state is not None and state.retry_at and state.retry_at > now:
        return "gateway_down"  # the periodic pass probes it, then drains most urgent first
    claimed = Alert.objects.filter(pk=alert.pk, status=Status.PENDING, next_attempt_at__lte=now).update(
        status=Status.SENDING,
        attempts=F("attempts") + 1,
        lease_until=now + timedelta(seconds=settings.ALERTS_SEND_LEASE_SECONDS),
    )
    if not claimed:
        return "not_due"
    alert.status, alert.attempts = Status.SENDING, alert.attempts + 1  # as the UPDATE left it
    backend_name = settings.ALERTS_SMS_BACKEND if channel == Channel.SMS else "email"
    attempt = AlertAttempt.objects.create(alert=alert, started_at=now, backend=backend_name)
    reference = f"a{attempt.pk}"
    try:
        handed = _hand_over(alert, reference)
    except GatewayDown as exc:
        _record_failure(alert, attempt, code="gateway_down", error=str(exc), retry_now=True)
        _mark_gateway(channel, down=True, error=str(exc))
        return "gateway_down"
    except Rejected as exc:
        _record_failure(alert, attempt, code=exc.code, error=exc.detail, permanent=True)
        return "rejected"
    except Exception as exc:  # a bug or an odd answer: this alert retries later, the others go on
        log.exception("alert %s: send failed", alert.pk)
        _record_failure(alert, attempt, code="send_error", error=f"{type(exc).__name__}: {exc}")
        return "error"
    if settings.ALERTS_FAULT_PAUSE_AFTER_HANDOFF_S:  # the crash tests kill the worker here
        time.sleep(settings.ALERTS_FAULT_PAUSE_AFTER_HANDOFF_S)
    _record_success(alert, attempt, handed)
    if probe or (state is not None and state.down_since is not None):
        _mark_gateway(channel, down=False)
    return "sent"


def _hand_over(alert: Alert, reference: str) -> Handed:
    text = render_alert(alert)
    if alert.channel == Channel.SMS:
        return sms_backend().send(
            to=alert.address, text=text.sms, encoding=text.encoding, reference=reference
        )
    return _send_email(alert, text, reference)


def render_alert(alert: Alert) -> messages.Rendered:
    link = ack_link(alert.pk) if alert.needs_ack else (study_link(alert.study_id) if alert.study_id else "")
    return messages.render(
        kind=alert.kind,
        language=alert.language,
        params=alert.params,
        link=link,
        needs_ack=alert.needs_ack,
        step=alert.step,
    )


def _send_email(alert: Alert, text: messages.Rendered, reference: str) -> Handed:
    import smtplib

    lang = "en" if alert.language.startswith("en") else "fr"
    context = {"text": text, "lang": lang, "category": alert.category}
    host = urlsplit(settings.ALERTS_PUBLIC_URL).hostname or "joliba"
    message_id = f"<joliba-alert-{alert.pk}-{reference}@{host}>"
    mail = EmailMultiAlternatives(
        subject=text.subject,
        body=render_to_string("alerts/email/alert.txt", context),
        to=[alert.address],
        headers={"Message-ID": message_id, "X-Joliba-Alert": reference},
    )
    mail.attach_alternative(render_to_string("alerts/email/alert.html", context), "text/html")
    try:
        mail.send()
    except smtplib.SMTPRecipientsRefused as exc:
        raise Rejected("address_refused", str(exc)[:200]) from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise GatewayDown(f"smtp: {type(exc).__name__}: {exc}"[:200]) from exc
    return Handed(gateway_id=message_id)


def _record_success(alert: Alert, attempt: AlertAttempt, handed: Handed) -> None:
    now = timezone.now()
    with transaction.atomic():
        AlertAttempt.objects.filter(pk=attempt.pk).update(
            outcome=Outcome.ACCEPTED, finished_at=now, gateway_id=handed.gateway_id
        )
        _mark_sent(alert, now, gateway_id=handed.gateway_id)


def _mark_sent(alert: Alert, at: datetime, *, gateway_id: str) -> None:
    changes: dict[str, Any] = {
        "status": Status.SENT,
        "sent_at": at,
        "lease_until": None,
        "gateway_id": gateway_id,
        "reason_code": "",
        "error": "",
    }
    minutes = ack_minutes(alert.category)
    if alert.needs_ack and minutes is not None:
        changes["escalate_at"] = at + timedelta(minutes=minutes)
    Alert.objects.filter(pk=alert.pk, status=Status.SENDING).update(**changes)


def _record_failure(
    alert: Alert,
    attempt: AlertAttempt,
    *,
    code: str,
    error: str,
    permanent: bool = False,
    retry_now: bool = False,
) -> None:
    now = timezone.now()
    with transaction.atomic():
        AlertAttempt.objects.filter(pk=attempt.pk).update(
            outcome=Outcome.FAILED, finished_at=now, error_code=code, error=error[:300]
        )
        given_up = permanent or (not retry_now and alert.attempts >= settings.ALERTS_MAX_ATTEMPTS)
        changes: dict[str, Any] = {"lease_until": None, "reason_code": code, "error": error[:300]}
        if given_up:
            changes.update(status=Status.FAILED, failed_at=now)
            if alert.needs_ack:
                changes["escalate_at"] = now  # nobody was told: the next person, now
        else:
            # A gateway outage is the gateway's wait (GatewayState), not this alert's backoff.
            changes.update(
                status=Status.PENDING,
                next_attempt_at=now if retry_now else now + _retry_delay(alert.attempts),
            )
        Alert.objects.filter(pk=alert.pk, status=Status.SENDING).update(**changes)


def recover_interrupted(now: datetime | None = None) -> int:
    """Sends whose worker died: recorded as sent if the gateway reported the message, else resent."""
    now = now or timezone.now()
    count = 0
    for alert in Alert.objects.filter(status=Status.SENDING, lease_until__lt=now):
        attempt = alert.attempts_made.filter(outcome=Outcome.IN_FLIGHT).order_by("-pk").first()
        with transaction.atomic():
            if attempt is not None and attempt.dlr_status is not None:
                # The gateway took it (its delivery report came): the worker only missed the record.
                AlertAttempt.objects.filter(pk=attempt.pk).update(outcome=Outcome.ACCEPTED, finished_at=now)
                _mark_sent(alert, attempt.dlr_at or now, gateway_id=attempt.gateway_id or f"a{attempt.pk}")
            else:
                if attempt is not None:
                    AlertAttempt.objects.filter(pk=attempt.pk).update(
                        outcome=Outcome.UNKNOWN, finished_at=now, error_code="worker_lost"
                    )
                gave_up = alert.attempts >= settings.ALERTS_MAX_ATTEMPTS
                Alert.objects.filter(pk=alert.pk, status=Status.SENDING).update(
                    status=Status.FAILED if gave_up else Status.PENDING,
                    failed_at=now if gave_up else None,
                    escalate_at=now if (gave_up and alert.needs_ack) else alert.escalate_at,
                    lease_until=None,
                    next_attempt_at=now,
                    reason_code="worker_lost",
                )
        count += 1
    return count


def drain(now: datetime | None = None, *, budget_s: float = 50.0) -> dict[str, int]:
    """Send what is due, most urgent first; a gateway found down is probed once, then skipped."""
    now = now or timezone.now()
    started = time.monotonic()
    results: dict[str, int] = {}
    channels = (Channel.SMS.value, Channel.EMAIL.value)
    down = {c for c in channels if gateway_is_down(c, now)}
    probing = {c for c in channels if c not in down and _was_down(c)}
    due = (
        Alert.objects.filter(status=Status.PENDING, next_attempt_at__lte=now)
        .exclude(channel=Channel.PHONE)
        .annotate(rank=URGENCY_ORDER)
        .order_by("rank", "created_at", "pk")
        .values_list("pk", "channel")[: settings.ALERTS_DRAIN_BATCH]
    )
    for pk, channel in due:
        if channel in down:
            continue
        outcome = deliver(pk, probe=channel in probing, known_up=channel not in probing)
        probing.discard(channel)
        results[outcome] = results.get(outcome, 0) + 1
        if outcome == "gateway_down":
            down.add(channel)
        if time.monotonic() - started > budget_s:
            break
    return results


def _was_down(channel: str) -> bool:
    return GatewayState.objects.filter(channel=channel, down_since__isnull=False).exists()


# --- Delivery reports ------------------------------------------------------------------------------

KANNEL_DELIVERED, KANNEL_FAILED, KANNEL_REJECTED = 1, 2, 16
FINAL_REPORTS = (KANNEL_DELIVERED, KANNEL_FAILED, KANNEL_REJECTED)


def record_delivery_report(*, reference: str, report_type: int, smsc_id: str = "") -> bool:
    """A gateway's delivery report for one attempt (a report is never an acknowledgement)."""
    if not reference.startswith("a") or not reference[1:].isdigit():
        return False
    now = timezone.now()
    with transaction.atomic():
        attempt = AlertAttempt.objects.select_for_update().filter(pk=int(reference[1:])).first()
        if attempt is None:
            return False
        if attempt.dlr_status in FINAL_REPORTS and report_type not in FINAL_REPORTS:
            return True  # reports can arrive out of order: "SMSC took it" never hides "delivered"
        attempt.dlr_status = report_type
        attempt.dlr_at = now
        if smsc_id:
            attempt.gateway_id = smsc_id[:100]
        attempt.save(update_fields=["dlr_status", "dlr_at", "gateway_id"])
        if report_type == KANNEL_DELIVERED:
            Alert.objects.filter(pk=attempt.alert_id, delivered_at__isnull=True).update(delivered_at=now)
        elif report_type in (KANNEL_FAILED, KANNEL_REJECTED):
            alert = Alert.objects.get(pk=attempt.alert_id)
            Alert.objects.filter(pk=alert.pk).update(
                reason_code="not_delivered",
                failed_at=now,
                escalate_at=now if alert.needs_ack and alert.acked_at is None else alert.escalate_at,
            )
    return True


def pending_filter() -> Q:
    return Q(status__in=[Status.PENDING, Status.SENDING])
