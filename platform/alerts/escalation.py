"""Not acknowledged in time: the next person in the chain, then the coordinators, then a person on
duty phones the first recipient. Deadlines are `Alert.escalate_at`, read by the periodic pass."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from studies.models import Study

from . import recipients
from .models import Alert, Channel, Kind
from .outbox import write_alerts, write_phone_task
from .recipients import Recipient

log = logging.getLogger(__name__)


def chain_for(kind: str, study: Study | None) -> list[Recipient]:
    """Everyone an unacknowledged alert of this kind goes to, in order."""
    if kind == Kind.CRITICAL_FINDING:
        return recipients.site_chain(study.site if study else None)
    return recipients.reading_chain()


def escalate_overdue(now: datetime | None = None) -> int:
    now = now or timezone.now()
    chains = list(
        Alert.objects.filter(
            needs_ack=True, acked_at__isnull=True, escalated_at__isnull=True, escalate_at__lte=now
        )
        .exclude(channel=Channel.PHONE)
        .order_by()
        .values_list("chain", flat=True)
        .distinct()
    )
    for chain in chains:
        escalate_chain(chain, now)
    return len(chains)


def escalate_chain(chain: str, now: datetime) -> None:
    with transaction.atomic():
        rows = list(Alert.objects.select_for_update().filter(chain=chain).order_by("step", "pk"))
        if not rows:
            return
        if any(r.acked_at for r in rows):
            Alert.objects.filter(chain=chain).update(escalate_at=None)
            return
        overdue = [r for r in rows if r.escalated_at is None and r.escalate_at and r.escalate_at <= now]
        if not overdue:
            return  # another pass got here first
        step = max(r.step for r in rows if r.channel != Channel.PHONE)
        Alert.objects.filter(chain=chain, escalated_at__isnull=True).exclude(channel=Channel.PHONE).update(
            escalated_at=now
        )
        first = rows[0]
        study = (
            Study.objects.filter(pk=first.study_id).select_related("site").first() if first.study_id else None
        )
        people = chain_for(first.kind, study)
        already = {(r.recipient_id, r.address) for r in rows}
        for index in range(step + 1, len(people)):
            person = people[index]
            who = person.user.pk if person.user else None
            if any((who, a) in already for _, a in person.addresses()):
                continue
            created = write_alerts(
                kind=first.kind,
                category=first.category,
                chain=chain,
                recipients=[person],
                study=study,
                event=first.event,
                step=index,
                params=first.params,
                needs_ack=True,
            )
            if created:
                log.info("alert chain %s escalated to step %d", chain, index)
                return
        # Nobody left to message: a person on duty phones the first one (or the first number we have).
        phone = next((p.phone for p in people if p.phone), "") or next(
            (r.address for r in rows if r.channel == Channel.SMS), ""
        )
        if phone:
            write_phone_task(alert=rows[-1], phone=phone)
            log.warning("alert chain %s: nobody acknowledged, phone task created", chain)
        else:
            log.error("alert chain %s: nobody acknowledged and no number to phone", chain)
