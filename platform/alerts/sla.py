"""Cases about to breach their reading deadline with nobody on them (a periodic check)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from studies.models import Status, Study, StudyEvent
from worklist.ranking import DEFAULT_SLA_MINUTES

from . import recipients
from .models import Alert, Category, Kind
from .outbox import write_alerts
from .triggers import base_params

WAITING = (Status.RECEIVED, Status.QUEUED)


def sla_minutes(priority: str) -> float:
    slas = {**DEFAULT_SLA_MINUTES, **settings.WORKLIST_SLA_MINUTES}
    return float(slas.get(priority, slas["routine"]))


def check_sla(now: datetime | None = None) -> int:
    """One alert chain per wait (per `received` event) of a case nobody holds, when its SLA is near."""
    now = now or timezone.now()
    warn = timedelta(minutes=settings.ALERTS_SLA_WARNING_MINUTES)
    raised = 0
    waiting = Study.objects.filter(status__in=WAITING, assigned_to__isnull=True).select_related("site")
    for study in waiting:
        received = (
            StudyEvent.objects.filter(study=study, to_status=Status.RECEIVED).order_by("-at", "-pk").first()
        )
        if received is None:
            continue
        chain = f"sla_breach:e{received.pk}"
        if Alert.objects.filter(chain=chain).exists():
            continue
        deadline = received.at + timedelta(minutes=sla_minutes(study.priority))
        if deadline - now > warn:
            continue
        left = max(int((deadline - now).total_seconds() // 60), 0)
        created = write_alerts(
            kind=Kind.SLA_BREACH,
            category=Category.URGENT,
            chain=chain,
            recipients=recipients.reading_chain()[:1],
            study=study,
            event=received,
            params={**base_params(study), "minutes": left},
            needs_ack=True,
        )
        raised += bool(created)
    return raised
